//! The registration service: everything RFC 7591 registration and RFC 7592
//! management do, in one place and in the order that loses nothing —
//! admit (initial access token), apply the software statement, validate and
//! apply the policy, write the gateway's row, call the provider, confirm the
//! row. The HTTP routes and the operator commands both go through it.
//!
//! # Layout
//!
//! - this file: the ports the service needs besides the store and the
//!   provider ([`DocumentFetcher`], [`StatementVerifier`]), its settings, the
//!   values it takes and answers with, and [`RegistrationService`] itself.
//! - `admission`: who may register and with what — initial access tokens,
//!   software statements, metadata rules and policy, the sector identifier.
//! - `register`: the RFC 7591 flow — the pending row, the provider, the
//!   confirmed row, and giving back what a failed registration spent.
//! - `manage`: the RFC 7592 flow — token checks, read, replace under a
//!   lease, delete.
//! - `compat`: the client-compatibility rules (`[registration.compat]`)
//!   that let current MCP clients register as they are.
//! - `admin`: the operator's commands and the expiry of clients.
//! - `trusted`: registrations on the gateway's own authority (clients of
//!   Client ID Metadata Documents, for the authorization front).
//! - `reconcile`: bringing gateway and provider back in line.
//! - `provider_calls`: calling the provider — its deadline, the ids it
//!   claims for a row, and its failures in the gateway's words.

mod admin;
mod admission;
pub mod compat;
mod manage;
mod provider_calls;
mod reconcile;
mod register;
mod trusted;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use crate::clock::{Clock, seconds};
use crate::domain::policy::Policy;
use crate::domain::{
    ClientId, ClientSecret, InitialAccessToken, InitialAccessTokenRecord, RegisteredClient,
    RegistrationAccessToken, RegistrationError,
};
use crate::provider::Presence;
use crate::provider::registry::Registry;
use crate::store::{
    ClientQueries, ClientStore, Health, InitialAccessTokens, StoreError, StorePorts,
};

/// Fetches JSON documents that apps point the gateway at (such as a
/// `sector_identifier_uri`), through a client that guards against SSRF.
#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// GETs `url` and parses the body as JSON.
    async fn fetch_json(&self, url: &Url) -> Result<Value, FetchError>;
}

/// Why a document could not be fetched: the detail, for the log (the app
/// is told a fixed reason).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Verifies software statements (RFC 7591 §2.3) against trusted issuers.
#[async_trait]
pub trait StatementVerifier: Send + Sync {
    /// The verified claims, or `invalid_software_statement` (malformed, bad
    /// signature, expired) / `unapproved_software_statement` (untrusted
    /// issuer, refused software).
    async fn verify(&self, statement: &str) -> Result<Map<String, Value>, RegistrationError>;
}

/// How registration is opened (RFC 7591 §3): `registration.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone may register.
    Open,
    /// A valid initial access token is required.
    InitialAccessToken,
}

/// When the registration access token is replaced:
/// `registration.rotate_registration_access_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRotation {
    /// Never.
    Never,
    /// On every successful update (RFC 7592 §2.2); the old one dies.
    OnUpdate,
}

/// The operator's rules for registration.
#[derive(Clone)]
pub struct RegistrationSettings {
    /// Open, or protected by initial access tokens.
    pub mode: RegistrationMode,
    /// Registration access token rotation.
    pub rotation: TokenRotation,
    /// Policies by name.
    pub policies: BTreeMap<String, Policy>,
    /// The policy of registrations without a token that names one.
    pub default_policy: String,
    /// Software statement verification; `None` trusts no issuer.
    pub statements: Option<Arc<dyn StatementVerifier>>,
    /// Whether every registration must carry a software statement.
    pub statement_required: bool,
    /// Whether reconcile reports clients at the provider the gateway did
    /// not make (noise where the provider also holds other tools' clients).
    pub report_unknown_clients: bool,
    /// The client-compatibility rules that are on.
    pub compat: compat::CompatRules,
}

impl RegistrationSettings {
    /// Open registration under a permissive `default` policy.
    #[must_use]
    pub fn open() -> Self {
        let default = Policy::permissive("default");
        Self {
            mode: RegistrationMode::Open,
            rotation: TokenRotation::Never,
            policies: BTreeMap::from([("default".to_owned(), default)]),
            default_policy: "default".to_owned(),
            statements: None,
            statement_required: false,
            report_unknown_clients: true,
            compat: compat::CompatRules::default(),
        }
    }
}

/// What the caller brought besides the body.
#[derive(Debug, Default, Clone)]
pub struct RequestContext {
    /// The caller's address.
    pub ip: Option<IpAddr>,
    /// The initial access token presented at the registration endpoint.
    pub initial_access_token: Option<InitialAccessToken>,
}

/// A registration let in on what it brought besides its body: the initial
/// access token it presented, if any, whose use is spent with the write.
#[derive(Debug)]
pub struct Admission(Option<InitialAccessTokenRecord>);

/// An RFC 7592 action, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageAction {
    /// RFC 7592 §2.1 read.
    Read,
    /// RFC 7592 §2.2 replace.
    Replace,
    /// RFC 7592 §2.3 delete.
    Delete,
}

impl ManageAction {
    /// The name audit events carry.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Replace => "replace",
            Self::Delete => "delete",
        }
    }
}

/// A client whose registration access token a request presented and the
/// gateway verified: what the RFC 7592 actions take.
#[derive(Debug)]
pub struct Authenticated {
    client: RegisteredClient,
    token: RegistrationAccessToken,
}

impl Authenticated {
    /// The client's id.
    #[must_use]
    pub fn client_id(&self) -> &ClientId {
        &self.client.client_id
    }
}

/// A client together with the credentials this one answer hands out in clear.
#[derive(Debug)]
pub struct ClientInformation {
    /// The client as registered.
    pub client: RegisteredClient,
    /// The registration access token: new on register (and on a rotating
    /// update), the presented one on read.
    pub registration_access_token: RegistrationAccessToken,
    /// The client secret, only when it was issued or changed by this request.
    pub client_secret: Option<ClientSecret>,
}

/// The largest page the operator listing returns at once.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Rows reconcile handles per store query.
const RECONCILE_BATCH: u32 = 100;

/// What a reconcile pass did and found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Abandoned registrations removed (their app never got credentials);
    /// they had reached the provider and were deleted there too.
    pub abandoned_removed_at_provider: Vec<ClientId>,
    /// Abandoned registrations removed that had not reached the provider.
    pub abandoned_never_created: Vec<ClientId>,
    /// Abandoned registrations removed whose fate at the provider cannot be
    /// known (the provider offers no way to find them): possible orphans.
    pub abandoned_possible_orphans: Vec<ClientId>,
    /// Deletions finished at the provider and in the gateway.
    pub deletions_completed: Vec<ClientId>,
    /// Replaces whose outcome was unknown, sent to the provider again.
    pub replaces_completed: Vec<ClientId>,
    /// Clients carrying the gateway's mark that no row holds (left by a
    /// call whose outcome was misread), deleted at the provider.
    pub orphans_removed: Vec<ClientId>,
    /// Clients the provider holds that the gateway does not know (made by
    /// other tools, or, where the provider has no field for the gateway's
    /// mark, perhaps by the gateway): reported, never deleted.
    pub unknown_to_gateway: Vec<ClientId>,
    /// Active clients of the gateway the provider does not hold.
    pub missing_at_provider: Vec<ClientId>,
    /// Rows that could not be handled this time, with the reason.
    pub failed: Vec<String>,
}

impl ReconcileReport {
    /// Lists a removed pending registration by what the provider held.
    fn record_pending(&mut self, id: &ClientId, presence: Presence) {
        let list = match presence {
            Presence::Present => &mut self.abandoned_removed_at_provider,
            Presence::Absent => &mut self.abandoned_never_created,
            Presence::Unknown => &mut self.abandoned_possible_orphans,
        };
        list.push(id.clone());
    }

    /// Whether gateway and provider disagree on anything.
    #[must_use]
    pub fn has_drift(&self) -> bool {
        !(self.unknown_to_gateway.is_empty()
            && self.missing_at_provider.is_empty()
            && self.abandoned_possible_orphans.is_empty()
            && self.failed.is_empty())
    }
}

/// Registers, reads, updates and deletes clients.
pub struct RegistrationService {
    store: Arc<dyn ClientStore>,
    queries: Arc<dyn ClientQueries>,
    tokens: Arc<dyn InitialAccessTokens>,
    health: Arc<dyn Health>,
    registry: Registry,
    fetcher: Arc<dyn DocumentFetcher>,
    clock: Arc<dyn Clock>,
    settings: RegistrationSettings,
}

impl RegistrationService {
    /// Builds the service over its ports.
    pub fn new(
        store: StorePorts,
        registry: Registry,
        fetcher: Arc<dyn DocumentFetcher>,
        clock: Arc<dyn Clock>,
        settings: RegistrationSettings,
    ) -> Self {
        Self {
            store: store.clients,
            queries: store.queries,
            tokens: store.tokens,
            health: store.health,
            registry,
            fetcher,
            clock,
            settings,
        }
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> Result<(), RegistrationError> {
        self.health.ping().await.map_err(internal)
    }

    /// The provider's discovery document, when it has one.
    pub async fn provider_discovery(&self) -> Result<Option<Value>, RegistrationError> {
        self.measured("discovery", self.provider().discovery())
            .await
            .map_err(|e| self.provider_error(e))
    }

    /// The configured policy `name`.
    fn policy(&self, name: &str) -> Result<&Policy, RegistrationError> {
        self.settings.policies.get(name).ok_or_else(|| {
            RegistrationError::Internal(format!("policy `{name}` is not configured"))
        })
    }

    /// `client_secret_expires_at` for a secret issued at `now`.
    fn secret_expiry(&self, secret: Option<&ClientSecret>, policy: &Policy, now: i64) -> i64 {
        match (secret, policy.client_secret_lifetime) {
            (Some(_), Some(lifetime)) => now.saturating_add(seconds(lifetime)),
            _ => 0,
        }
    }
}

/// A store failure, as an internal error.
fn internal(error: StoreError) -> RegistrationError {
    RegistrationError::Internal(error.to_string())
}
