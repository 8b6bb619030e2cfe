//! The seam to the identity provider that holds the clients: one trait,
//! [`Provider`], and one backend per file, each translating the gateway's
//! validated domain values to and from its own wire model.

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::{ClientId, ClientMetadata, ClientSecret, ProviderState};

pub mod billforward;
pub mod http_client;
pub mod hydra;
pub mod instrumented;
pub mod local;
pub mod okta;
pub mod rfc7591;
pub mod zendesk;

/// `path` under a configured base URL, whether or not the base ends in `/`.
fn endpoint(base: &url::Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// Provider state holding a backend's own record of one client.
fn state_of(record: &impl serde::Serialize) -> Result<ProviderState, ProviderError> {
    serde_json::to_value(record)
        .map(ProviderState)
        .map_err(|e| ProviderError::Indeterminate(e.to_string()))
}

/// A backend's own record of one client, when the state holds one.
fn state_as<T: serde::de::DeserializeOwned>(state: Option<&ProviderState>) -> Option<T> {
    state.and_then(|s| serde_json::from_value(s.0.clone()).ok())
}

/// The secret a provider showed in an answer. A client that needs one and
/// was shown none leaves the outcome unknown: the app cannot be answered.
fn shown_secret(
    needed: bool,
    shown: Option<String>,
) -> Result<Option<ClientSecret>, ProviderError> {
    match (needed, shown) {
        (true, Some(secret)) => Ok(Some(ClientSecret::presented(secret))),
        (true, None) => Err(ProviderError::Indeterminate(
            "the provider's answer holds no client secret".into(),
        )),
        (false, _) => Ok(None),
    }
}

/// `text` escaped for one URL path segment or query value.
fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A credential the gateway uses to call a provider (an admin API key, an
/// initial access token). Comes from configuration; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// Wraps a configured value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value, for the `Authorization` header.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A client as the gateway asks a provider to hold it.
#[derive(Debug)]
pub struct ProvisionRequest<'a> {
    /// The gateway-chosen identifier (providers that pick their own ignore it).
    pub client_id: &'a ClientId,
    /// Validated metadata; the backend sends what its provider can hold.
    pub metadata: &'a ClientMetadata,
    /// A secret the gateway generated in this call, for providers that take one.
    pub client_secret: Option<&'a ClientSecret>,
    /// What the backend kept about this client from earlier calls.
    pub state: Option<&'a ProviderState>,
    /// When the gateway registered the client (Unix seconds), so that a
    /// backend searching for a lost create ignores older clients.
    pub issued_at: i64,
}

/// What a provider returned for a create or replace.
#[derive(Debug, Default)]
pub struct Provisioned {
    /// The provider's identifier, when it chose its own.
    pub client_id: Option<ClientId>,
    /// A secret the provider generated or rotated, to hand to the app.
    pub client_secret: Option<ClientSecret>,
    /// State the backend wants kept (replaces the old state when `Some`).
    pub state: Option<ProviderState>,
}

/// What a provider held of a client whose creation was never confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The provider held it (and has now removed it).
    Present,
    /// The provider does not hold it.
    Absent,
    /// The provider cannot be asked about it (e.g. a lost answer left no handle).
    Unknown,
}

/// Why a provider call failed, classified by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the request; nothing changed there. The app must
    /// change its request.
    #[error("refused: {0}")]
    Rejected(String),
    /// The provider did not act (down, or rate limiting); nothing changed there.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// What happened, in words.
        reason: String,
        /// Seconds after which a retry makes sense.
        retry_after_secs: u64,
    },
    /// The outcome is unknown (timeout, dropped connection, server error,
    /// unreadable answer): the change may or may not have happened.
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
    /// The provider does not hold the client (deleted behind the gateway's
    /// back); nothing changed there.
    #[error("unknown to the provider: {0}")]
    NotFound(String),
}

/// A backing identity provider's client API.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;

    /// Whether the gateway's own store is this provider's registry: then a
    /// registration is one durable write, with no pending phase.
    fn is_gateway_registry(&self) -> bool {
        false
    }

    /// Refuses metadata the provider cannot hold at all (an authentication
    /// method, a grant type it lacks), naming the provider's limit. Called
    /// before anything is written, for registrations and replacements.
    fn supports(&self, _metadata: &ClientMetadata) -> Result<(), String> {
        Ok(())
    }

    /// Creates the client at the provider.
    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError>;

    /// Replaces the client's whole registration at the provider.
    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError>;

    /// Deletes the client; deleting a client the provider lacks succeeds.
    async fn delete(
        &self,
        client_id: &ClientId,
        state: Option<&ProviderState>,
    ) -> Result<(), ProviderError>;

    /// Removes a client whose creation was never confirmed (its app never
    /// received credentials), wherever the provider may hold it, and says
    /// what was found. `client` is the request the create was sent with.
    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError>;

    /// Every client id the provider holds, or `None` when it cannot list.
    async fn client_ids(&self) -> Result<Option<Vec<ClientId>>, ProviderError>;

    /// The provider's own discovery document, when it has an issuer.
    async fn discovery(&self) -> Result<Option<Value>, ProviderError>;
}
