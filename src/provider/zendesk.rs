//! Zendesk's OAuth clients API (`/api/v2/oauth/clients`).
//!
//! The gateway chooses `identifier` (the OAuth client id Zendesk issues tokens
//! to) and keeps Zendesk's numeric record id as provider state. Zendesk makes
//! every secret itself and shows it in full only on create and
//! `generate_secret`; the app receives that one. `kind` is `public` for
//! `token_endpoint_auth_method = none` and `confidential` otherwise; Zendesk
//! authenticates clients with a secret only, so `*_jwt` and mTLS methods are
//! refused at registration, as are grant types Zendesk does not issue.
//!
//! A create is retried like any safe call: the identifier is the gateway's
//! and unique, so a repeat can never make a second client. When an attempt
//! may have taken effect and the chain does not end in a success, the record
//! is looked for by its identifier and adopted with a fresh secret.
//!
//! The gateway's mark is `user_id`, the admin the document names as each
//! client's creator: give the gateway an admin of its own, and reconcile
//! tells its orphans (which it deletes) from other admins' clients (which it
//! only reports).
//!
//! Readings of what Zendesk's documents leave open: `name` is required, so a
//! client registered without `client_name` is named `dcr-{client id}`;
//! `user_id` (required by the model) comes from configuration; `company` and
//! `description`, which users see on the consent page, are not sent. A duplicate identifier is answered 422 with the
//! field under `details`. Everything else of RFC 7591 (grant and response
//! types, URIs, contacts, keys, scope, software ids) is kept by the gateway.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::listing::Listing;
use super::rest::{ProviderAuth, ProviderHttp, ProviderSetupError, Repeat, Resilience};
use super::{
    ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned, endpoint,
    shown_secret, state_as, state_of, unix_time,
};
use crate::domain::values::{AuthMethod, GrantType};
use crate::domain::{ClientId, ClientMetadata, ClientSecret, ProviderState};

/// The backend's name, in metrics and logs.
const NAME: &str = "zendesk";

// Settings: the keys of `kind = "zendesk"` and their validation.
mod settings;

/// Clients per page when listing (Zendesk's maximum).
const PAGE_SIZE: u32 = 100;
/// The grant types Zendesk's OAuth server issues tokens for.
const GRANT_TYPES: [GrantType; 5] = [
    GrantType::AuthorizationCode,
    GrantType::Implicit,
    GrantType::Password,
    GrantType::ClientCredentials,
    GrantType::RefreshToken,
];

/// Settings of the Zendesk backend.
#[derive(Debug, Clone)]
pub struct ZendeskSettings {
    /// `https://{subdomain}.zendesk.com`, or another base for tests.
    pub base_url: Url,
    /// Management credential: an admin's API token as Basic
    /// `{email}/token:{token}`, or an admin's OAuth access token as Bearer.
    pub auth: ProviderAuth,
    /// The admin user recorded as each client's creator: the gateway's mark.
    pub user_id: i64,
    /// Timeouts, retries and circuit breaker.
    pub resilience: Resilience,
}

/// The Zendesk backend.
#[derive(Debug)]
pub struct Zendesk {
    http: ProviderHttp,
    settings: ZendeskSettings,
    clients_url: String,
}

/// The envelope of requests and answers: `{"client": {...}}`.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<T> {
    client: T,
}

/// The OAuth client members the gateway writes.
#[derive(Debug, Serialize)]
struct ZendeskClient<'a> {
    name: &'a str,
    identifier: &'a str,
    user_id: i64,
    kind: &'static str,
    redirect_uri: Vec<&'a str>,
}

/// What the gateway reads back from Zendesk.
#[derive(Debug, Deserialize)]
struct ZendeskAnswer {
    id: i64,
    identifier: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    created_at: Option<String>,
}

/// One page of `GET /api/v2/oauth/clients` with cursor paging.
#[derive(Debug, Deserialize)]
struct Page {
    clients: Vec<ZendeskAnswer>,
    #[serde(default)]
    meta: Option<PageMeta>,
}

#[derive(Debug, Deserialize)]
struct PageMeta {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    after_cursor: Option<String>,
}

/// The provider state kept per client: Zendesk's record id.
#[derive(Debug, Serialize, Deserialize)]
struct ZendeskState {
    id: i64,
}

impl Zendesk {
    /// Builds the backend.
    pub fn new(settings: ZendeskSettings) -> Result<Self, ProviderSetupError> {
        let clients_url = endpoint(&settings.base_url, "/api/v2/oauth/clients");
        Ok(Self {
            http: ProviderHttp::new(NAME, settings.resilience, Some(settings.auth.clone()))?,
            clients_url,
            settings,
        })
    }

    fn body<'a>(
        &self,
        request: &'a ProvisionRequest<'_>,
        name: &'a str,
    ) -> Envelope<ZendeskClient<'a>> {
        let metadata = request.metadata;
        Envelope {
            client: ZendeskClient {
                name,
                identifier: request.client_id.as_str(),
                user_id: self.settings.user_id,
                kind: if metadata.token_endpoint_auth_method == AuthMethod::None {
                    "public"
                } else {
                    "confidential"
                },
                redirect_uri: metadata.redirect_uris.iter().map(|u| u.as_str()).collect(),
            },
        }
    }

    fn record_url(&self, id: i64) -> String {
        format!("{}/{id}", self.clients_url)
    }

    /// Zendesk's record id: from the state, else found by identifier.
    async fn record_id(
        &self,
        client_id: &ClientId,
        state: Option<&ProviderState>,
    ) -> Result<Option<i64>, ProviderError> {
        if let Some(state) = state_as::<ZendeskState>(state) {
            return Ok(Some(state.id));
        }
        self.find(client_id).await
    }

    /// The record whose identifier is `client_id`, by listing every page.
    async fn find(&self, client_id: &ClientId) -> Result<Option<i64>, ProviderError> {
        Ok(self
            .all()
            .await?
            .into_iter()
            .find(|c| c.identifier == client_id.as_str())
            .map(|c| c.id))
    }

    /// Every client, following the cursor.
    async fn all(&self) -> Result<Vec<ZendeskAnswer>, ProviderError> {
        let mut clients = Vec::new();
        let mut listing = Listing::default();
        let mut after: Option<String> = None;
        loop {
            listing.next_page(after.as_deref().unwrap_or_default())?;
            let mut query = vec![("page[size]", PAGE_SIZE.to_string())];
            if let Some(cursor) = &after {
                query.push(("page[after]", cursor.clone()));
            }
            let answer = self
                .http
                .call(
                    self.http.client().get(&self.clients_url).query(&query),
                    Repeat::Safe,
                )
                .await?;
            if !answer.status.is_success() {
                return Err(answer.failure());
            }
            let page: Page = answer.json()?;
            listing.add(page.clients.iter().map(|c| c.identifier.as_str()))?;
            clients.extend(page.clients);
            match page.meta {
                Some(PageMeta {
                    has_more: true,
                    after_cursor: Some(cursor),
                }) => after = Some(cursor),
                _ => break,
            }
        }
        Ok(clients)
    }

    /// `generate_secret`: Zendesk makes a new secret and shows it once.
    async fn generate_secret(&self, id: i64) -> Result<ClientSecret, ProviderError> {
        let url = format!("{}/generate_secret", self.record_url(id));
        let answer = self
            .http
            .call(self.http.client().put(url), Repeat::Safe)
            .await?;
        if !answer.status.is_success() {
            return Err(answer.client_failure());
        }
        let Envelope { client } = answer.json::<Envelope<ZendeskAnswer>>()?;
        client.secret.map(ClientSecret::presented).ok_or_else(|| {
            ProviderError::Indeterminate("generate_secret returned no secret".into())
        })
    }

    /// A create whose outcome is unknown: adopt the record it made, if any.
    async fn recover(
        &self,
        request: &ProvisionRequest<'_>,
        lost: ProviderError,
    ) -> Result<Provisioned, ProviderError> {
        let Ok(Some(id)) = self.find(request.client_id).await else {
            return Err(lost);
        };
        tracing::info!(client_id = %request.client_id, "adopted a Zendesk client whose create answer was lost");
        self.provisioned(id, request.metadata.needs_client_secret())
            .await
            // The record exists at Zendesk: leave the registration pending.
            .map_err(|e| ProviderError::Indeterminate(format!("adopting record {id}: {e}")))
    }

    /// Record `id` as provisioned, with a secret freshly generated when `new_secret`.
    async fn provisioned(&self, id: i64, new_secret: bool) -> Result<Provisioned, ProviderError> {
        let client_secret = if new_secret {
            Some(self.generate_secret(id).await?)
        } else {
            None
        };
        Ok(Provisioned {
            client_id: None,
            client_secret,
            state: Some(state(id)?),
            ..Provisioned::default()
        })
    }
}

fn state(id: i64) -> Result<ProviderState, ProviderError> {
    state_of(&ZendeskState { id })
}

/// The name Zendesk requires.
fn client_name(request: &ProvisionRequest<'_>) -> String {
    request
        .metadata
        .client_name
        .plain
        .clone()
        .unwrap_or_else(|| format!("dcr-{}", request.client_id))
}

#[async_trait]
impl Provider for Zendesk {
    fn name(&self) -> &'static str {
        NAME
    }

    fn supports(&self, metadata: &ClientMetadata) -> Result<(), String> {
        let method = metadata.token_endpoint_auth_method;
        if !matches!(
            method,
            AuthMethod::None | AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        ) {
            return Err(format!(
                "the zendesk provider does not support token_endpoint_auth_method `{method}`: \
                 Zendesk clients are public (none) or authenticate with a client secret \
                 (client_secret_basic, client_secret_post)"
            ));
        }
        if let Some(grant) = metadata
            .grant_types
            .iter()
            .find(|g| !GRANT_TYPES.contains(g))
        {
            return Err(format!(
                "the zendesk provider does not issue tokens for grant type `{grant}`"
            ));
        }
        Ok(())
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let name = client_name(request);
        let body = self.body(request, &name);
        // Retried: the identifier is unique, so a repeat cannot make a second
        // client; one after an attempt that did is refused as a duplicate,
        // and the record is then found by its identifier.
        let sent = self
            .http
            .call(
                self.http.client().post(&self.clients_url).json(&body),
                Repeat::Safe,
            )
            .await;
        let outcome = sent.and_then(|answer| {
            if !answer.status.is_success() {
                return Err(answer.failure());
            }
            let Envelope { client } = answer.json::<Envelope<ZendeskAnswer>>()?;
            Ok(Provisioned {
                client_id: None,
                client_secret: shown_secret(request.metadata.needs_client_secret(), client.secret)?,
                state: Some(state(client.id)?),
                ..Provisioned::default()
            })
        });
        match outcome {
            Err(lost @ ProviderError::Indeterminate(_)) => self.recover(request, lost).await,
            other => other,
        }
    }

    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let Some(id) = self.record_id(request.client_id, request.state).await? else {
            return Err(ProviderError::NotFound(format!(
                "no Zendesk client has identifier `{}`",
                request.client_id
            )));
        };
        let name = client_name(request);
        let body = self.body(request, &name);
        let answer = self
            .http
            .call(
                self.http.client().put(self.record_url(id)).json(&body),
                Repeat::Safe,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(answer.client_failure());
        }
        // The answer shows the secret truncated: it is never taken from here.
        self.provisioned(
            id,
            request.client_secret.is_some() && request.metadata.needs_client_secret(),
        )
        .await
    }

    async fn delete(
        &self,
        client_id: &ClientId,
        state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        let Some(id) = self.record_id(client_id, state).await? else {
            return Ok(());
        };
        let answer = self
            .http
            .call(self.http.client().delete(self.record_url(id)), Repeat::Safe)
            .await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(answer.failure())
        }
    }

    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        let Some(id) = self.find(client.client_id).await? else {
            return Ok(Presence::Absent);
        };
        self.delete(client.client_id, Some(&state(id)?)).await?;
        Ok(Presence::Present)
    }

    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        let user_id = self.settings.user_id;
        Ok(Some(
            self.all()
                .await?
                .into_iter()
                .map(|c| ListedClient {
                    marked: Some(c.user_id == Some(user_id)),
                    created_at: c.created_at.as_deref().and_then(unix_time),
                    id: ClientId::new(c.identifier),
                })
                .collect(),
        ))
    }

    fn operation_deadline(&self) -> Option<Duration> {
        Some(self.http.resilience().operation_deadline())
    }

    /// Zendesk publishes no OpenID Connect discovery document.
    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        Ok(None)
    }
}
