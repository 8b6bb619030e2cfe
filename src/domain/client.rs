//! A registered client as the gateway keeps it: validated metadata, hashes of
//! its secrets, and where it stands in the write protocol.

use std::fmt;
use std::sync::Arc;

use super::metadata::{ClientMetadata, HeapSize};
use super::secret::{RegistrationAccessToken, SecretHash, random_base64url};

/// A client identifier chosen by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// A fresh identifier: 128 random bits, base64url (22 characters).
    #[must_use]
    pub fn generate() -> Self {
        Self(random_base64url(16))
    }

    /// Wraps an identifier read from a request or from storage.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets a map keyed by [`ClientId`] be searched with the identifier's text
/// (the derived `Hash` and `Eq` are those of the text).
impl std::borrow::Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a client stands in the write protocol between gateway and provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Written by the gateway; the provider has not confirmed it yet.
    Pending,
    /// Confirmed at the provider; the only state the RFC 7592 endpoints serve.
    Active,
    /// Being removed from the provider.
    Deleting,
}

impl ClientState {
    /// The name stored in the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Deleting => "deleting",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "deleting" => Some(Self::Deleting),
            _ => None,
        }
    }
}

/// What a provider backend keeps about one client beyond its id (for example
/// an upstream server's registration access token). Opaque to everything but
/// that backend, sealed at rest, never printed.
#[derive(Clone, PartialEq)]
pub struct ProviderState(pub serde_json::Value);

impl fmt::Debug for ProviderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProviderState([redacted])")
    }
}

/// The client metadata a verified software statement set (RFC 7591 §2.3),
/// pinned to the registration: a change without a new statement keeps it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VouchedClaims(pub serde_json::Map<String, serde_json::Value>);

impl VouchedClaims {
    /// The `software_id` the statement vouched for, if it named one.
    #[must_use]
    pub fn software_id(&self) -> Option<&str> {
        self.0
            .get("software_id")
            .and_then(serde_json::Value::as_str)
    }
}

/// A registered client. Secrets are present only as hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredClient {
    /// The gateway-chosen identifier.
    pub client_id: ClientId,
    /// Validated metadata, as registered (shared: a client is cloned out of
    /// the cache on every read).
    pub metadata: Arc<ClientMetadata>,
    /// When the identifier was issued (seconds since the Unix epoch).
    pub issued_at: i64,
    /// Hash of the current registration access token.
    pub registration_token: SecretHash,
    /// Hash of the client secret, for clients that have one.
    pub client_secret: Option<SecretHash>,
    /// When the client secret expires (seconds since the epoch; 0 = never).
    pub client_secret_expires_at: i64,
    /// Where the client stands between gateway and provider.
    pub state: ClientState,
    /// What the provider backend keeps about this client, if anything.
    pub provider_state: Option<ProviderState>,
    /// The policy the client was registered under.
    pub policy: String,
    /// When the client expires and is removed (seconds since the epoch).
    pub expires_at: Option<i64>,
    /// The initial access token that let it register, by id.
    pub initial_access_token_id: Option<String>,
    /// Bumped by every change of the row, so that a change can tell whether
    /// the row is still the one it read.
    pub revision: i64,
    /// Until when a replace holds the client (seconds since the epoch); one
    /// in the past was left by an unknown outcome at the provider.
    pub lease_until: Option<i64>,
    /// What a software statement vouched for, when one was used.
    pub vouched: Option<VouchedClaims>,
}

impl RegisteredClient {
    /// The software this client counts against for a policy's
    /// `max_clients_per_software_id`: the `software_id` a statement vouched
    /// for; without a statement, the one it claims. (A `software_id` sent
    /// beside a statement that names none is vouched for by nobody.)
    #[must_use]
    pub fn counted_software_id(&self) -> Option<&str> {
        counted_software_id(self.vouched.as_ref(), &self.metadata)
    }

    /// Whether an RFC 7592 request presenting `token` is this client's: the
    /// token is its registration access token and the client is active (the
    /// only state those requests are served in).
    #[must_use]
    pub fn answers_to(&self, token: &RegistrationAccessToken) -> bool {
        self.registration_token.matches(token.expose()) && self.state == ClientState::Active
    }
}

/// The software a client with `metadata` and `vouched` claims counts
/// against (see [`RegisteredClient::counted_software_id`]).
#[must_use]
pub fn counted_software_id<'a>(
    vouched: Option<&'a VouchedClaims>,
    metadata: &'a ClientMetadata,
) -> Option<&'a str> {
    match vouched {
        Some(claims) => claims.software_id(),
        None => metadata.software_id.as_deref(),
    }
}

impl RegisteredClient {
    /// About how many bytes this client takes in memory, itself and its
    /// heap, for caches that weigh entries by size.
    #[must_use]
    pub fn approximate_size(&self) -> usize {
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        size_of::<Self>()
            + self.client_id.as_str().len()
            + size_of::<ClientMetadata>()
            + self.metadata.heap_size()
            + self
                .provider_state
                .as_ref()
                .map_or(0, |state| state.0.heap_size())
            + self.policy.len()
            + text(&self.initial_access_token_id)
    }
}

/// An initial access token as stored: its digest and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialAccessTokenRecord {
    /// Public identifier, for listing and revoking.
    pub id: String,
    /// Digest of the token.
    pub hash: super::SecretHash,
    /// Registrations left; `None` for unlimited.
    pub uses_left: Option<i64>,
    /// When it stops working (seconds since the epoch).
    pub expires_at: Option<i64>,
    /// The policy registrations made with it fall under (else the default).
    pub policy: Option<String>,
    /// Free text for operators.
    pub note: Option<String>,
    /// When it was made.
    pub created_at: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl InitialAccessTokenRecord {
    /// A fresh id for a new token.
    #[must_use]
    pub fn new_id() -> String {
        random_base64url(9)
    }

    /// Whether it may still be used at `now`.
    #[must_use]
    pub fn usable(&self, now: i64) -> bool {
        !self.revoked
            && self.uses_left.is_none_or(|n| n > 0)
            && self.expires_at.is_none_or(|t| now < t)
    }
}
