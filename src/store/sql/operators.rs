//! [`OperatorTokens`] on SQL: the table `operator_tokens`, digests only.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use crate::domain::SecretHash;
use crate::store::StoreError;
use crate::store::operators::{OperatorTokenRecord, OperatorTokens};

/// The columns of an operator token, in the order inserts bind them.
const COLUMNS: &str = "id, token_hash, name, created_at, expires_at, revoked";

#[async_trait]
impl OperatorTokens for SqlStore {
    async fn insert_operator_token(&self, token: &OperatorTokenRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO operator_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(token.id.as_str())
        .bind(token.hash.as_bytes())
        .bind(token.name.as_str())
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(i64::from(token.revoked))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn operator_token_by_hash(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<OperatorTokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operator_tokens WHERE token_hash = $1"
        ))
        .bind(hash.as_bytes())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
    }

    async fn operator_token(&self, id: &str) -> Result<Option<OperatorTokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operator_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
    }

    async fn list_operator_tokens(&self) -> Result<Vec<OperatorTokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operator_tokens ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode)
        .collect()
    }

    async fn revoke_operator_token(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE operator_tokens SET revoked = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// An operator token's row.
fn decode(row: &AnyRow) -> Result<OperatorTokenRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let hash: Vec<u8> = row.try_get("token_hash")?;
    let hash = SecretHash::from_bytes(&hash).ok_or_else(|| StoreError::Corrupt {
        client_id: format!("operator token {id}"),
        reason: "token hash length".into(),
    })?;
    Ok(OperatorTokenRecord {
        id,
        hash,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
    })
}
