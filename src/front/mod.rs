//! The authorization front (opt-in, `[front] enabled = true`): the gateway
//! is the authorization server apps see, and the provider still
//! authenticates users and issues tokens.
//!
//! ```text
//! app ─/authorize─▶ gateway ─authorize (provider client, /callback, app's challenge)─▶ provider
//! app ◀─redirect (gateway code, app state, iss=gateway)─ gateway ◀─/callback (code, state, iss)─ provider
//! app ─/token (gateway code, verifier)─▶ gateway ─token (provider code, verifier, /callback)─▶ provider
//! ```
//!
//! - [`settings`]: the `front` section of the configuration.
//! - [`discovery`]: the metadata that names the gateway as issuer.
//! - [`authorize`], [`callback`], [`token`]: the three hops.
//! - [`transactions`]: what ties them together: a login in progress
//!   travels sealed in the provider-side state, and is stored (through a
//!   port the SQL store implements, so that any instance takes any hop) only
//!   once the provider answered it.
//! - [`provider`]: the provider's endpoints; [`callback_at_provider`]: the
//!   gateway's callback, which the registry registers there.
//! - [`cimd`]: clients named by Client ID Metadata Documents, and
//!   [`consent`]: the page the gateway may show them before the provider,
//!   bound to the browser that saw it ([`browser`]).
//! - [`broker`]: broker mode (`[provider] kind = "oidc"`), one client of
//!   the operator's at an OpenID provider for every app, with the gateway's
//!   own refresh tokens ([`refresh`]) and the consent page for every client,
//!   remembered per client ([`remembered`]).
//! - [`tokens`]: the gateway's own tokens (`[front] tokens = "gateway"`),
//!   [`identified`]: the user they name outside broker mode, and
//!   [`userinfo`]: what they say of the user.
//! - [`provider_call`]: the calls to the provider's token and revocation
//!   endpoints; [`client_assertion`] and [`jwks`]: `private_key_jwt`
//!   verified by the gateway (broker mode), and the key sets it reads.
//! - [`janitor`]: sweeping answered logins past their time, counting the
//!   kept ones, removing document clients nobody uses.
//! - [`error`]: failures and their answers; [`crate::http::front`]: the routes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{self, AuditEvent};
use crate::clock::Clock;
use crate::domain::{ClientState, RegisteredClient, RegisteredUri, RegistrationError};
use crate::limiter::{KeyedLimiter, address_key};
use crate::outbound::OutboundSettings;
use crate::registration::RegistrationService;

pub mod authorize;
pub mod broker;
pub mod browser;
pub mod callback;
pub mod cimd;
pub mod client_assertion;
pub mod consent;
pub mod discovery;
pub mod error;
pub mod identified;
pub mod introspect;
pub mod janitor;
pub mod jwks;
pub mod provider;
pub mod provider_call;
pub mod refresh;
pub mod remembered;
pub mod resources;
pub mod revoke;
pub mod settings;
pub mod token;
pub mod tokens;
pub mod transactions;
pub mod userinfo;

use crate::provider::oidc::OidcSettings;
use crate::store::front::{
    AssertionReplays, CimdStore, RefreshTokenStore, SigningKeyStore, TransactionStore,
};
use broker::Broker;
use browser::BrowserCookie;
use cimd::Documents;
use error::FrontError;
use janitor::LiveTransactions;
use provider::ProviderEndpoints;
use remembered::RememberedConsent;
pub use settings::FrontSettings;

/// Why the front could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the authorization front: {0}")]
pub struct FrontSetupError(pub String);

/// What the front is built from.
pub struct FrontParts {
    /// `[front]`.
    pub settings: FrontSettings,
    /// The gateway's public URL: its issuer.
    pub public_url: String,
    /// Registered clients, and the provider's discovery document.
    pub registrations: Arc<RegistrationService>,
    /// Where transactions are kept.
    pub transactions: Arc<dyn TransactionStore>,
    /// Where the clients of metadata documents are kept.
    pub documents: Arc<dyn CimdStore>,
    /// The guards of fetches from URLs apps name (`[outbound]`).
    pub outbound: OutboundSettings,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Longest call to the provider's token endpoint.
    pub provider_timeout: Duration,
    /// Most caller addresses each rate limit tracks.
    pub max_tracked_keys: u64,
    /// Whether the provider's authorization endpoint requires `scope`.
    pub scope_required: bool,
    /// The store's key (`store.encryption_key`), which seals logins in
    /// progress (and, in broker mode, the provider's refresh tokens and
    /// the remembered consents).
    pub sealer: crate::store::sealing::Sealer,
    /// Broker mode's settings, when `[provider] kind = "oidc"`.
    pub broker: Option<OidcSettings>,
    /// Where broker mode's refresh tokens are kept.
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    /// Where used client assertions are recorded.
    pub assertion_replays: Arc<dyn AssertionReplays>,
    /// Where the gateway's signing keys are kept.
    pub signing_keys: Arc<dyn SigningKeyStore>,
}

/// The front: the three hops over the registered clients, the provider
/// and the transaction store.
pub struct Front {
    settings: FrontSettings,
    issuer: String,
    registrations: Arc<RegistrationService>,
    transactions: Arc<dyn TransactionStore>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    authorize_limit: Option<KeyedLimiter>,
    token_limit: Option<KeyedLimiter>,
    documents: Option<Documents>,
    /// The document → client mappings (kept whether documents are on or
    /// not: clients registered for documents earlier stay theirs).
    documents_store: Arc<dyn CimdStore>,
    /// Whether a client id is a document's, as the store said lately: a
    /// client is registered as one or the other and stays so.
    document_clients: moka::sync::Cache<String, bool>,
    /// The provider's endpoints, read from its discovery document once a
    /// minute, not on every request.
    endpoints: moka::future::Cache<(), Arc<ProviderEndpoints>>,
    live: LiveTransactions,
    logins: transactions::Logins,
    /// The issuer's origin, which the consent form must be posted from.
    origin: String,
    /// The cookie that binds a consent to its browser.
    browser_cookie: BrowserCookie,
    /// Whether the provider's authorization endpoint requires `scope`.
    scope_required: bool,
    /// Broker mode: the operator's one client at the provider.
    broker: Option<Broker>,
    /// Broker mode's refresh tokens.
    refresh_tokens: Arc<dyn RefreshTokenStore>,
    /// Consents remembered per client (broker mode).
    remembered: RememberedConsent,
    /// The store key, sealing the provider's refresh tokens.
    sealer: crate::store::sealing::Sealer,
    /// `private_key_jwt` assertions, verified here (broker mode).
    assertions: client_assertion::ClientAssertions,
    /// The gateway's own access tokens, with `[front] tokens = "gateway"`.
    tokens: Option<tokens::GatewayTokens>,
    /// The provider's signing keys, for its ID tokens when the gateway
    /// issues its own tokens outside broker mode (the broker has its own).
    provider_keys: broker::id_token::KeySet,
}

/// How long the provider's endpoints are used before its discovery
/// document (itself cached by the provider's client) is read again.
const ENDPOINTS_TTL: Duration = Duration::from_secs(60);

impl Front {
    /// Builds the front.
    pub fn new(parts: FrontParts) -> Result<Self, FrontSetupError> {
        // Like the providers' own client (token requests carry client secrets).
        let http = crate::outbound::client_builder(parts.provider_timeout)
            .build()
            .map_err(|e| FrontSetupError(e.to_string()))?;
        let limiter = |quota| KeyedLimiter::new(quota, parts.max_tracked_keys);
        let documents = match parts.settings.cimd.enabled {
            true => Some(Documents::new(
                parts.settings.cimd.clone(),
                &parts.outbound,
                parts.max_tracked_keys,
            )?),
            false => None,
        };
        let fetcher = crate::outbound::GuardedClient::new(parts.outbound.clone())
            .map_err(|e| FrontSetupError(e.to_string()))?;
        let assertions = client_assertion::ClientAssertions::new(
            parts.public_url.trim_end_matches('/'),
            fetcher,
            parts.assertion_replays,
        );
        // A remembered consent (broker mode) is bound to the browser's
        // cookie, so that cookie lasts as long.
        let browser_lifetime = match parts.broker.is_some() {
            true => parts.settings.consent_lifetime,
            false => Duration::ZERO,
        };
        let broker = parts
            .broker
            .map(|settings| Broker::new(settings, http.clone(), parts.clock.clone()));
        let tokens = (parts.settings.tokens == tokens::TokenIssuer::Gateway).then(|| {
            tokens::GatewayTokens::new(
                parts.public_url.trim_end_matches('/'),
                tokens::keys::KeyPolicy {
                    algorithm: parts.settings.signing_algorithm,
                    rotation: parts.settings.signing_key_rotation,
                    lifetime: parts.settings.access_token_lifetime,
                },
                parts.settings.subject_type,
                parts.signing_keys,
                parts.sealer.clone(),
            )
        });
        Ok(Self {
            tokens,
            provider_keys: broker::id_token::KeySet::new(http.clone()),
            assertions,
            broker,
            refresh_tokens: parts.refresh_tokens,
            remembered: RememberedConsent::new(
                &parts.public_url,
                parts.sealer.clone(),
                parts.settings.consent_lifetime,
            ),
            sealer: parts.sealer.clone(),
            logins: transactions::Logins::new(parts.sealer),
            documents,
            documents_store: parts.documents,
            document_clients: moka::sync::Cache::builder()
                .max_capacity(parts.max_tracked_keys)
                .time_to_live(ENDPOINTS_TTL)
                .build(),
            authorize_limit: parts.settings.authorize_per_ip.map(limiter),
            token_limit: parts.settings.token_per_ip.map(limiter),
            settings: parts.settings,
            issuer: parts.public_url.trim_end_matches('/').to_owned(),
            registrations: parts.registrations,
            transactions: parts.transactions,
            clock: parts.clock,
            http,
            endpoints: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(ENDPOINTS_TTL)
                .build(),
            live: LiveTransactions::default(),
            origin: url::Url::parse(&parts.public_url)
                .map(|url| url.origin().ascii_serialization())
                .map_err(|e| FrontSetupError(format!("public_url: {e}")))?,
            browser_cookie: BrowserCookie::for_issuer(&parts.public_url, browser_lifetime),
            scope_required: parts.scope_required,
        })
    }

    /// The issuer apps see: the gateway's public URL.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The cookie that binds a consent to its browser.
    #[must_use]
    pub fn browser_cookie(&self) -> BrowserCookie {
        self.browser_cookie
    }

    /// `path` under the issuer.
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    fn now(&self) -> i64 {
        self.clock.now_unix()
    }

    /// The provider's discovery document, which the gateway's own metadata
    /// copies from: the broker's provider's, or the registry's.
    pub async fn provider_document(&self) -> Result<Option<serde_json::Value>, FrontError> {
        match &self.broker {
            Some(broker) => Ok(Some(broker.upstream().await?.document.clone())),
            None => self
                .registrations
                .provider_discovery()
                .await
                .map_err(|error| FrontError::unavailable(&error.to_string())),
        }
    }

    /// The gateway's own token issuer, with `[front] tokens = "gateway"`.
    #[must_use]
    pub fn gateway_tokens(&self) -> Option<&tokens::GatewayTokens> {
        self.tokens.as_ref()
    }

    /// The gateway's published key set now, with `[front] tokens =
    /// "gateway"`.
    pub async fn published_keys(&self) -> Option<Result<serde_json::Value, FrontError>> {
        match &self.tokens {
            Some(tokens) => Some(tokens.jwks(self.now()).await),
            None => None,
        }
    }

    /// Whether the front can sign users in now: in broker mode, whether the
    /// provider's discovery document and keys can be read.
    pub async fn ready(&self) -> Result<(), FrontError> {
        match &self.broker {
            Some(broker) => broker.ready().await,
            None => Ok(()),
        }
    }

    /// The provider's endpoints, from its discovery document.
    async fn endpoints(&self) -> Result<Arc<ProviderEndpoints>, FrontError> {
        if let Some(broker) = &self.broker {
            return Ok(broker.upstream().await?.endpoints.clone());
        }
        self.endpoints
            .try_get_with((), async {
                match self.registrations.provider_discovery().await {
                    Ok(Some(document)) => ProviderEndpoints::read(&document)
                        .map(Arc::new)
                        .map_err(|e| FrontError::internal(&e)),
                    Ok(None) => Err(FrontError::internal(
                        "the front needs a provider with an issuer (not the built-in registry)",
                    )),
                    Err(error) => Err(FrontError::unavailable(&error.to_string())),
                }
            })
            .await
            .map_err(|error: Arc<FrontError>| FrontError::clone(&error))
    }

    /// The client an app names by `id`: a metadata document's (fetched and
    /// registered as needed), or a registered client if one is active.
    async fn client(&self, id: &str) -> Result<Option<RegisteredClient>, FrontError> {
        match &self.documents {
            Some(documents) if documents.names_document(id) => {
                self.document_client(documents, id).await.map(Some)
            }
            _ => self.registered(id).await,
        }
    }

    /// The active registered client `id`, if there is one. A document's
    /// client is not one: it is used only by its document's URL, so that
    /// the operator's host rules and the consent page always apply to it.
    async fn registered(&self, id: &str) -> Result<Option<RegisteredClient>, FrontError> {
        let client = match self.registrations.show(id).await {
            Ok(client) if client.state == ClientState::Active => client,
            Ok(_) | Err(RegistrationError::UnknownClient(_)) => return Ok(None),
            Err(error) => return Err(FrontError::internal(&error.to_string())),
        };
        let is_document_client = match self.document_clients.get(id) {
            Some(known) => known,
            None => {
                let known = self.documents_store.is_document_client(id).await?;
                self.document_clients.insert(id.to_owned(), known);
                known
            }
        };
        Ok((!is_document_client).then_some(client))
    }

    /// Applies the rate limit `limit` (named as metrics and audit name it)
    /// to the caller at `ip`; a refusal is counted and audited.
    fn limit(
        limiter: Option<&KeyedLimiter>,
        limit: &'static str,
        ip: IpAddr,
    ) -> Result<(), FrontError> {
        let Some(Err(retry_after)) = limiter.map(|limiter| limiter.check(&address_key(ip))) else {
            return Ok(());
        };
        metrics::counter!("dcr_rate_limited_total", "limit" => limit).increment(1);
        audit::record(&AuditEvent {
            action: limit,
            outcome: "rate_limited",
            ip: Some(ip),
            ..AuditEvent::default()
        });
        Err(FrontError::rate_limited(retry_after))
    }
}

/// The gateway's one redirect URI at the provider.
#[must_use]
pub fn callback_uri(public_url: &str) -> String {
    format!("{}/callback", public_url.trim_end_matches('/'))
}

/// The redirect URI clients are registered with at the provider in place
/// of the app's ([`crate::provider::registry::Registry::External`]): the
/// gateway's callback when the front is on, else none.
pub fn callback_at_provider(
    settings: &FrontSettings,
    public_url: &str,
) -> Result<Option<RegisteredUri>, FrontSetupError> {
    settings
        .enabled
        .then(|| RegisteredUri::parse(&callback_uri(public_url)).map_err(FrontSetupError))
        .transpose()
}

/// The parameters of a query or form body. A parameter sent twice is
/// refused and one sent empty counts as absent (RFC 6749 §3.1, §3.2).
/// `Debug` shows the names only: values include codes and tokens.
#[derive(Default)]
pub struct Params(BTreeMap<String, String>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    /// Reads `application/x-www-form-urlencoded` text.
    pub fn parse(raw: &[u8]) -> Result<Self, FrontError> {
        let mut params = BTreeMap::new();
        for (name, value) in url::form_urlencoded::parse(raw) {
            if params.contains_key(name.as_ref()) {
                return Err(FrontError::invalid_request(format!(
                    "the parameter `{}` is sent more than once",
                    name.escape_debug()
                )));
            }
            params.insert(name.into_owned(), value.into_owned());
        }
        Ok(Self(params))
    }

    /// The value of `name`, if sent.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value of `name`, which is required.
    pub fn require(&self, name: &str) -> Result<&str, FrontError> {
        self.get(name)
            .ok_or_else(|| FrontError::invalid_request(format!("`{name}` is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_sent_once_and_empty_ones_are_absent() {
        let params = Params::parse(b"a=1&b=&c=%20").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some(" "));
        assert!(Params::parse(b"a=1&a=2").is_err());
        assert!(Params::parse(b"a=&a=2").is_err());
        let secret = Params::parse(b"code=hush").unwrap();
        assert_eq!(format!("{secret:?}"), "{\"code\"}");
    }
}
