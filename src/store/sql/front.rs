//! The authorization front's [`TransactionStore`], [`CimdStore`] and
//! [`AssertionReplays`] on SQL: the tables `front_transactions`,
//! `front_cimd_clients` and `front_assertion_jtis`, each
//! method one or two queries written once for both databases. Every step
//! of a login is an insert that clashes or a conditional update, so that a
//! state is answered, and a code redeemed, at most once across all
//! instances. Logins are written on the store's transient connections.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, lock_table};
use crate::domain::SecretHash;
use crate::store::StoreError;
use crate::store::front::{
    Answered, AssertionReplays, CimdStore, CodePhase, DocumentCaps, Mapping, Reserved, StoredCode,
    Transaction, TransactionStore,
};

/// The transaction's own columns, in [`transaction`]'s order.
const COLUMNS: &str =
    "client_id, redirect_uri, app_state, code_challenge, scope, resource, expires_at";

fn transaction(row: &AnyRow) -> Result<Transaction, StoreError> {
    Ok(Transaction {
        client_id: row.try_get(0)?,
        redirect_uri: row.try_get(1)?,
        app_state: row.try_get(2)?,
        code_challenge: row.try_get(3)?,
        scope: row.try_get(4)?,
        resource: row.try_get(5)?,
        expires_at: row.try_get(6)?,
    })
}

fn bytes(hash: &SecretHash) -> Vec<u8> {
    hash.as_bytes().to_vec()
}

#[async_trait]
impl TransactionStore for SqlStore {
    async fn answer(&self, answered: &Answered<'_>) -> Result<bool, StoreError> {
        let transaction = answered.transaction;
        let code = answered.code.as_ref();
        let inserted = sqlx::query(&format!(
            "INSERT INTO front_transactions (state_hash, code_hash, phase, sealed, keep_until, \
             {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (state_hash) DO NOTHING"
        ))
        .bind(bytes(answered.state))
        .bind(code.map(|code| bytes(code.hash)))
        .bind(if code.is_some() { "code" } else { "failed" })
        .bind(code.map(|code| code.sealed.to_vec()))
        .bind(answered.keep_until)
        .bind(transaction.client_id.clone())
        .bind(transaction.redirect_uri.clone())
        .bind(transaction.app_state.clone())
        .bind(transaction.code_challenge.clone())
        .bind(transaction.scope.clone())
        .bind(transaction.resource.clone())
        .bind(transaction.expires_at)
        .execute(&self.transient)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn code(&self, code: &SecretHash) -> Result<Option<StoredCode>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, phase, sealed FROM front_transactions WHERE code_hash = $1"
        ))
        .bind(bytes(code))
        .fetch_optional(&self.transient)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let phase = match row.try_get::<String, _>(7)?.as_str() {
            "code" => CodePhase::Issued,
            _ => CodePhase::Redeemed,
        };
        Ok(Some(StoredCode {
            transaction: transaction(&row)?,
            phase,
            sealed: row.try_get(8)?,
        }))
    }

    async fn redeem(
        &self,
        code: &SecretHash,
        now: i64,
        keep_until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE front_transactions SET phase = 'redeemed', sealed = NULL, \
             keep_until = CASE WHEN keep_until > $1 THEN keep_until ELSE $1 END \
             WHERE code_hash = $2 AND phase = 'code' AND expires_at > $3",
        )
        .bind(keep_until)
        .bind(bytes(code))
        .bind(now)
        .execute(&self.transient)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_tokens(&self, code: &SecretHash, sealed: &[u8]) -> Result<bool, StoreError> {
        let replayed: Option<i32> = sqlx::query(
            "UPDATE front_transactions SET sealed = $1 WHERE code_hash = $2 RETURNING replayed",
        )
        .bind(sealed.to_vec())
        .bind(bytes(code))
        .fetch_optional(&self.transient)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
        Ok(replayed.is_some_and(|flag| flag != 0))
    }

    async fn mark_replayed(&self, code: &SecretHash) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed: Option<Option<Vec<u8>>> = sqlx::query(
            "UPDATE front_transactions SET replayed = 1 WHERE code_hash = $1 \
             AND phase = 'redeemed' RETURNING sealed",
        )
        .bind(bytes(code))
        .fetch_optional(&self.transient)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
        Ok(sealed.flatten())
    }

    async fn sweep(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM front_transactions WHERE keep_until <= $1")
            .bind(now)
            .execute(&self.transient)
            .await?;
        let live: i64 = sqlx::query("SELECT COUNT(*) FROM front_transactions")
            .fetch_one(&self.transient)
            .await?
            .try_get(0)?;
        Ok(u64::try_from(live).unwrap_or(0))
    }
}

/// A mapping's columns, in [`mapping`]'s order.
const MAPPING_COLUMNS: &str = "client_id, document_hash, fresh_until, last_used";

fn mapping(row: &AnyRow) -> Result<Mapping, StoreError> {
    Ok(Mapping {
        client_id: row.try_get(0)?,
        document_hash: row.try_get(1)?,
        fresh_until: row.try_get(2)?,
        last_used: row.try_get(3)?,
    })
}

#[async_trait]
impl CimdStore for SqlStore {
    async fn mapping(&self, url: &str) -> Result<Option<Mapping>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MAPPING_COLUMNS} FROM front_cimd_clients WHERE url = $1"
        ))
        .bind(url.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(mapping).transpose()
    }

    async fn is_document_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM front_cimd_clients WHERE client_id = $1 LIMIT 1")
            .bind(client_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// One transaction: on PostgreSQL under an advisory lock (other
    /// instances count and insert too), on SQLite under the database's one
    /// writer; the counts and the insert see the same rows.
    async fn reserve(
        &self,
        url: &str,
        host: &str,
        caps: DocumentCaps,
        now: i64,
        until: i64,
    ) -> Result<Reserved, StoreError> {
        let mut transaction = self.pool.begin().await?;
        lock_table(&mut transaction, self.backend, "front_cimd_clients").await?;
        let counts = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM front_cimd_clients WHERE host = $1), \
             (SELECT COUNT(*) FROM front_cimd_clients), \
             (SELECT COUNT(*) FROM front_cimd_clients WHERE url = $2)",
        )
        .bind(host.to_owned())
        .bind(url.to_owned())
        .fetch_one(&mut *transaction)
        .await?;
        let count = |i: usize| -> Result<u64, StoreError> {
            Ok(u64::try_from(counts.try_get::<i64, _>(i)?).unwrap_or(0))
        };
        let outcome = if count(2)? > 0 {
            Reserved::Taken
        } else if count(0)? >= caps.per_host {
            Reserved::HostFull
        } else if count(1)? >= caps.in_all {
            Reserved::AllFull
        } else {
            sqlx::query(
                "INSERT INTO front_cimd_clients \
                 (url, host, client_id, document_hash, fresh_until, last_used) \
                 VALUES ($1, $2, '', $3, $4, $5)",
            )
            .bind(url.to_owned())
            .bind(host.to_owned())
            .bind(Vec::<u8>::new())
            .bind(until)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
            Reserved::Yes
        };
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn update_mapping(
        &self,
        url: &str,
        mapping: &Mapping,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE front_cimd_clients SET client_id = $1, document_hash = $2, fresh_until = $3, \
             last_used = $4 WHERE url = $5",
        )
        .bind(mapping.client_id.clone())
        .bind(mapping.document_hash.clone())
        .bind(mapping.fresh_until)
        .bind(now)
        .bind(url.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn touch(&self, url: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE front_cimd_clients SET last_used = $1 WHERE url = $2")
            .bind(now)
            .bind(url.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove_mapping(&self, url: &str, seen: &Mapping) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM front_cimd_clients WHERE url = $1 AND client_id = $2 \
             AND fresh_until = $3",
        )
        .bind(url.to_owned())
        .bind(seen.client_id.clone())
        .bind(seen.fresh_until)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn documents(&self, limit: u32) -> Result<Vec<(String, Mapping)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MAPPING_COLUMNS}, url FROM front_cimd_clients WHERE client_id <> '' \
             ORDER BY last_used DESC, url LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("url")?, mapping(row)?)))
            .collect()
    }

    async fn unused_since(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT url, client_id FROM front_cimd_clients WHERE last_used < $1 \
             AND client_id <> '' ORDER BY last_used LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }
}

#[async_trait]
impl AssertionReplays for SqlStore {
    async fn first_use(&self, jti: &SecretHash, keep_until: i64) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO front_assertion_jtis (jti_hash, keep_until) VALUES ($1, $2) \
             ON CONFLICT (jti_hash) DO NOTHING",
        )
        .bind(bytes(jti))
        .bind(keep_until)
        .execute(&self.transient)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn sweep_assertions(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM front_assertion_jtis WHERE keep_until <= $1")
            .bind(now)
            .execute(&self.transient)
            .await?;
        Ok(())
    }
}
