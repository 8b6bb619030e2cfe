//! Persistence, behind one narrow port per job: [`ClientStore`] (one
//! client's row and its life), [`ClientQueries`] (listings, counts, the
//! work of reconcile and the janitor), [`InitialAccessTokens`], [`Health`],
//! and the front's ports ([`front`]). The SQL store (SQLite embedded by
//! default, PostgreSQL for several instances) implements them all; the read
//! cache ([`cached`]) wraps only [`ClientStore`], and tells
//! [`ChangeListener`]s of every change.

use async_trait::async_trait;

use crate::domain::{
    ClientId, ClientState, InitialAccessTokenRecord, ProviderState, RegisteredClient, SecretHash,
};

pub mod activity;
pub mod cached;
pub mod directory;
pub mod front;
pub mod operators;
pub mod sealing;
pub mod sql;
pub mod trail;
pub mod usage;

/// A storage failure. The cause is for the log, never for the caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The store URL or file is unusable.
    #[error("cannot open store: {0}")]
    Open(String),
    /// A stored row no longer parses.
    #[error("stored client `{client_id}` is unreadable: {reason}")]
    Corrupt {
        /// The affected client.
        client_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Provider state could not be sealed or opened.
    #[error("provider state of `{client_id}`: {reason}")]
    Sealing {
        /// The affected client.
        client_id: String,
        /// What failed.
        reason: String,
    },
    /// A write could not be committed.
    #[error("write failed: {0}")]
    Write(String),
    /// A client with this id already exists.
    #[error("client `{0}` already exists")]
    Duplicate(ClientId),
    /// The client's software already has as many clients as allowed.
    #[error("software `{0}` has as many clients as allowed")]
    SoftwareFull(String),
}

/// A change to a client made by another process, as a cache must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This client changed or went away.
    Client(ClientId),
    /// Changes may have been missed: forget everything.
    Everything,
}

/// A stream of changes other processes make to the clients.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Waits for the next change. After a call fails, the next one that
    /// succeeds answers [`Change::Everything`] (changes may have been missed).
    async fn next(&mut self) -> Result<Change, StoreError>;
}

/// Told, as they happen, of the changes to the clients: this process's
/// writes before they return, other processes' as the change feed brings
/// them. What keeps copies of clients (or answers made from them) in
/// memory listens, and drops what changed.
pub trait ChangeListener: Send + Sync {
    /// A client changed or went away, or (`Everything`) any may have.
    fn changed(&self, change: &Change);

    /// Whether changes are followed: `false` while the change feed is
    /// broken (changes may go unseen, so nothing may be answered from
    /// memory), `true` again once it is back.
    fn following(&self, following: bool);
}

/// One client's row and its life: what registration and management read
/// and write. Every write is durable when it returns.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Adds a new client; [`StoreError::Duplicate`] if the id is taken, and
    /// [`StoreError::SoftwareFull`] if its software
    /// ([`RegisteredClient::counted_software_id`]) already has
    /// `software_limit` pending or active clients, counted exactly however
    /// many inserts race.
    async fn insert(
        &self,
        client: &RegisteredClient,
        software_limit: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Reads a client in any state.
    async fn get(&self, id: &ClientId) -> Result<Option<RegisteredClient>, StoreError>;

    /// Makes the pending row `pending_id` active as `client` (whose id may
    /// differ, when the provider chose it), with its secret hash, secret
    /// expiry and provider state. Returns `false` when no pending row has
    /// that id; [`StoreError::Duplicate`] when another row holds the new id.
    async fn activate(
        &self,
        pending_id: &ClientId,
        client: &RegisteredClient,
    ) -> Result<bool, StoreError>;

    /// Gives the pending row `pending_id` the id `provider_id`, which the
    /// provider chose for a client this registration is adopting, and the
    /// backend's `state` for it; `false` when another row holds that id or
    /// no pending row has `pending_id`.
    async fn claim_pending(
        &self,
        pending_id: &ClientId,
        provider_id: &ClientId,
        state: &ProviderState,
    ) -> Result<bool, StoreError>;

    /// Takes the replace lease on an active client until `until`, if the row
    /// is still at `revision` and no live lease (one ending after `now`) is
    /// on it. Returns the row's new revision, or `None` when another change
    /// got there first.
    async fn lease(
        &self,
        id: &ClientId,
        revision: i64,
        now: i64,
        until: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// Ends the lease taken at `revision` without a change (the provider
    /// refused it); `false` when the row moved on.
    async fn release(&self, id: &ClientId, revision: i64) -> Result<bool, StoreError>;

    /// Overwrites an active client's metadata, hashes, secret expiry and
    /// provider state, and ends its lease, if the row is still at
    /// `client.revision` (the revision its lease returned or, for the
    /// built-in registry, which takes no lease, the revision read). Returns `false`
    /// when it is not (so an update never revives a client that is being
    /// deleted, nor overwrites another change).
    async fn update(&self, client: &RegisteredClient) -> Result<bool, StoreError>;

    /// Marks an active client `deleting`, unless a live lease (one ending
    /// after `now`) is on it; `false` when it is not active or leased.
    async fn begin_delete(&self, id: &ClientId, now: i64) -> Result<bool, StoreError>;

    /// Moves a client to another state; `false` when no such client exists.
    async fn set_state(&self, id: &ClientId, state: ClientState) -> Result<bool, StoreError>;

    /// Removes a client; `false` when no such client exists.
    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError>;

    /// Removes an active client in one write, unless a live lease (one
    /// ending after `now`) is on it; `false` when it is not active or
    /// leased. For the built-in registry, where no provider has to be told
    /// between marking and removing.
    async fn delete_active(&self, id: &ClientId, now: i64) -> Result<bool, StoreError>;
}

/// The queries over many clients: operators' listings, the cap per
/// software, and the work reconcile and the expiry janitor page through.
#[async_trait]
pub trait ClientQueries: Send + Sync {
    /// Clients in id order, starting after `after`, at most `limit`.
    async fn list(
        &self,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError>;

    /// Clients in `state` not written since `updated_before` (seconds since
    /// the epoch), oldest first, at most `limit`: work left for reconcile.
    async fn list_stale(
        &self,
        state: ClientState,
        updated_before: i64,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError>;

    /// Active clients whose lease ended before `now`: replaces whose outcome
    /// at the provider is unknown, oldest first, at most `limit`.
    async fn list_lapsed_leases(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError>;

    /// Pending and active clients that count against `software_id`.
    async fn count_software(&self, software_id: &str) -> Result<u64, StoreError>;

    /// Active clients whose lifetime ended at or before `now`, in order of
    /// expiry then id, after `after` (the expiry and id of the last client
    /// of the previous page), at most `limit`.
    async fn list_expired(
        &self,
        now: i64,
        after: Option<(i64, &ClientId)>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError>;
}

/// Initial access tokens (RFC 7591 §3), kept as digests.
#[async_trait]
pub trait InitialAccessTokens: Send + Sync {
    /// Adds an initial access token.
    async fn insert_initial_access_token(
        &self,
        token: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError>;

    /// Finds an initial access token by its digest, whatever its state.
    async fn find_initial_access_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError>;

    /// Spends one use of a token, atomically: `false` when it is revoked,
    /// expired at `now`, or used up (so concurrent spenders never overspend).
    async fn spend_initial_access_token(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// Gives back a use spent on a registration that made nothing.
    async fn refund_initial_access_token(&self, id: &str) -> Result<(), StoreError>;

    /// Every initial access token, newest first.
    async fn list_initial_access_tokens(&self)
    -> Result<Vec<InitialAccessTokenRecord>, StoreError>;

    /// Revokes a token; `false` when no such token exists.
    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError>;
}

/// Whether the database answers.
#[async_trait]
pub trait Health: Send + Sync {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
