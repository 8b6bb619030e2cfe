//! Okta's Dynamic Client Registration API (`/oauth2/v1/clients`).
//!
//! Okta picks the client id and the secret, so the id Okta returns becomes the
//! gateway's client id and the secret Okta returns is the one handed to the
//! app. `client_name` is required but not unique (many apps share a name:
//! every claude.ai connection is "Claude"): the gateway sends the app's name,
//! or `dcr-{gateway id}` when it sent none, and keeps that default as
//! provider state so that a full-replace PUT sends the same one again.
//!
//! A create is never retried blindly: Okta would make a second client. When
//! its answer is lost (or Okta answered a server error), the backend lists
//! clients whose name starts with the name it sent (`q=`) and looks for one
//! this registration may have made: every member equal to what was sent,
//! issued in the registration's time window, and held by no row of the
//! gateway. It claims that id in the gateway's store first (so no two
//! registrations take the same client), then adopts it, with a fresh secret
//! (`lifecycle/newSecret`) for a confidential client since the first one was
//! never seen. Only when Okta answered a server error and the search finds
//! nothing is the create sent again (once). Okta's client model has no field
//! for a mark of the gateway's own: reconcile reports clients the gateway
//! does not know and never deletes them.
//!
//! Okta announces its rate budget on every answer (`X-Rate-Limit-Remaining`,
//! `X-Rate-Limit-Reset` in epoch seconds); once it is spent, calls are refused
//! here with a retry time instead of being sent.
//!
//! Okta holds the logout members `post_logout_redirect_uris`,
//! `frontchannel_logout_uri` and `frontchannel_logout_session_required` as
//! registered (a replace sends them, or their absence, like any member).
//!
//! Readings of what Okta's documents leave open: an unknown client may be 404
//! (`E0000007`) or 401 with `error = invalid_client`; both mean the client is
//! gone, while a 401 about the API token itself is an outage. Okta holds no
//! `scope`, `contacts`, `client_uri`, `software_*`, language-tagged values,
//! OIDC algorithm preferences, back-channel logout or the registry's mTLS,
//! DPoP, PAR, JAR, RAR, JARM, CIBA and introspection members: the gateway
//! keeps them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use super::rest::{
    Answer, DEFAULT_RETRY_AFTER_SECS, DiscoveryCache, ProviderAuth, ProviderHttp,
    ProviderSetupError, Repeat, Resilience, may_have_acted,
};
use super::{
    ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned, endpoint,
    shown_secret, state_as, state_of, urlencode,
};
use crate::clock::Clock;
use crate::domain::values::{AuthMethod, GrantType};
use crate::domain::{ClientId, ClientMetadata, ClientSecret, ProviderState};
use client_body::{application_type, client_body, grants_of, renewable};
use rate_budget::RateBudget;

/// The backend's name, in metrics and logs.
const NAME: &str = "okta";

// The Client document the gateway writes, and Okta's app types.
mod client_body;
// Finding and adopting the client of a create whose answer was lost.
mod lost_create;
// Okta's announced rate budget.
mod rate_budget;
// Settings: the keys of `kind = "okta"` and their validation.
mod settings;

/// Client members only an Okta admin sets (the gateway sends no member
/// for them): read before a replace and sent back unchanged.
const ADMIN_SETTINGS: [&str; 2] = [
    "id_token_encrypted_response_alg",
    "request_object_signing_alg",
];
/// Clients per page when listing (Okta's maximum).
const PAGE_LIMIT: u32 = 200;
/// How far the gateway's clock and Okta's may disagree about when a client
/// was issued.
const ISSUE_SKEW_SECS: i64 = 30;
/// Creates one registration sends at most: a second only after Okta
/// answered the first with a server error and it made nothing.
const CREATE_ATTEMPTS: u32 = 2;

/// Settings of the Okta backend.
#[derive(Debug, Clone)]
pub struct OktaSettings {
    /// The org URL, e.g. `https://example.okta.com`.
    pub org_url: Url,
    /// The authorization server apps use, for discovery: the org's own
    /// (`org_url`) or a custom one (`{org_url}/oauth2/default`).
    pub issuer: Url,
    /// Management credential: an API token (`Ssws`), or an OAuth access
    /// token with the `okta.clients.*` scopes (`Bearer`).
    pub auth: ProviderAuth,
    /// Timeouts, retries and circuit breaker.
    pub resilience: Resilience,
}

/// The Okta backend.
#[derive(Debug)]
pub struct Okta {
    http: ProviderHttp,
    clients_url: String,
    discovery: DiscoveryCache,
    budget: RateBudget,
    clock: Arc<dyn Clock>,
}

/// What the gateway reads back from Okta.
#[derive(Debug, Deserialize)]
struct OktaAnswer {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_id_issued_at: Option<i64>,
    /// Every member, to compare with what a lost create sent.
    #[serde(flatten)]
    members: serde_json::Map<String, Value>,
}

/// The provider state kept per client: the name Okta holds when the app
/// sends none (derived from the gateway's provisional id at registration,
/// so that it stays the same when Okta's id replaces that one).
#[derive(Debug, Serialize, Deserialize)]
struct OktaState {
    default_name: String,
}

impl Okta {
    /// Builds the backend; `clock` dates the registration time window and
    /// Okta's rate budget.
    pub fn new(settings: OktaSettings, clock: Arc<dyn Clock>) -> Result<Self, ProviderSetupError> {
        let clients_url = endpoint(&settings.org_url, "/oauth2/v1/clients");
        Ok(Self {
            http: ProviderHttp::new(NAME, settings.resilience, Some(settings.auth.clone()))?,
            discovery: DiscoveryCache::new(&settings.issuer)?,
            clients_url,
            budget: RateBudget::default(),
            clock,
        })
    }

    fn client_url(&self, client_id: &str) -> String {
        format!("{}/{}", self.clients_url, urlencode(client_id))
    }

    /// Sends one call within Okta's announced budget, and learns the budget
    /// from the answer. A 429 says when the budget refills.
    async fn call(&self, request: RequestBuilder, repeat: Repeat) -> Result<Answer, ProviderError> {
        let now = self.clock.now_unix();
        self.budget.admit(now)?;
        let answer = self.http.call(request, repeat).await?;
        self.budget.observe(&answer.headers);
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ProviderError::Unavailable {
                reason: format!("Okta rate limit: {}", answer.reason()),
                retry_after_secs: self.budget.seconds_to_reset(now),
            });
        }
        Ok(answer)
    }

    /// The name Okta holds when the app sends none: kept from the
    /// registration, or derived from the gateway's provisional id.
    fn default_name(request: &ProvisionRequest<'_>) -> String {
        state_as::<OktaState>(request.state)
            .map_or_else(|| format!("dcr-{}", request.client_id), |s| s.default_name)
    }

    /// The name to send: the app's, else the default.
    fn client_name(request: &ProvisionRequest<'_>, default_name: &str) -> String {
        request
            .metadata
            .client_name
            .plain
            .clone()
            .unwrap_or_else(|| default_name.to_owned())
    }

    /// What a create or replace answer provisions.
    fn provisioned(
        answer: &Answer,
        default_name: String,
        with_secret: bool,
    ) -> Result<Provisioned, ProviderError> {
        let client: OktaAnswer = answer.json()?;
        Ok(Provisioned {
            client_secret: shown_secret(with_secret, client.client_secret)?,
            client_id: Some(ClientId::new(client.client_id)),
            state: Some(state(default_name)?),
            ..Provisioned::default()
        })
    }

    /// `lifecycle/newSecret`: Okta generates a new secret and shows it once.
    /// Retried: a repeat only generates yet another secret, which is the one read.
    async fn new_secret(&self, client_id: &str) -> Result<ClientSecret, ProviderError> {
        let url = format!("{}/lifecycle/newSecret", self.client_url(client_id));
        let answer = self
            .call(self.http.client().post(url), Repeat::Safe)
            .await?;
        if !answer.status.is_success() {
            return Err(client_failure(&answer));
        }
        let client: OktaAnswer = answer.json()?;
        client
            .client_secret
            .map(ClientSecret::presented)
            .ok_or_else(|| {
                ProviderError::Indeterminate("Okta's newSecret answer holds no secret".into())
            })
    }
}

fn state(default_name: String) -> Result<ProviderState, ProviderError> {
    state_of(&OktaState { default_name })
}

/// Classifies a non-success answer to a call on one client: Okta's "unknown
/// client" is [`ProviderError::NotFound`]; the rest as [`Answer::failure`].
fn client_failure(answer: &Answer) -> ProviderError {
    if is_unknown_client(answer) {
        ProviderError::NotFound(answer.reason())
    } else {
        answer.failure()
    }
}

/// Okta answers an unknown client with 404, or with 401 `invalid_client`.
fn is_unknown_client(answer: &Answer) -> bool {
    match answer.status {
        StatusCode::NOT_FOUND => true,
        StatusCode::UNAUTHORIZED => serde_json::from_slice::<Value>(&answer.body)
            .is_ok_and(|body| body.get("error") == Some(&json!("invalid_client"))),
        _ => false,
    }
}

#[async_trait]
impl Provider for Okta {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Okta's authentication methods, and its table of grant types per app
    /// type (`createClient`): web and native apps need `authorization_code`.
    fn supports(&self, metadata: &ClientMetadata) -> Result<(), String> {
        let method = metadata.token_endpoint_auth_method;
        if matches!(
            method,
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
        ) {
            return Err(format!(
                "the okta provider does not support token_endpoint_auth_method `{method}` \
                 (Okta offers client_secret_basic, client_secret_post, client_secret_jwt, \
                 private_key_jwt and none)"
            ));
        }
        let app_type = application_type(metadata);
        let allowed = grants_of(app_type);
        if let Some(grant) = metadata.grant_types.iter().find(|g| !allowed.contains(g)) {
            let allowed: Vec<&str> = allowed.iter().map(|g| g.as_str()).collect();
            return Err(format!(
                "the okta provider does not allow grant type `{grant}` for this client, \
                 which Okta holds as a `{app_type}` app (allowed: {})",
                allowed.join(", ")
            ));
        }
        let needs_code = matches!(app_type, "web" | "native");
        if needs_code && !metadata.grant_types.contains(&GrantType::AuthorizationCode) {
            return Err(format!(
                "the okta provider requires grant type `authorization_code` for this \
                 client, which Okta holds as a `{app_type}` app"
            ));
        }
        Ok(())
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let default_name = Self::default_name(request);
        let client_name = Self::client_name(request, &default_name);
        let body = client_body(request.metadata, &client_name);
        let with_secret = request.metadata.needs_client_secret();
        for _ in 0..CREATE_ATTEMPTS {
            // Sent once: Okta picks the id, so a blind repeat would make a
            // second client.
            let sent = self
                .call(
                    self.http.client().post(&self.clients_url).json(&body),
                    Repeat::Never,
                )
                .await;
            let (unknown, answered) = match sent {
                Ok(answer) if answer.status.is_success() => {
                    return Self::provisioned(&answer, default_name, with_secret);
                }
                Ok(answer) if may_have_acted(answer.status) => (answer.failure(), true),
                Ok(answer) => return Err(answer.failure()),
                Err(lost @ ProviderError::Indeterminate(_)) => (lost, false),
                Err(other) => return Err(other),
            };
            match self.adopt_lost(request, &body, &default_name).await {
                Ok(Some(adopted)) => return Ok(adopted),
                // Okta answered, and holds nothing this create made: it did
                // nothing, so the create may be sent again.
                Ok(None) if answered => {}
                Ok(None) | Err(_) => return Err(unknown),
            }
        }
        Err(ProviderError::Unavailable {
            reason: "Okta failed every create with a server error and made no client".into(),
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
        })
    }

    /// PUT replaces every setting, so the settings the gateway does not
    /// manage (ID token encryption and request object signing, set by an
    /// Okta admin) are read first and sent back unchanged.
    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let default_name = Self::default_name(request);
        let client_name = Self::client_name(request, &default_name);
        let id = request.client_id.as_str();
        let current = self
            .call(self.http.client().get(self.client_url(id)), Repeat::Safe)
            .await?;
        if !current.status.is_success() {
            return Err(client_failure(&current));
        }
        let mut body = serde_json::to_value(client_body(request.metadata, &client_name))
            .map_err(|e| ProviderError::Rejected(e.to_string()))?;
        if let (Value::Object(held), Value::Object(sent)) = (current.json::<Value>()?, &mut body) {
            for (member, value) in held {
                if ADMIN_SETTINGS.contains(&member.as_str()) && !value.is_null() {
                    sent.insert(member, value);
                }
            }
        }
        let answer = self
            .call(
                self.http.client().put(self.client_url(id)).json(&body),
                Repeat::Safe,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(client_failure(&answer));
        }
        let client: OktaAnswer = answer.json()?;
        let with_secret = request.metadata.needs_client_secret();
        let method = request.metadata.token_endpoint_auth_method;
        let client_secret = if with_secret && request.client_secret.is_some() && renewable(method) {
            // The gateway asked for a new secret; Okta makes its own.
            Some(self.new_secret(id).await?)
        } else {
            // Okta shows the current secret (new if the client just became
            // confidential); the registration service tells which it is.
            client
                .client_secret
                .filter(|_| with_secret)
                .map(ClientSecret::presented)
        };
        Ok(Provisioned {
            client_id: None,
            client_secret,
            state: Some(state(default_name)?),
            ..Provisioned::default()
        })
    }

    async fn delete(
        &self,
        client_id: &ClientId,
        _state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        let answer = self
            .call(
                self.http
                    .client()
                    .delete(self.client_url(client_id.as_str())),
                Repeat::Safe,
            )
            .await?;
        if answer.status.is_success() || is_unknown_client(&answer) {
            Ok(())
        } else {
            Err(answer.failure())
        }
    }

    /// A pending row holds the gateway's provisional id, or the Okta id it
    /// claimed for an adoption that did not finish. The clients that carry
    /// the name sent are listed once: the row's own claimed client is
    /// deleted if there; otherwise one this registration may have made (see
    /// `Okta::candidates`) is claimed and deleted.
    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        let default_name = Self::default_name(client);
        let client_name = Self::client_name(client, &default_name);
        let sent = client_body(client.metadata, &client_name);
        let named = self.named(&client_name).await?;
        if named
            .iter()
            .any(|c| c.client_id == client.client_id.as_str())
        {
            self.delete(client.client_id, None).await?;
            return Ok(Presence::Present);
        }
        for orphan in self.candidates(client, &sent, named).await? {
            let id = ClientId::new(orphan.client_id);
            if client
                .claims
                .claim(&id, state(default_name.clone())?)
                .await?
            {
                self.delete(&id, None).await?;
                return Ok(Presence::Present);
            }
        }
        Ok(Presence::Absent)
    }

    fn clock_skew(&self) -> Duration {
        Duration::from_secs(ISSUE_SKEW_SECS.unsigned_abs())
    }

    /// Okta has no field for the gateway's mark.
    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        let first = format!("{}?limit={PAGE_LIMIT}", self.clients_url);
        let clients = self.list(first).await?;
        Ok(Some(
            clients
                .into_iter()
                .map(|c| ListedClient {
                    id: ClientId::new(c.client_id),
                    marked: None,
                    created_at: c.client_id_issued_at,
                })
                .collect(),
        ))
    }

    fn operation_deadline(&self) -> Option<Duration> {
        Some(self.http.resilience().operation_deadline())
    }

    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        self.discovery.get(&self.http).await.map(Some)
    }
}
