//! The authorization front's [`TransactionStore`] and [`CimdStore`] on
//! SQL: the tables `front_transactions` and `front_cimd_clients`, each
//! method one or two queries written once for both databases. Every step
//! of a transaction is a conditional update, so that a transaction
//! completes, and a code is redeemed, at most once across all instances.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, as_bigint};
use crate::domain::SecretHash;
use crate::store::StoreError;
use crate::store::front::{
    CimdStore, CodePhase, Mapping, NewCode, StoredCode, Transaction, TransactionStore,
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

#[async_trait]
impl TransactionStore for SqlStore {
    async fn open(
        &self,
        state: &SecretHash,
        transaction: &Transaction,
        now: i64,
        max_live: u64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM front_transactions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO front_transactions (state_hash, phase, {COLUMNS}) \
             SELECT $1, 'authorizing', $2, $3, $4, $5, $6, $7, $8 \
             WHERE (SELECT COUNT(*) FROM front_transactions) < $9"
        ))
        .bind(state.as_bytes().to_vec())
        .bind(transaction.client_id.clone())
        .bind(transaction.redirect_uri.clone())
        .bind(transaction.app_state.clone())
        .bind(transaction.code_challenge.clone())
        .bind(transaction.scope.clone())
        .bind(transaction.resource.clone())
        .bind(transaction.expires_at)
        .bind(as_bigint(max_live))
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn complete(
        &self,
        state: &SecretHash,
        code: Option<NewCode<'_>>,
        now: i64,
    ) -> Result<Option<Transaction>, StoreError> {
        let (phase, hash, sealed, expires_at) = match &code {
            Some(code) => (
                "code",
                Some(code.hash.as_bytes().to_vec()),
                Some(code.sealed.to_vec()),
                code.expires_at,
            ),
            None => ("failed", None, None, now),
        };
        let row = sqlx::query(&format!(
            "UPDATE front_transactions SET phase = $1, code_hash = $2, sealed = $3, \
             expires_at = CASE WHEN $4 < expires_at THEN $4 ELSE expires_at END \
             WHERE state_hash = $5 AND phase = 'authorizing' AND expires_at > $6 \
             RETURNING {COLUMNS}"
        ))
        .bind(phase)
        .bind(hash)
        .bind(sealed)
        .bind(expires_at)
        .bind(state.as_bytes().to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(transaction).transpose()
    }

    async fn code(&self, code: &SecretHash) -> Result<Option<StoredCode>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, phase, sealed FROM front_transactions WHERE code_hash = $1"
        ))
        .bind(code.as_bytes().to_vec())
        .fetch_optional(&self.pool)
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
            "UPDATE front_transactions SET phase = 'redeemed', sealed = NULL, expires_at = $1 \
             WHERE code_hash = $2 AND phase = 'code' AND expires_at > $3",
        )
        .bind(keep_until)
        .bind(code.as_bytes().to_vec())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_tokens(&self, code: &SecretHash, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE front_transactions SET sealed = $1 WHERE code_hash = $2")
            .bind(sealed.to_vec())
            .bind(code.as_bytes().to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl CimdStore for SqlStore {
    async fn mapping(&self, url: &str) -> Result<Option<Mapping>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, document_hash, fresh_until FROM front_cimd_clients WHERE url = $1",
        )
        .bind(url.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Mapping {
            client_id: row.try_get(0)?,
            document_hash: row.try_get(1)?,
            fresh_until: row.try_get(2)?,
        }))
    }

    async fn documents_of(&self, host: Option<&str>) -> Result<u64, StoreError> {
        let row = match host {
            Some(host) => {
                sqlx::query("SELECT COUNT(*) FROM front_cimd_clients WHERE host = $1")
                    .bind(host.to_owned())
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT COUNT(*) FROM front_cimd_clients")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0))
    }

    async fn insert_mapping(
        &self,
        url: &str,
        host: &str,
        mapping: &Mapping,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO front_cimd_clients (url, host, client_id, document_hash, fresh_until) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (url) DO NOTHING",
        )
        .bind(url.to_owned())
        .bind(host.to_owned())
        .bind(mapping.client_id.clone())
        .bind(mapping.document_hash.clone())
        .bind(mapping.fresh_until)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_mapping(&self, url: &str, mapping: &Mapping) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE front_cimd_clients SET client_id = $1, document_hash = $2, fresh_until = $3 \
             WHERE url = $4",
        )
        .bind(mapping.client_id.clone())
        .bind(mapping.document_hash.clone())
        .bind(mapping.fresh_until)
        .bind(url.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
