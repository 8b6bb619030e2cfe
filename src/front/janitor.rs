//! The front's upkeep, off the request path: every [`SWEEP_EVERY`] the
//! janitor removes the answered logins kept past their time and counts the
//! others (what `/callback` holds against `max_transactions`), and removes
//! the clients of metadata documents nobody used for `[front.cimd]
//! idle_lifetime`. With the gateway's own tokens, another task reads the
//! signing keys every [`RELOAD`], which replaces them when they are due
//! ([`super::tokens::keys`]), so that they are with no request coming.
//!
//! `/callback` never counts the table itself: it checks the count of the
//! last sweep plus the logins this instance recorded since. With several
//! instances the cap may be passed by what the others record within one
//! sweep interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Front;
use super::error::FrontError;
use super::tokens::keys::RELOAD;
use crate::clock::seconds;
use crate::tasks::TaskGuard;

/// How often the janitor runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Documents whose clients are removed in one pass, at most.
const UNUSED_BATCH: u32 = 100;

/// The answered logins the store keeps, as `/callback` sees them.
#[derive(Debug, Default)]
pub struct LiveTransactions {
    /// Counted at the last sweep (all instances).
    at_sweep: AtomicU64,
    /// Recorded by this instance since.
    opened: AtomicU64,
}

impl LiveTransactions {
    /// Whether another transaction fits under `max`.
    #[must_use]
    pub fn admit(&self, max: u64) -> bool {
        let live = self.at_sweep.load(Ordering::Relaxed) + self.opened.load(Ordering::Relaxed);
        live < max
    }

    /// One more was opened.
    pub fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// A sweep counted `live`.
    pub fn swept(&self, live: u64) {
        self.at_sweep.store(live, Ordering::Relaxed);
        self.opened.store(0, Ordering::Relaxed);
    }
}

impl Front {
    /// One pass of the janitor.
    pub async fn sweep(&self) -> Result<(), FrontError> {
        let now = self.now();
        let live = self.transactions.sweep(now).await?;
        self.live.swept(live);
        if self.broker.is_some() {
            self.refresh_tokens.sweep_families(now).await?;
            self.assertions.sweep(now).await?;
        }
        if let Some(idle) = self.settings.cimd.idle_lifetime {
            self.remove_unused_documents(now.saturating_sub(seconds(idle)))
                .await?;
        }
        Ok(())
    }

    /// Removes the clients of documents not used since `before`, here and
    /// at the provider; the next use of such a document registers it again.
    async fn remove_unused_documents(&self, before: i64) -> Result<(), FrontError> {
        let unused = self
            .documents_store
            .unused_since(before, UNUSED_BATCH)
            .await?;
        for (url, client_id) in unused {
            if let Err(error) = self.registrations.remove_unused(&client_id).await {
                tracing::warn!(%error, %url, "front: an unused document client was not removed");
                continue;
            }
            let Some(seen) = self.documents_store.mapping(&url).await? else {
                continue;
            };
            if seen.client_id == client_id {
                self.documents_store.remove_mapping(&url, &seen).await?;
            }
        }
        Ok(())
    }

    /// Runs the janitor every [`SWEEP_EVERY`] until the returned guard is
    /// dropped; the first pass runs at once.
    #[must_use]
    pub fn spawn_janitor(self: &Arc<Self>) -> TaskGuard {
        let front = Arc::clone(self);
        TaskGuard::every(SWEEP_EVERY, move || {
            let front = Arc::clone(&front);
            async move {
                if let Err(error) = front.sweep().await {
                    tracing::warn!(%error, "front: janitor pass failed");
                }
            }
        })
    }

    /// With the gateway's own tokens, reads the signing keys every
    /// [`RELOAD`] (the first time at once), rotating them when they are
    /// due, until the returned guard is dropped.
    #[must_use]
    pub fn spawn_key_rotation(self: &Arc<Self>) -> Option<TaskGuard> {
        self.tokens.as_ref()?;
        let front = Arc::clone(self);
        Some(TaskGuard::every(RELOAD, move || {
            let front = Arc::clone(&front);
            async move {
                if let Some(tokens) = &front.tokens
                    && let Err(error) = tokens.keys().loaded(front.now()).await
                {
                    tracing::warn!(%error, "front: the signing keys were not read");
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_of_the_last_sweep_and_the_opens_since_make_the_cap() {
        let live = LiveTransactions::default();
        assert!(live.admit(2));
        live.opened();
        live.opened();
        assert!(!live.admit(2));
        live.swept(1);
        assert!(live.admit(2));
    }
}
