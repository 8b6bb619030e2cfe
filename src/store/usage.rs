//! When each client was last used (issue 31): an RFC 7592 call, or an
//! `/authorize` or `/token` at the front. The recorder above the store
//! gathers uses in memory and hands them over in batches; the janitor asks
//! for the clients of a policy with an `idle_lifetime` that nobody used
//! for that long.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{ClientId, RegisteredClient};

/// Last uses of clients.
#[async_trait]
pub trait ClientUsage: Send + Sync {
    /// Records that each client of `uses` was used at its time (seconds
    /// since the epoch); a time earlier than the one kept changes nothing,
    /// and a client that no longer exists is skipped.
    async fn record_uses(&self, uses: &[(String, i64)]) -> Result<(), StoreError>;

    /// Active clients registered under `policy` last used (or, never used,
    /// registered) at or before `unused_since`, in id order after `after`,
    /// at most `limit`.
    async fn list_idle(
        &self,
        policy: &str,
        unused_since: i64,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError>;
}
