//! The expiry janitor: clients whose lifetime ended are deleted, at the
//! provider and in the gateway, page by page, a few at a time; and the task
//! that runs it with reconcile, stopped when its guard drops.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::{RECONCILE_BATCH, Reconciler};
use crate::domain::{ClientId, RegistrationError};
use crate::registration::core::internal;
use crate::tasks::TaskGuard;

/// Expired clients deleted at once by the janitor.
const EXPIRY_CONCURRENCY: usize = 8;

impl Reconciler {
    /// Deletes every client whose lifetime has ended, at the provider and in
    /// the gateway. A client whose deletion fails is left for the next run
    /// and does not hold up the others. Returns the ids removed.
    pub async fn expire_clients(&self) -> Result<Vec<ClientId>, RegistrationError> {
        let now = self.core.now();
        let mut removed = Vec::new();
        let mut after: Option<(i64, ClientId)> = None;
        loop {
            let expired = self
                .core
                .queries()
                .list_expired(
                    now,
                    after.as_ref().map(|(at, id)| (*at, id)),
                    RECONCILE_BATCH,
                )
                .await
                .map_err(internal)?;
            let batch = expired.len();
            after = expired
                .last()
                .map(|c| (c.expires_at.unwrap_or(now), c.client_id.clone()));
            // A few deletes at once, so that their store writes share
            // commits; few enough not to flood a provider.
            let mut deletes = futures_util::stream::iter(expired)
                .map(|client| async move {
                    let outcome = self.core.delete_audited(&client, "expire").await;
                    (client.client_id, outcome)
                })
                .buffer_unordered(EXPIRY_CONCURRENCY);
            while let Some((client_id, outcome)) = deletes.next().await {
                match outcome {
                    Ok(()) => removed.push(client_id),
                    Err(error) => {
                        tracing::warn!(%client_id, %error, "expiry failed; retried on the next run");
                    }
                }
            }
            if batch < RECONCILE_BATCH as usize {
                return Ok(removed);
            }
        }
    }

    /// Runs reconcile and the janitor every `interval` (never when zero),
    /// until the returned guard is dropped.
    #[must_use]
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> Option<TaskGuard> {
        if interval.is_zero() {
            return None;
        }
        let reconciler = Arc::clone(self);
        Some(TaskGuard::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match reconciler.reconcile().await {
                    Ok(report) if report.has_drift() => {
                        tracing::warn!(?report, "reconcile found drift");
                    }
                    Ok(report) => tracing::debug!(?report, "reconcile"),
                    Err(error) => tracing::warn!(%error, "reconcile failed"),
                }
                match reconciler.expire_clients().await {
                    Ok(expired) if !expired.is_empty() => {
                        tracing::info!(count = expired.len(), "expired clients removed");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "expiry janitor failed"),
                }
            }
        }))
    }
}
