//! The gateway's signing keys on SQL: the table `gateway_signing_keys`,
//! on the durable connections. The first key is added only if there is
//! none, under the same lock a document reservation takes, so that
//! instances starting together end with one.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, lock_table};
use crate::store::StoreError;
use crate::store::front::{SigningKeyStore, StoredSigningKey};

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, sealed_private, public_jwk, signs_from, retired_at \
             FROM gateway_signing_keys ORDER BY signs_from, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredSigningKey {
                    kid: row.try_get(0)?,
                    algorithm: row.try_get(1)?,
                    sealed_private: row.try_get(2)?,
                    public_jwk: row.try_get(3)?,
                    signs_from: row.try_get(4)?,
                    retired_at: row.try_get(5)?,
                })
            })
            .collect()
    }

    async fn add_signing_key(
        &self,
        key: &StoredSigningKey,
        only_if_none: bool,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        lock_table(&mut transaction, self.backend, "gateway_signing_keys").await?;
        let existing: i64 = sqlx::query("SELECT COUNT(*) FROM gateway_signing_keys")
            .fetch_one(&mut *transaction)
            .await?
            .try_get(0)?;
        if only_if_none && existing > 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO gateway_signing_keys \
             (kid, algorithm, sealed_private, public_jwk, signs_from, retired_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(key.kid.clone())
        .bind(key.algorithm.clone())
        .bind(key.sealed_private.clone())
        .bind(key.public_jwk.clone())
        .bind(key.signs_from)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn retire_signing_keys(&self, kept: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE gateway_signing_keys SET retired_at = $1 \
             WHERE kid <> $2 AND retired_at IS NULL",
        )
        .bind(at)
        .bind(kept.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
