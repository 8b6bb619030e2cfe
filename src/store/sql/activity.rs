//! [`ActivityLog`] and [`AuditTrail`] on SQL: the tables `activity` (a row
//! per hour and kind, added to by each instance) and `audit_trail`, both
//! written a batch at a time on the transient connections (a few seconds of
//! counts lost to a crash of the machine only make a chart a little low).

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use crate::store::StoreError;
use crate::store::activity::{Activity, ActivityLog, HourCount};
use crate::store::trail::{AuditTrail, TrailEntry};

#[async_trait]
impl ActivityLog for SqlStore {
    async fn add_activity(&self, counts: &[HourCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut transaction = self.transient.begin().await?;
        for count in counts {
            sqlx::query(
                "INSERT INTO activity (hour, kind, count) VALUES ($1, $2, $3) \
                 ON CONFLICT (hour, kind) DO UPDATE SET count = activity.count + excluded.count",
            )
            .bind(count.hour)
            .bind(count.kind.as_str())
            .bind(i64::try_from(count.count).unwrap_or(i64::MAX))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn activity_since(&self, from_hour: i64) -> Result<Vec<HourCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT hour, kind, count FROM activity WHERE hour >= $1 ORDER BY hour, kind",
        )
        .bind(from_hour)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            let kind: String = row.try_get("kind")?;
            // A kind this version does not know (written by a newer one).
            let Some(kind) = Activity::parse(&kind) else {
                continue;
            };
            counts.push(HourCount {
                hour: row.try_get("hour")?,
                kind,
                count: u64::try_from(row.try_get::<i64, _>("count")?).unwrap_or(0),
            });
        }
        Ok(counts)
    }

    async fn prune_activity(&self, before_hour: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM activity WHERE hour < $1")
            .bind(before_hour)
            .execute(&self.transient)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl AuditTrail for SqlStore {
    async fn append_trail(&self, entries: &[TrailEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut transaction = self.transient.begin().await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO audit_trail (at, client_id, action, outcome, actor) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(entry.at)
            .bind(entry.client_id.as_str())
            .bind(entry.action.as_str())
            .bind(entry.outcome.as_str())
            .bind(entry.actor.as_deref())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn trail_of(&self, client_id: &str, limit: u32) -> Result<Vec<TrailEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, client_id, action, outcome, actor FROM audit_trail \
             WHERE client_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(client_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TrailEntry {
                    at: row.try_get("at")?,
                    client_id: row.try_get("client_id")?,
                    action: row.try_get("action")?,
                    outcome: row.try_get("outcome")?,
                    actor: row.try_get("actor")?,
                })
            })
            .collect()
    }

    async fn prune_trail(&self, before: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM audit_trail WHERE at < $1")
            .bind(before)
            .execute(&self.transient)
            .await?;
        Ok(())
    }
}
