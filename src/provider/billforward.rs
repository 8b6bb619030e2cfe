//! BillForward's Clients API (`/clients`), a Spring-OAuth-style client store.
//!
//! The gateway chooses `clientId` and generates `clientSecret` (a required
//! input there), so a client is found again by id and the app's secret is the
//! one the gateway made. Every answer is a paged envelope whose `results`
//! hold the clients; errors come as BFError (`errorType`, `errorMessage`).
//! There is no DELETE: a client is retired by `PUT /clients` with
//! `deleted: true`, and a retired client reads as gone.
//!
//! The required members BillForward has and RFC 7591 has not
//! (`organizationID`, `resourceIds`, `authorities`, token validity seconds)
//! come from configuration. BillForward authenticates clients with a secret
//! only: `none`, `*_jwt` and mTLS methods are refused at registration.
//!
//! Creates are retried like any safe call, since the id is the gateway's: a
//! repeat after an attempt that took effect is refused as a duplicate, and
//! the record is then read back by id. The Client model has no field for a
//! mark of the gateway's own (every member is either the client's or set
//! from configuration): reconcile reports clients the gateway does not know
//! and never deletes them.
//!
//! Readings of what BillForward's documents leave open: multi-valued members
//! (`scope`, `resourceIds`, `authorizedGrantTypes`, `registeredRedirectUris`,
//! `authorities`) are single strings joined with `list_separator` (Spring's
//! comma by default), so a value containing the separator is refused; an
//! unknown client is a 404 or an envelope with no results, either meaning
//! gone; `PUT /clients` wants the whole record, secret included, so a
//! replace without a new secret first reads the current one; `scope` is sent
//! empty for a client that registered none. Names, URIs, contacts, keys,
//! response types and software ids are kept by the gateway.

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use std::time::Duration;

use super::listing::Listing;
use super::rest::{ProviderAuth, ProviderHttp, ProviderSetupError, Repeat, Resilience};
use super::{
    Credential, ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned,
    endpoint, unix_time, urlencode,
};
use crate::domain::values::AuthMethod;
use crate::domain::{ClientId, ClientMetadata, ClientSecret, ProviderState};

/// The backend's name, in metrics and logs.
const NAME: &str = "billforward";

// Settings: the keys of `kind = "billforward"` and their validation.
mod settings;

/// Clients per page when listing.
const PAGE_RECORDS: usize = 100;

/// Settings of the BillForward backend.
#[derive(Debug, Clone)]
pub struct BillForwardSettings {
    /// API base, e.g. `https://api.billforward.net/v1`.
    pub base_url: Url,
    /// Private API token, sent as Bearer.
    pub api_token: Credential,
    /// `organizationID` of every client.
    pub organization_id: String,
    /// `resourceIds` of every client.
    pub resource_ids: Vec<String>,
    /// `authorities` of every client.
    pub authorities: Vec<String>,
    /// `accessTokenValiditySeconds` of every client.
    pub access_token_validity_seconds: u32,
    /// `refreshTokenValiditySeconds` of every client.
    pub refresh_token_validity_seconds: u32,
    /// How multi-valued members are joined into one string.
    pub list_separator: String,
    /// Timeouts, retries and circuit breaker.
    pub resilience: Resilience,
}

/// The BillForward backend.
#[derive(Debug)]
pub struct BillForward {
    http: ProviderHttp,
    settings: BillForwardSettings,
    clients_url: String,
}

/// The Client model on the wire (camelCase; `organizationID` as spelled there).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BillForwardClient<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    #[serde(rename = "organizationID")]
    organization_id: &'a str,
    scope: String,
    resource_ids: String,
    authorized_grant_types: String,
    registered_redirect_uris: String,
    authorities: String,
    access_token_validity_seconds: u32,
    refresh_token_validity_seconds: u32,
    deleted: bool,
}

/// Members of a stored client that BillForward sets itself and never takes.
const READ_ONLY: [&str; 3] = ["created", "updated", "changedBy"];

/// The paged envelope every answer comes in; `results` holds client records.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    results: Vec<Map<String, Value>>,
}

impl BillForward {
    /// Builds the backend.
    pub fn new(settings: BillForwardSettings) -> Result<Self, ProviderSetupError> {
        let clients_url = endpoint(&settings.base_url, "/clients");
        let auth = ProviderAuth::Bearer(settings.api_token.clone());
        Ok(Self {
            http: ProviderHttp::new(NAME, settings.resilience, Some(auth))?,
            clients_url,
            settings,
        })
    }

    fn join<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> String {
        values
            .into_iter()
            .collect::<Vec<_>>()
            .join(&self.settings.list_separator)
    }

    fn body<'a>(
        &'a self,
        client_id: &'a ClientId,
        metadata: &'a ClientMetadata,
        client_secret: &'a str,
    ) -> BillForwardClient<'a> {
        let settings = &self.settings;
        BillForwardClient {
            client_id: client_id.as_str(),
            client_secret,
            organization_id: &settings.organization_id,
            scope: self.join(scope_words(metadata)),
            resource_ids: self.join(settings.resource_ids.iter().map(String::as_str)),
            authorized_grant_types: self.join(metadata.grant_types.iter().map(|g| g.as_str())),
            registered_redirect_uris: self.join(metadata.redirect_uris.iter().map(|u| u.as_str())),
            authorities: self.join(settings.authorities.iter().map(String::as_str)),
            access_token_validity_seconds: settings.access_token_validity_seconds,
            refresh_token_validity_seconds: settings.refresh_token_validity_seconds,
            deleted: false,
        }
    }

    /// The client record as BillForward holds it, or `None` when unknown or retired.
    async fn get(&self, client_id: &ClientId) -> Result<Option<Map<String, Value>>, ProviderError> {
        let url = format!(
            "{}/{}?organizations={}",
            self.clients_url,
            urlencode(client_id.as_str()),
            urlencode(&self.settings.organization_id)
        );
        let answer = self
            .http
            .call(self.http.client().get(url), Repeat::Safe)
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(answer.failure());
        }
        let envelope: Envelope = answer.json()?;
        Ok(envelope.results.into_iter().find(|record| {
            record.get("clientId").and_then(Value::as_str) == Some(client_id.as_str())
                && record.get("deleted").and_then(Value::as_bool) != Some(true)
        }))
    }

    /// `PUT /clients` with the whole record.
    async fn put(&self, body: &impl Serialize) -> Result<(), ProviderError> {
        let answer = self
            .http
            .call(
                self.http.client().put(&self.clients_url).json(body),
                Repeat::Safe,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(answer.client_failure());
        }
        answer.json::<Envelope>().map(|_| ())
    }

    /// Retires a client: its stored record, sent back with `deleted: true`.
    async fn retire(&self, client_id: &ClientId) -> Result<Presence, ProviderError> {
        let Some(mut record) = self.get(client_id).await? else {
            return Ok(Presence::Absent);
        };
        for member in READ_ONLY {
            record.remove(member);
        }
        record.insert("deleted".into(), Value::Bool(true));
        match self.put(&record).await {
            Ok(()) | Err(ProviderError::NotFound(_)) => Ok(Presence::Present),
            Err(other) => Err(other),
        }
    }
}

/// The words of the client's `scope`, which BillForward holds as a list.
fn scope_words(metadata: &ClientMetadata) -> impl Iterator<Item = &str> {
    metadata.scope.iter().flat_map(|s| s.split(' '))
}

#[async_trait]
impl Provider for BillForward {
    fn name(&self) -> &'static str {
        NAME
    }

    fn supports(&self, metadata: &ClientMetadata) -> Result<(), String> {
        let method = metadata.token_endpoint_auth_method;
        if !matches!(
            method,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        ) {
            return Err(format!(
                "the billforward provider does not support token_endpoint_auth_method \
                 `{method}`: BillForward clients always authenticate with a client secret \
                 (client_secret_basic, client_secret_post)"
            ));
        }
        let separator = self.settings.list_separator.as_str();
        let joined = metadata
            .redirect_uris
            .iter()
            .map(|u| u.as_str())
            .chain(scope_words(metadata));
        if let Some(value) = joined.into_iter().find(|v| v.contains(separator)) {
            return Err(format!(
                "the billforward provider stores lists as one `{separator}`-separated string, \
                 so `{value}` cannot be held"
            ));
        }
        Ok(())
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let secret = request.client_secret.ok_or_else(|| {
            ProviderError::Rejected("BillForward clients need a client secret".into())
        })?;
        let body = self.body(request.client_id, request.metadata, secret.expose());
        let sent = self
            .http
            .call(
                self.http.client().post(&self.clients_url).json(&body),
                Repeat::Safe,
            )
            .await;
        let outcome = sent.and_then(|answer| {
            if answer.status.is_success() {
                answer
                    .json::<Envelope>()
                    .map(|_| Provisioned::keeping_secret_of(request))
            } else {
                Err(answer.failure())
            }
        });
        match outcome {
            Err(lost @ ProviderError::Indeterminate(_)) => {
                match self.get(request.client_id).await {
                    Ok(Some(_)) => Ok(Provisioned::keeping_secret_of(request)),
                    _ => Err(lost),
                }
            }
            other => other,
        }
    }

    /// `PUT /clients` takes the whole record, secret included: the new one
    /// when the gateway made one, else the one BillForward holds. Should
    /// BillForward not show it, a fresh secret is sent and handed to the app
    /// (RFC 7592 lets an update issue a new secret) rather than a blank one.
    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let (secret, issued) = match request.client_secret {
            Some(secret) => (secret.expose().to_owned(), Some(secret.clone())),
            None => {
                let record = self.get(request.client_id).await?.ok_or_else(|| {
                    ProviderError::NotFound(format!(
                        "BillForward holds no active client `{}`",
                        request.client_id
                    ))
                })?;
                match record.get("clientSecret").and_then(Value::as_str) {
                    Some(held) if !held.is_empty() => (held.to_owned(), None),
                    _ => {
                        let fresh = ClientSecret::generate();
                        (fresh.expose().to_owned(), Some(fresh))
                    }
                }
            }
        };
        self.put(&self.body(request.client_id, request.metadata, &secret))
            .await?;
        Ok(Provisioned {
            client_secret: issued,
            ..Provisioned::default()
        })
    }

    async fn delete(
        &self,
        client_id: &ClientId,
        _state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        self.retire(client_id).await.map(|_| ())
    }

    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        self.retire(client.client_id).await
    }

    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        let mut clients = Vec::new();
        let mut listing = Listing::default();
        let mut offset = 0;
        loop {
            listing.next_page(&offset.to_string())?;
            let query = [
                ("organizations", self.settings.organization_id.clone()),
                ("offset", offset.to_string()),
                ("records", PAGE_RECORDS.to_string()),
                ("order_by", "created".to_owned()),
                ("order", "ASC".to_owned()),
                ("include_retired", "false".to_owned()),
            ];
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
            let page: Envelope = answer.json()?;
            let count = page.results.len();
            let text = |record: &Map<String, Value>, member: &str| {
                record
                    .get(member)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            listing.add(
                page.results
                    .iter()
                    .filter_map(|r| r.get("clientId").and_then(Value::as_str)),
            )?;
            clients.extend(page.results.iter().filter_map(|record| {
                let retired = record.get("deleted").and_then(Value::as_bool) == Some(true);
                let id = text(record, "clientId")?;
                (!retired).then(|| ListedClient {
                    id: ClientId::new(id),
                    marked: None,
                    created_at: text(record, "created").as_deref().and_then(unix_time),
                })
            }));
            // BillForward may return fewer than asked for: only an empty
            // page ends the list.
            if count == 0 {
                break;
            }
            offset += count;
        }
        Ok(Some(clients))
    }

    fn operation_deadline(&self) -> Option<Duration> {
        Some(self.http.resilience().operation_deadline())
    }

    /// BillForward publishes no OpenID Connect discovery document.
    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        Ok(None)
    }
}
