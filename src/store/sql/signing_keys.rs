//! The gateway's signing keys on SQL: the table `gateway_signing_keys`,
//! on the durable connections. A key is added under the same lock a
//! document reservation takes, after the newest key was checked again under
//! it, so that instances starting (or rotating) together add one.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, lock_table};
use crate::store::StoreError;
use crate::store::front::{KeyDue, SigningKeyStore, StoredSigningKey};

/// The columns [`key`] reads, in its order.
const COLUMNS: &str = "kid, algorithm, sealed_private, public_jwk, signs_from, retired_at";

/// A key from a row of [`COLUMNS`].
fn key(row: &AnyRow) -> Result<StoredSigningKey, StoreError> {
    Ok(StoredSigningKey {
        kid: row.try_get(0)?,
        algorithm: row.try_get(1)?,
        sealed_private: row.try_get(2)?,
        public_jwk: row.try_get(3)?,
        signs_from: row.try_get(4)?,
        retired_at: row.try_get(5)?,
    })
}

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM gateway_signing_keys ORDER BY signs_from, kid"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key).collect()
    }

    async fn add_signing_key(
        &self,
        new: &StoredSigningKey,
        retire_others_at: i64,
        due: KeyDue<'_>,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        lock_table(&mut transaction, self.backend, "gateway_signing_keys").await?;
        let newest = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM gateway_signing_keys \
             ORDER BY signs_from DESC, kid DESC LIMIT 1"
        ))
        .fetch_optional(&mut *transaction)
        .await?
        .as_ref()
        .map(key)
        .transpose()?;
        if due.reason(newest.as_ref()).is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO gateway_signing_keys \
             (kid, algorithm, sealed_private, public_jwk, signs_from, retired_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(new.kid.clone())
        .bind(new.algorithm.clone())
        .bind(new.sealed_private.clone())
        .bind(new.public_jwk.clone())
        .bind(new.signs_from)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE gateway_signing_keys SET retired_at = $1 \
             WHERE kid <> $2 AND retired_at IS NULL",
        )
        .bind(retire_others_at)
        .bind(new.kid.clone())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(true)
    }
}
