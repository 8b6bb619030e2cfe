//! The read cache in front of the client port: reads of a client (token
//! checks, the front's lookups) come from a moka cache bounded in bytes and
//! in clients, with a time to live; every write invalidates the entry
//! before it returns, and a change feed carries other processes' writes in.
//! While the feed is broken the cache is bypassed, so another process's
//! change is never hidden for longer than the feed takes to deliver it.
//! Each change is passed on to the [`ChangeListener`]s (the HTTP edge's
//! memory of read answers), under the same rules.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use metrics::Counter;
use moka::sync::Cache;

use super::{Change, ChangeFeed, ChangeListener, ClientStore, StoreError};
use crate::domain::{ClientId, ClientState, ProviderState, RegisteredClient};

/// Hit and miss counts of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Reads that went to the store.
    pub misses: u64,
}

/// What the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheContents {
    /// Clients held.
    pub entries: u64,
    /// Their weight: estimated bytes, each at least its share of the budget.
    pub weighted_bytes: u64,
}

/// A [`ClientStore`] with a read cache in front, telling its listeners of
/// every change.
pub struct CachedStore {
    inner: Arc<dyn ClientStore>,
    /// Told of every change, this process's and the feed's.
    listeners: Vec<Arc<dyn ChangeListener>>,
    /// Shared, so that a read from memory copies nothing.
    cache: Cache<ClientId, Arc<RegisteredClient>>,
    /// Bumped on every write and every outside change; a read that sees it
    /// move while it fetched drops what it cached (it may be stale).
    epoch: AtomicU64,
    /// False while the change feed is broken: reads then go to the store.
    following: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// `dcr_cache_hits_total` and `dcr_cache_misses_total`, looked up in
    /// the recorder once, not on every read.
    hit_metric: Counter,
    miss_metric: Counter,
}

impl CachedStore {
    /// Caches at most `max_clients` clients taking at most `max_bytes`
    /// between them (by [`RegisteredClient::approximate_size`]), each for at
    /// most `ttl`; `listeners` are told of every change.
    pub fn new(
        inner: Arc<dyn ClientStore>,
        max_clients: u64,
        max_bytes: u64,
        ttl: Duration,
        listeners: Vec<Arc<dyn ChangeListener>>,
    ) -> Self {
        // Every entry weighs at least a `max_clients`-th of the budget, so
        // the budget also holds the count.
        let least = u32::try_from(max_bytes.div_ceil(max_clients.max(1))).unwrap_or(u32::MAX);
        Self {
            inner,
            listeners,
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(move |_, client: &Arc<RegisteredClient>| {
                    u32::try_from(client.approximate_size())
                        .unwrap_or(u32::MAX)
                        .max(least)
                })
                .time_to_live(ttl)
                .build(),
            epoch: AtomicU64::new(0),
            following: AtomicBool::new(true),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            hit_metric: metrics::counter!("dcr_cache_hits_total"),
            miss_metric: metrics::counter!("dcr_cache_misses_total"),
        }
    }

    /// Hit and miss counts so far.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// What the cache holds once its pending evictions have run.
    pub fn contents(&self) -> CacheContents {
        self.cache.run_pending_tasks();
        CacheContents {
            entries: self.cache.entry_count(),
            weighted_bytes: self.cache.weighted_size(),
        }
    }

    /// Drops what `change` made stale, here and at every listener.
    fn apply(&self, change: &Change) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::Client(id) => self.cache.invalidate(id),
            Change::Everything => self.cache.invalidate_all(),
        }
        for listener in &self.listeners {
            listener.changed(change);
        }
    }

    /// This process changed the client `id`.
    fn changed(&self, id: &ClientId) {
        self.apply(&Change::Client(id.clone()));
    }

    /// Whether changes are followed; while not, nothing is answered from
    /// memory, here or at any listener.
    fn set_following(&self, following: bool) -> bool {
        let was = self.following.swap(following, Ordering::SeqCst);
        for listener in &self.listeners {
            listener.following(following);
        }
        was
    }

    /// Applies other processes' changes for as long as the runtime runs.
    /// While the feed fails, the cache is emptied and bypassed; it is used
    /// again once the feed answers (with [`Change::Everything`]).
    pub fn follow(self: &Arc<Self>, mut feed: Box<dyn ChangeFeed>) -> tokio::task::JoinHandle<()> {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match feed.next().await {
                    Ok(change @ Change::Client(_)) => cache.apply(&change),
                    Ok(Change::Everything) => {
                        cache.apply(&Change::Everything);
                        cache.set_following(true);
                    }
                    Err(error) => {
                        if cache.set_following(false) {
                            tracing::warn!(%error, "change feed failed; reading from the store until it is back");
                        }
                        cache.apply(&Change::Everything);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }
}

#[async_trait]
impl ClientStore for CachedStore {
    async fn insert(
        &self,
        client: &RegisteredClient,
        software_limit: Option<u64>,
    ) -> Result<(), StoreError> {
        let result = self.inner.insert(client, software_limit).await;
        self.changed(&client.client_id);
        result
    }

    async fn get(&self, id: &ClientId) -> Result<Option<RegisteredClient>, StoreError> {
        if !self.following.load(Ordering::SeqCst) {
            return self.inner.get(id).await;
        }
        if let Some(client) = self.cache.get(id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.hit_metric.increment(1);
            return Ok(Some(RegisteredClient::clone(&client)));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.miss_metric.increment(1);
        let before = self.epoch.load(Ordering::SeqCst);
        let client = self.inner.get(id).await?;
        if let Some(client) = client.as_ref().filter(|c| c.state == ClientState::Active) {
            self.cache.insert(id.clone(), Arc::new(client.clone()));
            if self.epoch.load(Ordering::SeqCst) != before {
                // A write landed while we read: what we cached may be old.
                self.cache.invalidate(id);
            }
        }
        Ok(client)
    }

    async fn activate(
        &self,
        pending_id: &ClientId,
        client: &RegisteredClient,
    ) -> Result<bool, StoreError> {
        let result = self.inner.activate(pending_id, client).await;
        self.changed(pending_id);
        self.changed(&client.client_id);
        result
    }

    async fn claim_pending(
        &self,
        pending_id: &ClientId,
        provider_id: &ClientId,
        state: &ProviderState,
    ) -> Result<bool, StoreError> {
        let result = self
            .inner
            .claim_pending(pending_id, provider_id, state)
            .await;
        self.changed(pending_id);
        self.changed(provider_id);
        result
    }

    async fn lease(
        &self,
        id: &ClientId,
        revision: i64,
        now: i64,
        until: i64,
    ) -> Result<Option<i64>, StoreError> {
        let result = self.inner.lease(id, revision, now, until).await;
        self.changed(id);
        result
    }

    async fn release(&self, id: &ClientId, revision: i64) -> Result<bool, StoreError> {
        let result = self.inner.release(id, revision).await;
        self.changed(id);
        result
    }

    async fn update(&self, client: &RegisteredClient) -> Result<bool, StoreError> {
        let result = self.inner.update(client).await;
        self.changed(&client.client_id);
        result
    }

    async fn begin_delete(&self, id: &ClientId, now: i64) -> Result<bool, StoreError> {
        let result = self.inner.begin_delete(id, now).await;
        self.changed(id);
        result
    }

    async fn set_state(&self, id: &ClientId, state: ClientState) -> Result<bool, StoreError> {
        let result = self.inner.set_state(id, state).await;
        self.changed(id);
        result
    }

    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        let result = self.inner.remove(id).await;
        self.changed(id);
        result
    }

    async fn delete_active(&self, id: &ClientId, now: i64) -> Result<bool, StoreError> {
        let result = self.inner.delete_active(id, now).await;
        self.changed(id);
        result
    }
}
