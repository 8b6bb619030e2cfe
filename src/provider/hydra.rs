//! Ory Hydra's admin API (`/admin/clients`, OAuth2Client of Hydra v26).
//!
//! The gateway chooses the client id and the secret, so a retried create is
//! idempotent and a lost answer can be found again by id. Hydra holds most
//! RFC 7591 / OIDC members; what it has no field for (`application_type`,
//! `id_token_*` and `*_encrypted_*` algorithms, `default_max_age`,
//! `require_auth_time`, `default_acr_values`, `initiate_login_uri`,
//! `software_id`/`software_version`, language-tagged variants, and the
//! registry's mTLS, DPoP, PAR, JAR, RAR, JARM, CIBA and introspection
//! members) is kept by the gateway alone. The logout members of OpenID
//! Connect's logout specs are Hydra's own. Members that only an operator may
//! set (`skip_consent`, `skip_logout_consent`, `access_token_strategy`,
//! `metadata`, `audience`) are never sent; token lifespans come from
//! configuration. Hydra's document lists four authentication methods; a
//! client of another is refused.
//!
//! Every client the gateway makes carries its mark in Hydra's `owner`
//! (`provider.owner`, `dcr-gateway` by default), so reconcile can tell an
//! orphan of its own, which it deletes, from another tool's client, which it
//! only reports.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::listing::link_paged;
use super::logout_members::LogoutMembers;
use super::rest::{
    DiscoveryCache, ProviderAuth, ProviderHttp, ProviderSetupError, Repeat, Resilience,
};
use super::{
    Credential, ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned,
    endpoint, unix_time, urlencode,
};
use crate::domain::metadata::ClientKeys;
use crate::domain::values::AuthMethod;
use crate::domain::{ClientId, ClientMetadata, ProviderState};

/// The backend's name, in metrics and logs.
const NAME: &str = "hydra";

// Settings: the keys of `kind = "hydra"` and their validation.
mod settings;

/// The token endpoint authentication methods Hydra's `oAuth2Client`
/// document lists.
const HYDRA_AUTH_METHODS: [AuthMethod; 4] = [
    AuthMethod::ClientSecretBasic,
    AuthMethod::ClientSecretPost,
    AuthMethod::PrivateKeyJwt,
    AuthMethod::None,
];

/// The token lifespans an operator may set per client (Go durations at Hydra).
pub const LIFESPANS: [&str; 13] = [
    "authorization_code_grant_access_token_lifespan",
    "authorization_code_grant_id_token_lifespan",
    "authorization_code_grant_refresh_token_lifespan",
    "client_credentials_grant_access_token_lifespan",
    "device_authorization_grant_access_token_lifespan",
    "device_authorization_grant_id_token_lifespan",
    "device_authorization_grant_refresh_token_lifespan",
    "implicit_grant_access_token_lifespan",
    "implicit_grant_id_token_lifespan",
    "jwt_bearer_grant_access_token_lifespan",
    "refresh_token_grant_access_token_lifespan",
    "refresh_token_grant_id_token_lifespan",
    "refresh_token_grant_refresh_token_lifespan",
];

/// Members every JWK must carry in Hydra's `jsonWebKey` schema.
const REQUIRED_JWK_MEMBERS: [&str; 4] = ["kty", "kid", "alg", "use"];
/// Clients per page when listing.
const PAGE_SIZE: u32 = 500;

/// Settings of the Hydra backend.
#[derive(Debug, Clone)]
pub struct HydraSettings {
    /// Base URL of the admin API (the part before `/admin/clients`).
    pub admin_url: Url,
    /// Hydra's public issuer URL, for discovery.
    pub issuer: Url,
    /// Ory Network API key, sent as a bearer token.
    pub api_key: Option<Credential>,
    /// Token lifespans set on every client, by Hydra member name.
    pub lifespans: BTreeMap<String, Duration>,
    /// The `owner` the gateway writes on every client it makes: its mark.
    pub owner: String,
    /// Timeouts, retries and circuit breaker.
    pub resilience: Resilience,
}

/// The Hydra backend.
#[derive(Debug)]
pub struct Hydra {
    http: ProviderHttp,
    settings: HydraSettings,
    clients_url: String,
    discovery: DiscoveryCache,
}

/// The OAuth2Client members the gateway writes.
#[derive(Debug, Serialize)]
struct HydraClient<'a> {
    client_id: &'a str,
    owner: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_name: Option<&'a str>,
    redirect_uris: Vec<&'a str>,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_endpoint_auth_signing_alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tos_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    contacts: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sector_identifier_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    userinfo_signed_response_alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object_signing_alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    request_uris: Vec<&'a str>,
    #[serde(flatten)]
    logout: LogoutMembers<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backchannel_logout_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backchannel_logout_session_required: Option<bool>,
    #[serde(flatten)]
    lifespans: BTreeMap<&'a str, String>,
}

/// What the gateway reads back from Hydra.
#[derive(Debug, Deserialize)]
struct HydraAnswer {
    client_id: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

impl Hydra {
    /// Builds the backend.
    pub fn new(settings: HydraSettings) -> Result<Self, ProviderSetupError> {
        let clients_url = endpoint(&settings.admin_url, "/admin/clients");
        let auth = settings.api_key.clone().map(ProviderAuth::Bearer);
        Ok(Self {
            http: ProviderHttp::new(NAME, settings.resilience, auth)?,
            discovery: DiscoveryCache::new(&settings.issuer)?,
            clients_url,
            settings,
        })
    }

    fn client_url(&self, client_id: &ClientId) -> String {
        format!("{}/{}", self.clients_url, urlencode(client_id.as_str()))
    }

    fn body<'a>(
        &'a self,
        request: &'a ProvisionRequest<'_>,
    ) -> Result<HydraClient<'a>, ProviderError> {
        let m: &ClientMetadata = request.metadata;
        let logout = &m.registry_members;
        let (jwks_uri, jwks) = match &m.keys {
            Some(ClientKeys::Uri(uri)) => (Some(uri.as_str()), None),
            Some(ClientKeys::Set(set)) => (None, Some(check_jwks(set)?)),
            None => (None, None),
        };
        Ok(HydraClient {
            client_id: request.client_id.as_str(),
            owner: &self.settings.owner,
            client_secret: request.client_secret.map(|s| s.expose()),
            client_name: m.client_name.plain.as_deref(),
            redirect_uris: m.redirect_uris.iter().map(|u| u.as_str()).collect(),
            grant_types: m.grant_types.iter().map(ToString::to_string).collect(),
            response_types: m.response_types.iter().map(ToString::to_string).collect(),
            scope: m.scope.as_deref(),
            token_endpoint_auth_method: m.token_endpoint_auth_method.as_str(),
            token_endpoint_auth_signing_alg: m.token_endpoint_auth_signing_alg.map(|a| a.as_str()),
            jwks_uri,
            jwks,
            client_uri: m.client_uri.plain.as_ref().map(|u| u.as_str()),
            logo_uri: m.logo_uri.plain.as_ref().map(|u| u.as_str()),
            tos_uri: m.tos_uri.plain.as_ref().map(|u| u.as_str()),
            policy_uri: m.policy_uri.plain.as_ref().map(|u| u.as_str()),
            contacts: m.contacts.iter().map(String::as_str).collect(),
            sector_identifier_uri: m.sector_identifier_uri.as_ref().map(|u| u.as_str()),
            subject_type: m.subject_type.map(|s| s.as_str()),
            userinfo_signed_response_alg: m.userinfo_signed_response_alg.map(|a| a.as_str()),
            request_object_signing_alg: m.request_object_signing_alg.map(|a| a.as_str()),
            request_uris: m.request_uris.iter().map(|u| u.as_str()).collect(),
            logout: logout.into(),
            backchannel_logout_uri: logout.backchannel_logout_uri.as_ref().map(|u| u.as_str()),
            backchannel_logout_session_required: logout.backchannel_logout_session_required,
            lifespans: self
                .settings
                .lifespans
                .iter()
                .map(|(name, d)| (name.as_str(), format!("{}s", d.as_secs())))
                .collect(),
        })
    }

    /// Sends a create or replace, retried: both are idempotent because the
    /// gateway chose the id (and the secret), so a create that finds the
    /// client already there (409) found an earlier attempt of its own.
    /// A 404 to a replace means the client is gone.
    /// Hydra keeps the secret the gateway sent, and its current one when
    /// none was sent.
    async fn write(
        &self,
        request: RequestBuilder,
        provision: &ProvisionRequest<'_>,
        replace: bool,
    ) -> Result<Provisioned, ProviderError> {
        let answer = self.http.call(request, Repeat::Safe).await?;
        if answer.status == StatusCode::CONFLICT {
            return Ok(Provisioned::keeping_secret_of(provision));
        }
        if !answer.status.is_success() {
            return Err(if replace {
                answer.client_failure()
            } else {
                answer.failure()
            });
        }
        answer.json::<HydraAnswer>()?;
        Ok(Provisioned::keeping_secret_of(provision))
    }
}

/// Hydra's schema requires `kty`, `kid`, `alg` and `use` on every key.
fn check_jwks(set: &Value) -> Result<&Value, ProviderError> {
    let keys = set.get("keys").and_then(Value::as_array);
    let complete = keys.is_some_and(|keys| {
        keys.iter().all(|key| {
            REQUIRED_JWK_MEMBERS
                .iter()
                .all(|m| key.get(m).is_some_and(Value::is_string))
        })
    });
    if complete {
        Ok(set)
    } else {
        Err(ProviderError::Rejected(format!(
            "Hydra requires {} on every key of jwks",
            REQUIRED_JWK_MEMBERS.join(", ")
        )))
    }
}

#[async_trait]
impl Provider for Hydra {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Hydra's document lists four token endpoint authentication methods;
    /// a client of another one (an RFC 8705 mTLS client, for one) would be
    /// held as something it is not.
    fn supports(&self, metadata: &ClientMetadata) -> Result<(), String> {
        let method = metadata.token_endpoint_auth_method;
        if HYDRA_AUTH_METHODS.contains(&method) {
            return Ok(());
        }
        Err(format!(
            "the hydra provider does not support token_endpoint_auth_method `{method}` \
             (Hydra offers client_secret_basic, client_secret_post, private_key_jwt and none)"
        ))
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let body = self.body(request)?;
        self.write(
            self.http.client().post(&self.clients_url).json(&body),
            request,
            false,
        )
        .await
    }

    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let body = self.body(request)?;
        self.write(
            self.http
                .client()
                .put(self.client_url(request.client_id))
                .json(&body),
            request,
            true,
        )
        .await
    }

    async fn delete(
        &self,
        client_id: &ClientId,
        _state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        let answer = self
            .http
            .call(
                self.http.client().delete(self.client_url(client_id)),
                Repeat::Safe,
            )
            .await?;
        match answer.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(answer.failure()),
        }
    }

    /// The gateway chose the id, so the client is found by it.
    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        let answer = self
            .http
            .call(
                self.http.client().get(self.client_url(client.client_id)),
                Repeat::Safe,
            )
            .await?;
        match answer.status {
            s if s.is_success() => {
                self.delete(client.client_id, None).await?;
                Ok(Presence::Present)
            }
            StatusCode::NOT_FOUND => Ok(Presence::Absent),
            _ => Err(answer.failure()),
        }
    }

    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        let Ok(first) = Url::parse(&format!("{}?page_size={PAGE_SIZE}", self.clients_url)) else {
            return Ok(Some(Vec::new()));
        };
        let fetch = |url| self.http.call(self.http.client().get(url), Repeat::Safe);
        let clients: Vec<HydraAnswer> =
            link_paged(first, fetch, |c: &HydraAnswer| c.client_id.as_str()).await?;
        let listed = clients.into_iter().map(|c| ListedClient {
            marked: Some(c.owner.as_deref() == Some(self.settings.owner.as_str())),
            created_at: c.created_at.as_deref().and_then(unix_time),
            id: ClientId::new(c.client_id),
        });
        Ok(Some(listed.collect()))
    }

    fn operation_deadline(&self) -> Option<Duration> {
        Some(self.http.resilience().operation_deadline())
    }

    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        self.discovery.get(&self.http).await.map(Some)
    }
}
