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
//! - [`core`]: what the service shares with [`crate::reconcile`]: the
//!   store, the registry, the clock, the policies, the provider calls, and
//!   the replace and delete of an existing client.
//! - `admission`: who may register and with what — initial access tokens,
//!   software statements, metadata rules and policy, the sector identifier.
//! - `register`: the RFC 7591 flow — the pending row, the provider, the
//!   confirmed row, and giving back what a failed registration spent.
//! - `manage`: the RFC 7592 flow — token checks, read, replace under a
//!   lease, delete.
//! - `compat`: the client-compatibility rules (`[registration.compat]`)
//!   that let current MCP clients register as they are.
//! - `admin`: the operator's commands.
//! - `trusted`: registrations on the gateway's own authority (clients of
//!   Client ID Metadata Documents, for the authorization front).

mod admin;
mod admission;
pub mod compat;
pub mod core;
pub mod journal;
mod manage;
mod register;
mod trusted;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use crate::clock::seconds;
use crate::domain::{
    ClientId, ClientSecret, InitialAccessToken, InitialAccessTokenRecord, RegisteredClient,
    RegistrationAccessToken, RegistrationError,
};
use crate::outbound::{FetchError, GuardedClient};
use crate::store::{Health, InitialAccessTokens};

use self::core::{Core, internal};
use self::usage::UsageRecorder;

/// Fetches JSON documents that apps point the gateway at (such as a
/// `sector_identifier_uri`), through a client that guards against SSRF.
#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// GETs `url` and parses the body as JSON.
    async fn fetch_json(&self, url: &Url) -> Result<Value, FetchError>;
}

#[async_trait]
impl DocumentFetcher for GuardedClient {
    async fn fetch_json(&self, url: &Url) -> Result<Value, FetchError> {
        let body = self.get(url).await?;
        serde_json::from_slice(&body).map_err(|e| FetchError(format!("not JSON: {e}")))
    }
}

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
pub struct RegistrationRules {
    /// Open, or protected by initial access tokens.
    pub mode: RegistrationMode,
    /// Registration access token rotation.
    pub rotation: TokenRotation,
    /// The policy of registrations without a token that names one.
    pub default_policy: String,
    /// Software statement verification; `None` trusts no issuer.
    pub statements: Option<Arc<dyn StatementVerifier>>,
    /// Whether every registration must carry a software statement.
    pub statement_required: bool,
    /// The client-compatibility rules that are on.
    pub compat: compat::CompatRules,
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

/// Registers, reads, updates and deletes clients: RFC 7591 registration
/// and RFC 7592 management, the operator's commands, and registrations on
/// the gateway's own authority, over the shared [`Core`].
pub struct RegistrationService {
    core: Arc<Core>,
    tokens: Arc<dyn InitialAccessTokens>,
    health: Arc<dyn Health>,
    fetcher: Arc<dyn DocumentFetcher>,
    rules: RegistrationRules,
}

impl RegistrationService {
    /// The recorder of clients' uses.
    #[must_use]
    pub fn usage(&self) -> &Arc<UsageRecorder> {
        self.core.usage()
    }

    /// The name of the back end clients are written into (`gateway` for
    /// the built-in registry).
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        self.core.provider().name()
    }

    /// The journal of counts and trails.
    #[must_use]
    pub fn journal(&self) -> &Arc<journal::Journal> {
        self.core.journal()
    }

    /// Builds the service over the shared `core`, the initial access
    /// tokens, the store's health, and the fetcher of documents apps name.
    pub fn new(
        core: Arc<Core>,
        tokens: Arc<dyn InitialAccessTokens>,
        health: Arc<dyn Health>,
        fetcher: Arc<dyn DocumentFetcher>,
        rules: RegistrationRules,
    ) -> Self {
        Self {
            core,
            tokens,
            health,
            fetcher,
            rules,
        }
    }

    /// The provider's name (its kind, e.g. `hydra`; `local` for the
    /// gateway's own registry).
    #[must_use]
    pub fn provider_name(&self) -> &'static str {
        self.core.provider().name()
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> Result<(), RegistrationError> {
        self.health.ping().await.map_err(internal)
    }

    /// The provider's discovery document, when it has one.
    pub async fn provider_discovery(&self) -> Result<Option<Value>, RegistrationError> {
        let core = &self.core;
        core.measured("discovery", core.provider().discovery())
            .await
            .map_err(|e| core.provider_error(e))
    }
}
