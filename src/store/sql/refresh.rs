//! Broker mode's [`RefreshTokenStore`] on SQL: the tables
//! `front_refresh_families` and `front_refresh_tokens`. A token is used
//! once: the update that marks it used is conditional, so of two instances
//! presenting it together one rotates and the other sees a replay.
//!
//! They are written on the store's transient connections (on SQLite one
//! connection, so refreshes queue in order instead of in SQLite's busy
//! handler, and rotations are applied in batches, one transaction each:
//! see `rotations`; commits that do not wait for the disk), and read on
//! the pool (readers do not wait for the writer): a refresh is on the
//! hot path of every client, and what a crash of the machine can lose is
//! the last rotations, whose apps then sign in again. On PostgreSQL each
//! rotation is its own transaction, on one of several connections.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rotations::Rotation;
use crate::domain::SecretHash;
use crate::store::StoreError;
use crate::store::front::{PresentedRefresh, RefreshFamily, RefreshTokenStore};

/// A family's columns, in [`family`]'s order.
const COLUMNS: &str = "f.family_id, f.client_id, f.scope, f.resource, f.upstream, \
     f.expires_at, f.subject, f.claims";

fn family(row: &AnyRow) -> Result<RefreshFamily, StoreError> {
    let client_id: String = row.try_get(1)?;
    let claims = match row.try_get::<Option<String>, _>(7)? {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            client_id: client_id.clone(),
            reason: format!("a refresh family's claims: {e}"),
        })?,
        None => serde_json::Map::new(),
    };
    Ok(RefreshFamily {
        id: row.try_get(0)?,
        client_id,
        scope: row.try_get(2)?,
        resource: row.try_get(3)?,
        sealed_upstream: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        subject: row.try_get(6)?,
        claims,
    })
}

fn bytes(hash: &SecretHash) -> Vec<u8> {
    hash.as_bytes().to_vec()
}

#[async_trait]
impl RefreshTokenStore for SqlStore {
    async fn start_family(
        &self,
        family: &RefreshFamily,
        first: &SecretHash,
    ) -> Result<(), StoreError> {
        let mut transaction = self.transient.begin().await?;
        sqlx::query(
            "INSERT INTO front_refresh_families \
             (family_id, client_id, scope, resource, upstream, expires_at, subject, claims) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(family.id.clone())
        .bind(family.client_id.clone())
        .bind(family.scope.clone())
        .bind(family.resource.clone())
        .bind(family.sealed_upstream.clone())
        .bind(family.expires_at)
        .bind(family.subject.clone())
        .bind(
            (!family.claims.is_empty())
                .then(|| serde_json::Value::Object(family.claims.clone()).to_string()),
        )
        .execute(&mut *transaction)
        .await?;
        sqlx::query("INSERT INTO front_refresh_tokens (token_hash, family_id) VALUES ($1, $2)")
            .bind(bytes(first))
            .bind(family.id.clone())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn presented(
        &self,
        token: &SecretHash,
        now: i64,
    ) -> Result<PresentedRefresh, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, t.used FROM front_refresh_tokens t \
             JOIN front_refresh_families f ON f.family_id = t.family_id \
             WHERE t.token_hash = $1 AND f.revoked = 0 AND f.expires_at > $2"
        ))
        .bind(bytes(token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(PresentedRefresh::Unknown);
        };
        let used: i32 = row.try_get(8)?;
        Ok(match used {
            0 => PresentedRefresh::Live(family(&row)?),
            _ => PresentedRefresh::Reused(family(&row)?),
        })
    }

    async fn rotate(
        &self,
        old: &SecretHash,
        new: &SecretHash,
        sealed_upstream: Option<&[u8]>,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        if let Some(rotations) = &self.rotations {
            return rotations
                .rotate(Rotation {
                    old: old.clone(),
                    new: new.clone(),
                    sealed_upstream: sealed_upstream.map(<[u8]>::to_vec),
                    expires_at,
                })
                .await;
        }
        let mut transaction = self.transient.begin().await?;
        // The first statement writes, so that the token's row is locked
        // before anything is read.
        let used = sqlx::query(
            "UPDATE front_refresh_tokens SET used = 1 WHERE token_hash = $1 AND used = 0 \
             RETURNING family_id",
        )
        .bind(bytes(old))
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(used) = used else {
            return Ok(false);
        };
        let family_id: String = used.try_get(0)?;
        let extended = sqlx::query(
            "UPDATE front_refresh_families SET expires_at = $1, \
             upstream = COALESCE($2, upstream) WHERE family_id = $3 AND revoked = 0",
        )
        .bind(expires_at)
        .bind(sealed_upstream.map(<[u8]>::to_vec))
        .bind(family_id.clone())
        .execute(&mut *transaction)
        .await?;
        if extended.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO front_refresh_tokens (token_hash, family_id) VALUES ($1, $2)")
            .bind(bytes(new))
            .bind(family_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn family_live(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let live = sqlx::query(
            "SELECT 1 FROM front_refresh_families \
             WHERE family_id = $1 AND revoked = 0 AND expires_at > $2",
        )
        .bind(id.to_owned())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(live.is_some())
    }

    async fn revoke_family(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let revoked = sqlx::query(
            "UPDATE front_refresh_families SET revoked = 1 \
             WHERE family_id = $1 AND revoked = 0 RETURNING upstream",
        )
        .bind(id.to_owned())
        .fetch_optional(&self.transient)
        .await?;
        revoked
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(Into::into)
    }

    async fn sweep_families(&self, now: i64) -> Result<(), StoreError> {
        let mut transaction = self.transient.begin().await?;
        let lapsed = "SELECT family_id FROM front_refresh_families WHERE expires_at <= $1";
        sqlx::query(&format!(
            "DELETE FROM front_refresh_tokens WHERE family_id IN ({lapsed})"
        ))
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM front_refresh_families WHERE family_id IN ({lapsed})"
        ))
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}
