//! The seam to the identity provider that holds the clients: one trait,
//! [`Provider`], and one backend per file, each translating the gateway's
//! validated domain values to and from its own wire model. Each backend
//! also reads its own `[provider]` keys ([`settings`]). The service holds a
//! [`registry::Registry`]: the gateway's own store, or a backend.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::{ClientId, ClientMetadata, ClientSecret, ProviderState};

pub mod breaker;
pub mod instrumented;
pub mod listing;
pub mod rest;
// The logout members Hydra and Okta both hold.
mod logout_members;
pub mod registry;
pub mod settings;

// The backends, one module each, named as its `kind`.
pub mod billforward;
pub mod hydra;
pub mod local;
pub mod oidc;
pub mod okta;
pub mod rfc7591;
pub mod zendesk;

pub use settings::ProviderSettings;

// The list of backends: each line is the module, its settings type and its
// variant of `ProviderKind`. A new backend is its own file(s), its `mod`
// line above and one line here.
settings::backends! {
    local::LocalSettings => Local,
    hydra::HydraSettings => Hydra,
    rfc7591::Rfc7591Settings => Rfc7591,
    okta::OktaSettings => Okta,
    zendesk::ZendeskSettings => Zendesk,
    billforward::BillForwardSettings => BillForward,
    oidc::OidcSettings => Oidc,
}

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

/// Unix seconds of an RFC 3339 date-time in UTC, as providers write them.
fn unix_time(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_secs()).ok()
}

/// `text` escaped for one URL path segment or query value (or one part of
/// form-encoded client credentials).
pub(crate) fn urlencode(text: &str) -> String {
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

/// The gateway's hold on provider ids, for a backend whose provider picks
/// the id and so finds a create whose answer was lost by searching: an id a
/// row of the gateway holds belongs to another registration, and an id is
/// claimed before anything is done to that client at the provider, so that
/// two registrations never take the same client.
#[async_trait]
pub trait IdClaims: Send + Sync + std::fmt::Debug {
    /// Whether a row of the gateway holds `id`.
    async fn held(&self, id: &ClientId) -> Result<bool, ProviderError>;

    /// Makes `id` this registration's, atomically, keeping `state` with it
    /// (what the backend needs to find that client again from the row);
    /// `false` when another row holds it.
    async fn claim(&self, id: &ClientId, state: ProviderState) -> Result<bool, ProviderError>;
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
    /// The ids the gateway holds, and the claiming of one.
    pub claims: &'a dyn IdClaims,
}

/// A client as a provider lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedClient {
    /// The client id.
    pub id: ClientId,
    /// Whether the gateway's mark is on it: `Some(true)` when the gateway
    /// made it, `Some(false)` when another tool did, `None` when this
    /// provider has no field for a mark.
    pub marked: Option<bool>,
    /// When the provider created it (Unix seconds), where it says.
    pub created_at: Option<i64>,
}

/// What a provider returned for a create or replace.
#[derive(Debug, Default)]
pub struct Provisioned {
    /// The provider's identifier, when it chose its own.
    pub client_id: Option<ClientId>,
    /// The secret the provider holds now, when this call set or showed it:
    /// the only secret the app is ever handed.
    pub client_secret: Option<ClientSecret>,
    /// When that secret expires (seconds since the epoch, 0 never), where
    /// the provider says.
    pub client_secret_expires_at: Option<i64>,
    /// Metadata members as the provider holds them, where it answered with
    /// its own values (an RFC 7591 server may substitute requested values,
    /// §3.2.1): the app is told these.
    pub held_metadata: Option<serde_json::Map<String, Value>>,
    /// State the backend wants kept (replaces the old state when `Some`).
    pub state: Option<ProviderState>,
}

impl Provisioned {
    /// A provider that took the gateway's own secret, if it sent one.
    #[must_use]
    pub fn keeping_secret_of(request: &ProvisionRequest<'_>) -> Self {
        Self {
            client_secret: request.client_secret.cloned(),
            ..Self::default()
        }
    }
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
    /// The gateway will not send the request: the provider cannot hold what
    /// it asks for (in the gateway's own words, fit for the app).
    #[error("refused: {0}")]
    Rejected(String),
    /// The provider refused the request (a 4xx); nothing changed there. The
    /// app must change its request. `detail` is the provider's own text, for
    /// the log only.
    #[error("refused by the provider (HTTP {status}): {detail}")]
    Refused {
        /// The provider's status code.
        status: u16,
        /// The provider's reason, secrets redacted.
        detail: String,
    },
    /// The provider did not act (down, or rate limiting); nothing changed
    /// there. `reason` may quote the provider: it is for the log only.
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

    /// Every client the provider holds, or `None` when it cannot list.
    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError>;

    /// The longest one operation on this provider may run, every retry
    /// included; `None` for the gateway's own registry. The registration
    /// service cuts operations off there, and reconcile waits twice as long
    /// before it touches a row, so that it never races a call in flight.
    fn operation_deadline(&self) -> Option<Duration> {
        None
    }

    /// How far the provider's clock may disagree with the gateway's where
    /// the backend compares them (a lost create searched for by issue time);
    /// reconcile waits that much longer, twice.
    fn clock_skew(&self) -> Duration {
        Duration::ZERO
    }

    /// The provider's own discovery document, when it has an issuer.
    async fn discovery(&self) -> Result<Option<Value>, ProviderError>;
}
