//! The shares of the logins in progress: one address (IPv6 per /64) and
//! one client may each have at most their share of the transactions that
//! wait for the provider (`max_transactions_per_ip`,
//! `max_transactions_per_client`).
//!
//! A holder's count is read from the store (counted only up to its share)
//! at most once per [`RECOUNT_EVERY`], and the transactions this instance
//! opens meanwhile are added to it, so `/authorize` costs the same however
//! many transactions the store holds. Several instances may pass a share
//! by what the others open within that second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::FrontError;
use crate::store::front::{Holder, TransactionStore};

/// How long a count read from the store is used.
pub const RECOUNT_EVERY: Duration = Duration::from_secs(1);

/// Which share was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareFull {
    /// The caller's.
    Caller,
    /// The client's.
    Client,
}

/// The counts of the holders seen lately.
pub struct Shares {
    counts: moka::sync::Cache<(bool, String), Arc<AtomicU64>>,
    per_caller: u64,
    per_client: u64,
}

/// A place taken in a caller's and a client's shares: counted once the
/// transaction is open.
pub struct Taken {
    caller: Arc<AtomicU64>,
    client: Arc<AtomicU64>,
}

impl Taken {
    /// The transaction was opened: it counts from now on.
    pub fn opened(self) {
        self.caller.fetch_add(1, Ordering::Relaxed);
        self.client.fetch_add(1, Ordering::Relaxed);
    }
}

impl Shares {
    /// Shares of `per_caller` and `per_client`, tracking at most
    /// `max_tracked_keys` holders.
    #[must_use]
    pub fn new(per_caller: u64, per_client: u64, max_tracked_keys: u64) -> Self {
        Self {
            counts: moka::sync::Cache::builder()
                .max_capacity(max_tracked_keys)
                .time_to_live(RECOUNT_EVERY)
                .build(),
            per_caller,
            per_client,
        }
    }

    /// A place for one more transaction of `caller` (a digest of its
    /// address) for `client_id`, or which share is full.
    pub async fn take(
        &self,
        store: &dyn TransactionStore,
        caller: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Result<Taken, ShareFull>, FrontError> {
        let caller_count = self
            .count(store, Holder::Caller(caller), self.per_caller, now)
            .await?;
        if caller_count.load(Ordering::Relaxed) >= self.per_caller {
            return Ok(Err(ShareFull::Caller));
        }
        let client_count = self
            .count(store, Holder::Client(client_id), self.per_client, now)
            .await?;
        if client_count.load(Ordering::Relaxed) >= self.per_client {
            return Ok(Err(ShareFull::Client));
        }
        Ok(Ok(Taken {
            caller: caller_count,
            client: client_count,
        }))
    }

    /// `holder`'s count: the one kept, or a fresh one from the store.
    async fn count(
        &self,
        store: &dyn TransactionStore,
        holder: Holder<'_>,
        share: u64,
        now: i64,
    ) -> Result<Arc<AtomicU64>, FrontError> {
        let key = match holder {
            Holder::Caller(caller) => (true, caller.to_owned()),
            Holder::Client(client_id) => (false, client_id.to_owned()),
        };
        if let Some(count) = self.counts.get(&key) {
            return Ok(count);
        }
        let live = store.live(holder, now, share).await?;
        let count = Arc::new(AtomicU64::new(live));
        self.counts.insert(key, Arc::clone(&count));
        Ok(count)
    }
}
