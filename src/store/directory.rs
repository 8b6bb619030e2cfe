//! The operator's directory of clients (the console's Clients page): the
//! clients matching a filter, newest first, a page at a time. Paging is by
//! key (the last row's registration time and id), never by offset, so a
//! page deep in a million clients costs what the first one does.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{ClientId, ClientState, RegisteredClient};

/// What the clients listed must match; every field set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFilter {
    /// The client's `software_id`, exactly (as registered, or as a
    /// statement vouched for it).
    pub software_id: Option<String>,
    /// The host of one of its `redirect_uris`, exactly, in lower case
    /// (`claude.ai`, `127.0.0.1`).
    pub redirect_host: Option<String>,
    /// Its `client_name` begins with this, ignoring ASCII case.
    pub name_prefix: Option<String>,
    /// Its state.
    pub state: Option<ClientState>,
    /// Registered at or after (seconds since the epoch).
    pub registered_from: Option<i64>,
    /// Registered before (seconds since the epoch).
    pub registered_until: Option<i64>,
    /// When it was last used.
    pub used: Option<Used>,
    /// Whether it was registered for a Client ID Metadata Document (the
    /// front made it) or by an app through `/register`.
    pub origin: Option<Origin>,
}

/// A filter on when a client was last used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    /// Never used since it registered.
    Never,
    /// Not used at or after this time (never used included).
    NotSince(i64),
    /// Used at or after this time.
    Since(i64),
}

/// How a client came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Registered through `/register` (RFC 7591).
    Registered,
    /// Made by the front for a Client ID Metadata Document.
    Document,
}

/// Where a page starts: after this client, in the listing's order (newest
/// first, then by id, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAfter {
    /// The last listed client's registration time.
    pub issued_at: i64,
    /// The last listed client's id.
    pub client_id: ClientId,
}

/// One client as the directory lists it.
#[derive(Debug, Clone)]
pub struct ListedClient {
    /// The client's row.
    pub client: RegisteredClient,
    /// When it was last used, as last written (seconds since the epoch).
    pub last_used_at: Option<i64>,
    /// The metadata document's URL, for a client the front made for one.
    pub document_url: Option<String>,
}

/// The directory of clients.
#[async_trait]
pub trait ClientDirectory: Send + Sync {
    /// At most `limit` clients matching `filter`, newest first (then by id,
    /// descending), starting after `after`.
    async fn find(
        &self,
        filter: &ClientFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<ListedClient>, StoreError>;

    /// One client as the directory lists it, in any state.
    async fn listed(&self, id: &ClientId) -> Result<Option<ListedClient>, StoreError>;
}
