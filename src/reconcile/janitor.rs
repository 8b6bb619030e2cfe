//! The expiry janitor: clients whose lifetime ended, and clients of a
//! policy with an `idle_lifetime` that nobody used for that long, are
//! deleted, at the provider and in the gateway, page by page, a few at a
//! time; and the task that runs it with reconcile, stopped when its guard
//! drops.

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
            removed.extend(self.delete_all(expired, "expire").await);
            if batch < RECONCILE_BATCH as usize {
                return Ok(removed);
            }
        }
    }

    /// Deletes every client of a policy with an `idle_lifetime` that was
    /// not used for that long (its last RFC 7592 call, `/authorize` or
    /// `/token`; or, never used, its registration), at the provider and in
    /// the gateway, as [`Self::expire_clients`] does. Returns the ids
    /// removed.
    pub async fn remove_idle_clients(&self) -> Result<Vec<ClientId>, RegistrationError> {
        // What was used lately counts, even if not yet written.
        self.core.usage().flush().await.map_err(internal)?;
        let now = self.core.now();
        let mut removed = Vec::new();
        for policy in self.core.policies() {
            let Some(idle) = policy.idle_lifetime else {
                continue;
            };
            let unused_since = now.saturating_sub(crate::clock::seconds(idle));
            let mut after: Option<ClientId> = None;
            loop {
                let idle = self
                    .core
                    .idle()
                    .list_idle(&policy.name, unused_since, after.as_ref(), RECONCILE_BATCH)
                    .await
                    .map_err(internal)?;
                let batch = idle.len();
                after = idle.last().map(|client| client.client_id.clone());
                removed.extend(self.delete_all(idle, "idle").await);
                if batch < RECONCILE_BATCH as usize {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Deletes `clients` (audited as `action`), a few at once so that their
    /// store writes share commits and few enough not to flood a provider;
    /// the ids removed. A failure is logged and left for the next run.
    async fn delete_all(
        &self,
        clients: Vec<crate::domain::RegisteredClient>,
        action: &'static str,
    ) -> Vec<ClientId> {
        let mut removed = Vec::new();
        let mut deletes = futures_util::stream::iter(clients)
            .map(|client| async move {
                let outcome = self.core.delete_audited(&client, action, None).await;
                (client.client_id, outcome)
            })
            .buffer_unordered(EXPIRY_CONCURRENCY);
        while let Some((client_id, outcome)) = deletes.next().await {
            match outcome {
                Ok(()) => removed.push(client_id),
                Err(error) => {
                    tracing::warn!(%client_id, %error, action, "removal failed; retried on the next run");
                }
            }
        }
        removed
    }

    /// One pass: reconcile, then the expiry and idle sweeps, each failure
    /// logged and left for the next pass.
    async fn run_once(&self) {
        match self.reconcile().await {
            Ok(report) if report.has_drift() => {
                tracing::warn!(?report, "reconcile found drift");
            }
            Ok(report) => tracing::debug!(?report, "reconcile"),
            Err(error) => tracing::warn!(%error, "reconcile failed"),
        }
        let sweeps = [
            ("expired", self.expire_clients().await),
            ("idle", self.remove_idle_clients().await),
        ];
        for (sweep, outcome) in sweeps {
            match outcome {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(count = removed.len(), sweep, "clients removed");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, sweep, "janitor pass failed"),
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
        Some(TaskGuard::every(interval, move || {
            let reconciler = Arc::clone(&reconciler);
            async move { reconciler.run_once().await }
        }))
    }
}
