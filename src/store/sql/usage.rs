//! [`ClientUsage`] on SQL: the table `client_usage`, a row per client that
//! was used, written a batch at a time on the transient connections (a use
//! lost to a crash only makes a client look idle a little earlier).

use async_trait::async_trait;

use super::SqlStore;
use super::rows::COLUMNS;
use crate::domain::{ClientId, RegisteredClient};
use crate::store::StoreError;
use crate::store::usage::ClientUsage;

#[async_trait]
impl ClientUsage for SqlStore {
    async fn record_uses(&self, uses: &[(String, i64)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut transaction = self.transient.begin().await?;
        for (client_id, at) in uses {
            // Only for a client that exists: the row goes with its client.
            sqlx::query(
                "INSERT INTO client_usage (client_id, last_used_at) \
                 SELECT client_id, $2 FROM clients WHERE client_id = $1 \
                 ON CONFLICT (client_id) DO UPDATE SET last_used_at = excluded.last_used_at \
                 WHERE client_usage.last_used_at < excluded.last_used_at",
            )
            .bind(client_id.clone())
            .bind(*at)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn list_idle(
        &self,
        policy: &str,
        unused_since: i64,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE state = 'active' AND policy = $1 \
             AND client_id > $2 AND client_id_issued_at <= $3 AND NOT EXISTS \
             (SELECT 1 FROM client_usage u WHERE u.client_id = clients.client_id \
              AND u.last_used_at > $3) \
             ORDER BY client_id LIMIT $4"
        );
        self.fetch_clients(
            sqlx::query(&sql)
                .bind(policy.to_owned())
                .bind(after.map_or_else(String::new, |id| id.as_str().to_owned()))
                .bind(unused_since)
                .bind(i64::from(limit)),
        )
        .await
    }
}
