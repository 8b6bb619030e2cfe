//! Recording when clients are used, cheaply: a use is a map update in
//! memory (the latest time per client), and a task hands the map to the
//! store every [`FLUSH_EVERY`], in one transaction, off every request's
//! path. What the store holds feeds the idle sweep (`idle_lifetime`) and
//! the operator's view of each client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::store::StoreError;
use crate::store::usage::ClientUsage;
use crate::tasks::TaskGuard;

/// How often the uses gathered are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// Most clients whose use waits in memory: beyond, new ones are dropped
/// until the next flush (a flood of made-up ids cannot grow it).
const MAX_PENDING: usize = 100_000;

/// Most uses written in one transaction.
const FLUSH_BATCH: usize = 500;

/// Uses gathered in memory, written in batches.
pub struct UsageRecorder {
    pending: Mutex<HashMap<String, i64>>,
    store: Arc<dyn ClientUsage>,
    clock: Arc<dyn Clock>,
}

impl UsageRecorder {
    /// A recorder writing to `store`, timing uses by `clock`.
    #[must_use]
    pub fn new(store: Arc<dyn ClientUsage>, clock: Arc<dyn Clock>) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            store,
            clock,
        }
    }

    /// Where the uses are written (and read back).
    #[must_use]
    pub fn store(&self) -> &dyn ClientUsage {
        self.store.as_ref()
    }

    /// Notes that `client_id` was used now.
    pub fn used(&self, client_id: &str) {
        let now = self.clock.now_unix();
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        if let Some(at) = pending.get_mut(client_id) {
            *at = now;
        } else if pending.len() < MAX_PENDING {
            pending.insert(client_id.to_owned(), now);
        }
    }

    /// Writes the uses gathered so far; those a failed write held are kept
    /// for the next flush (unless newer ones came meanwhile).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let taken: Vec<(String, i64)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Ok(()),
        };
        for (index, batch) in taken.chunks(FLUSH_BATCH).enumerate() {
            if let Err(error) = self.store.record_uses(batch).await {
                self.keep(&taken[index * FLUSH_BATCH..]);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Puts `uses` back, where no newer use of the same client came.
    fn keep(&self, uses: &[(String, i64)]) {
        if let Ok(mut pending) = self.pending.lock() {
            for (client_id, at) in uses {
                if pending.len() >= MAX_PENDING {
                    return;
                }
                pending.entry(client_id.clone()).or_insert(*at);
            }
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until the guard drops.
    #[must_use]
    pub fn spawn_flusher(self: &Arc<Self>) -> TaskGuard {
        let recorder = Arc::clone(self);
        TaskGuard::every(FLUSH_EVERY, move || {
            let recorder = Arc::clone(&recorder);
            async move {
                if let Err(error) = recorder.flush().await {
                    tracing::warn!(%error, "client uses not recorded; retried at the next flush");
                }
            }
        })
    }
}
