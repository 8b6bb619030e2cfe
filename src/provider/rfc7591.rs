//! Any RFC 7591/7592 server upstream. The gateway registers the client there,
//! keeps the upstream's registration access token and client URI (sealed at
//! rest) to manage it, and hands the app a token of its own.
//!
//! The upstream chooses the client id and secret; the app receives both, since
//! it authenticates at the upstream's token endpoint. The upstream may
//! substitute requested values (RFC 7591 §3.2.1): the app is told what the
//! upstream holds, its metadata and its secret's expiry. RFC 7591 has no listing,
//! so drift can only be checked client by client, and a create whose answer
//! was lost leaves no handle to find it again: reconcile reports such a row as
//! a possible orphan at the upstream.

use async_trait::async_trait;
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use std::time::Duration;

use super::rest::{Answer, DiscoveryCache, ProviderHttp, ProviderSetupError, Repeat, Resilience};
use super::{
    Credential, ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned,
    state_as, state_of,
};
use crate::domain::metadata::SERVER_MEMBERS;
use crate::domain::{ClientId, ClientSecret, ProviderState};

/// The backend's name, in metrics and logs.
const NAME: &str = "rfc7591";

// Settings: the keys of `kind = "rfc7591"` and their validation.
mod settings;

/// Settings of the RFC 7591 backend.
#[derive(Debug, Clone)]
pub struct Rfc7591Settings {
    /// The upstream's issuer, for discovery.
    pub issuer: Url,
    /// The upstream's registration endpoint.
    pub registration_endpoint: Url,
    /// Initial access token the upstream requires for registration, if any.
    pub initial_access_token: Option<Credential>,
    /// Timeouts, retries and circuit breaker.
    pub resilience: Resilience,
}

/// The RFC 7591 backend.
#[derive(Debug)]
pub struct Rfc7591 {
    http: ProviderHttp,
    settings: Rfc7591Settings,
    discovery: DiscoveryCache,
}

/// The upstream's handle on one client, kept as provider state.
#[derive(Debug, Serialize, Deserialize)]
struct Management {
    registration_access_token: String,
    registration_client_uri: String,
}

/// The members of a client information response the gateway needs, and
/// the metadata as the upstream holds it.
#[derive(Debug, Deserialize)]
struct UpstreamClient {
    client_id: String,
    client_secret: Option<String>,
    client_secret_expires_at: Option<i64>,
    registration_access_token: Option<String>,
    registration_client_uri: Option<String>,
    #[serde(flatten)]
    metadata: serde_json::Map<String, Value>,
}

impl Rfc7591 {
    /// Builds the backend.
    pub fn new(settings: Rfc7591Settings) -> Result<Self, ProviderSetupError> {
        Ok(Self {
            // Each call carries its own token: the initial access token, or
            // the upstream's registration access token for one client.
            http: ProviderHttp::new(NAME, settings.resilience, None)?,
            discovery: DiscoveryCache::new(&settings.issuer)?,
            settings,
        })
    }

    /// Reads a client information response (RFC 7591 §3.2.1).
    fn provisioned(answer: &Answer) -> Result<Provisioned, ProviderError> {
        if !answer.status.is_success() {
            return Err(answer.failure());
        }
        let client: UpstreamClient = answer.json()?;
        let state = match (
            client.registration_access_token,
            client.registration_client_uri,
        ) {
            (Some(token), Some(uri)) => Some(state_of(&Management {
                registration_access_token: token,
                registration_client_uri: uri,
            })?),
            _ => None,
        };
        let mut held = client.metadata;
        held.retain(|member, _| !SERVER_MEMBERS.contains(&member.as_str()));
        Ok(Provisioned {
            client_id: Some(ClientId::new(client.client_id)),
            client_secret: client.client_secret.map(ClientSecret::presented),
            client_secret_expires_at: client.client_secret_expires_at,
            held_metadata: Some(held),
            state,
        })
    }
}

impl Management {
    /// A request to the client's RFC 7592 endpoint, with the upstream's token.
    fn request(&self, http: &ProviderHttp, method: reqwest::Method) -> RequestBuilder {
        http.client()
            .request(method, &self.registration_client_uri)
            .bearer_auth(&self.registration_access_token)
    }
}

fn management(state: Option<&ProviderState>) -> Option<Management> {
    state_as(state)
}

fn unmanaged() -> ProviderError {
    ProviderError::Rejected(
        "the upstream gave no registration access token for this client (RFC 7592 management unavailable)"
            .into(),
    )
}

#[async_trait]
impl Provider for Rfc7591 {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let document = request.metadata.to_document();
        let mut call = self
            .http
            .client()
            .post(self.settings.registration_endpoint.clone())
            .json(&document);
        if let Some(token) = &self.settings.initial_access_token {
            call = call.bearer_auth(token.expose());
        }
        // Sent once: a lost answer would register twice upstream.
        Self::provisioned(&self.http.call(call, Repeat::Never).await?)
    }

    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let handle = management(request.state).ok_or_else(unmanaged)?;
        let mut document = serde_json::to_value(request.metadata.to_document())
            .map_err(|e| ProviderError::Rejected(e.to_string()))?;
        document["client_id"] = Value::String(request.client_id.to_string());
        let call = handle
            .request(&self.http, reqwest::Method::PUT)
            .json(&document);
        let answer = self.http.call(call, Repeat::Safe).await?;
        // RFC 7592 §2: at the client's URI, 401 or 404 means it no longer exists.
        if matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND
        ) {
            return Err(ProviderError::NotFound(answer.reason()));
        }
        let mut provisioned = Self::provisioned(&answer)?;
        if provisioned.state.is_none() {
            // The upstream did not rotate its token: keep the one we have.
            provisioned.state = request.state.cloned();
        }
        provisioned.client_id = None;
        Ok(provisioned)
    }

    async fn delete(
        &self,
        _client_id: &ClientId,
        state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        let handle = management(state).ok_or_else(unmanaged)?;
        let answer = self
            .http
            .call(
                handle.request(&self.http, reqwest::Method::DELETE),
                Repeat::Safe,
            )
            .await?;
        match answer.status {
            // RFC 7592: an unknown client or a dead token is 401; either way it is gone.
            s if s.is_success() || s == StatusCode::UNAUTHORIZED || s == StatusCode::NOT_FOUND => {
                Ok(())
            }
            _ => Err(answer.failure()),
        }
    }

    /// Only a client whose management handle is known can be found again.
    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        let Some(handle) = management(client.state) else {
            return Ok(Presence::Unknown);
        };
        let answer = self
            .http
            .call(
                handle.request(&self.http, reqwest::Method::GET),
                Repeat::Safe,
            )
            .await?;
        match answer.status {
            s if s.is_success() => {
                self.delete(client.client_id, client.state).await?;
                Ok(Presence::Present)
            }
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND => Ok(Presence::Absent),
            _ => Err(answer.failure()),
        }
    }

    /// RFC 7591 defines no listing.
    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        Ok(None)
    }

    fn operation_deadline(&self) -> Option<Duration> {
        Some(self.http.resilience().operation_deadline())
    }

    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        self.discovery.get(&self.http).await.map(Some)
    }
}
