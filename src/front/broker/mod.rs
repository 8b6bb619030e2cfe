//! Broker mode (`[provider] kind = "oidc"`): the provider has no client
//! API, so every app signs users in through one client the operator
//! registered there. The gateway is then the provider's only client:
//!
//! - at `/authorize` it sends the user there with the operator's client id,
//!   its own PKCE pair and nonce (sealed into the login), and the app's
//!   scope and resource rewritten as the provider wants them
//!   ([`crate::provider::oidc::presets`]);
//! - at `/callback` it redeems the provider's code itself, checks the ID
//!   token ([`id_token`]) and keeps the tokens sealed under its own code;
//! - at `/token` the app gets the provider's access and ID tokens, and a
//!   refresh token of the gateway's ([`super::refresh`]): the provider's
//!   one would work for every app.
//!
//! This module speaks to the provider: its discovery document and keys,
//! the authorization URL, the code, refresh and revocation calls, and the
//! operator's client authentication.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use super::error::{Code, FrontError};
use super::provider::ProviderEndpoints;
use super::provider_call::{Credentials, Endpoint, ProviderAnswer, post_form};
use crate::clock::Clock;
use crate::provider::oidc::presets::ResourceRule;
use crate::provider::oidc::{OidcSettings, UpstreamCredential};
use crate::provider::settings::KindSettings;

pub mod assertion;
pub mod id_token;

use id_token::{IdTokenCheck, Identity, KeySet};

/// How long the provider's discovery document is used before it is read
/// again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// The provider's kind, as the spans of the broker's calls name it.
const PROVIDER: &str = <OidcSettings as KindSettings>::KIND;

/// The provider's discovery document, as the broker uses it.
#[derive(Debug)]
pub struct Upstream {
    /// The whole document (the gateway's own metadata copies from it).
    pub document: Value,
    /// Its endpoints (shared with the front, which reads them per request).
    pub endpoints: Arc<ProviderEndpoints>,
    /// Where its signing keys are.
    pub jwks_uri: String,
}

/// What an app's authorization request becomes at the provider.
#[derive(Debug)]
pub struct SignIn<'a> {
    /// The scope the app asked for (or registered).
    pub scope: Option<&'a str>,
    /// The resource it named (RFC 8707).
    pub resource: Option<&'a str>,
    /// The gateway's PKCE challenge.
    pub challenge: &'a str,
    /// The gateway's nonce.
    pub nonce: &'a str,
    /// The gateway's callback.
    pub redirect_uri: &'a str,
    /// OpenID Connect parameters the app sent that are passed on.
    pub passed_on: Vec<(&'a str, &'a str)>,
}

/// The provider's token answer: its members as sent. `Debug` shows the
/// member names only.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UpstreamTokens(pub Map<String, Value>);

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl UpstreamTokens {
    /// The text member `name`, if any.
    #[must_use]
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

/// A sign-in the provider answered: its tokens, and the user its ID token
/// names. It travels sealed under the gateway's code from `/callback` to
/// `/token`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SignedIn {
    /// The provider's token answer.
    pub tokens: UpstreamTokens,
    /// Who the ID token says signed in.
    pub identity: Identity,
    /// The app's own `nonce`, for the gateway's ID token.
    #[serde(default)]
    pub app_nonce: Option<String>,
}

/// The broker: the operator's client at one OpenID provider.
pub struct Broker {
    settings: OidcSettings,
    http: reqwest::Client,
    upstream: moka::future::Cache<(), Arc<Upstream>>,
    keys: KeySet,
    clock: Arc<dyn Clock>,
}

impl Broker {
    /// The broker of `settings`, calling out through `http`.
    #[must_use]
    pub fn new(settings: OidcSettings, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys: KeySet::new(http.clone()),
            settings,
            http,
            upstream: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(DISCOVERY_TTL)
                .build(),
            clock,
        }
    }

    /// The provider's discovery document.
    pub async fn upstream(&self) -> Result<Arc<Upstream>, FrontError> {
        self.upstream
            .try_get_with((), async {
                let url = self.settings.discovery_url.as_str();
                let document = fetch_json(&self.http, url, "the discovery document").await?;
                self.read_upstream(document).map(Arc::new)
            })
            .await
            .map_err(|error: Arc<FrontError>| FrontError::clone(&error))
    }

    /// The document checked against the configured issuer.
    fn read_upstream(&self, document: Value) -> Result<Upstream, FrontError> {
        let endpoints =
            ProviderEndpoints::read(&document).map_err(|e| FrontError::unavailable(&e))?;
        if endpoints.issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
            return Err(FrontError::unavailable(&format!(
                "the discovery document names the issuer `{}`, not the configured `{}`",
                endpoints.issuer, self.settings.issuer
            )));
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| FrontError::unavailable("the discovery document lacks `jwks_uri`"))?
            .to_owned();
        Ok(Upstream {
            document,
            endpoints: Arc::new(endpoints),
            jwks_uri,
        })
    }

    /// Whether the provider's discovery document and keys can be read now.
    pub async fn ready(&self) -> Result<(), FrontError> {
        let upstream = self.upstream().await?;
        self.keys
            .ready(&upstream.jwks_uri, self.clock.now_unix())
            .await
    }

    /// The provider's authorization URL for `sign_in`, without `state`.
    pub fn authorization_url(
        &self,
        upstream: &Upstream,
        sign_in: &SignIn<'_>,
    ) -> Result<Url, FrontError> {
        let profile = &self.settings.profile;
        let asked = sign_in.scope.unwrap_or(&self.settings.default_scope);
        let mut scopes: Vec<String> = vec!["openid".to_owned()];
        let mut params: Vec<(String, String)> = Vec::new();
        for scope in asked.split(' ').filter(|s| !s.is_empty()) {
            if let Some(added) = profile.scope_params.get(scope) {
                params.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let written = profile.scope_map.get(scope).map_or(scope, String::as_str);
            scopes.extend(
                written
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        match (profile.resource, sign_in.resource) {
            (ResourceRule::Pass, Some(resource)) => {
                params.push(("resource".into(), resource.into()));
            }
            (ResourceRule::Audience, resource) => {
                if let Some(audience) = resource.or(self.settings.audience.as_deref()) {
                    params.push(("audience".into(), audience.into()));
                }
            }
            (ResourceRule::Scope, Some(resource)) => scopes.push(self.resource_scope(resource)),
            _ => {}
        }
        params.extend(
            profile
                .authorize_params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let mut seen = std::collections::BTreeSet::new();
        scopes.retain(|scope| seen.insert(scope.clone()));
        let mut url = Url::parse(&upstream.endpoints.authorization_endpoint)
            .map_err(|e| FrontError::internal(&format!("authorization_endpoint: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("redirect_uri", sign_in.redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("code_challenge", sign_in.challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("nonce", sign_in.nonce);
            let mut added = std::collections::BTreeSet::new();
            for (name, value) in &params {
                if added.insert(name.clone()) {
                    query.append_pair(name, value);
                }
            }
            for (name, value) in &sign_in.passed_on {
                if !added.contains(*name) {
                    query.append_pair(name, value);
                }
            }
        }
        Ok(url)
    }

    /// The scope `resource` becomes under [`ResourceRule::Scope`].
    fn resource_scope(&self, resource: &str) -> String {
        self.settings
            .resource_scopes
            .get(resource)
            .cloned()
            .unwrap_or_else(|| {
                self.settings
                    .profile
                    .resource_scope
                    .replace("{resource}", resource.trim_end_matches('/'))
            })
    }

    /// The `resource` a token request carries, under [`ResourceRule::Pass`].
    fn token_resource(&self, resource: Option<&str>) -> Option<(&'static str, String)> {
        (self.settings.profile.resource == ResourceRule::Pass)
            .then_some(resource)
            .flatten()
            .map(|resource| ("resource", resource.to_owned()))
    }

    /// Redeems the provider's `code` with the gateway's PKCE `verifier`,
    /// and checks the ID token against `nonce`.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        resource: Option<&str>,
        nonce: &str,
    ) -> Result<SignedIn, FrontError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ];
        form.extend(self.token_resource(resource));
        let tokens = self.token_call(form).await?;
        let id_token = tokens.text("id_token").ok_or_else(|| {
            FrontError::new(Code::ServerError, "the identity provider sent no ID token")
        })?;
        let identity = self.check_id_token(id_token, Some(nonce)).await?;
        Ok(SignedIn {
            tokens,
            identity,
            app_nonce: None,
        })
    }

    /// Refreshes with the provider's `refresh_token`, repeating `scope`
    /// where the provider asks for it. An ID token in the answer is
    /// checked too, and must name `subject`, the user of the sign-in
    /// (OpenID Connect Core §12.2).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scope: Option<&str>,
        resource: Option<&str>,
        subject: &str,
    ) -> Result<UpstreamTokens, FrontError> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.to_owned()),
        ];
        if let (true, Some(scope)) = (self.settings.profile.refresh_scope, scope) {
            form.push(("scope", scope.to_owned()));
        }
        form.extend(self.token_resource(resource));
        let tokens = self.token_call(form).await?;
        if let Some(id_token) = tokens.text("id_token") {
            // A token for someone else ends the grant; one that does not
            // check out (a key being rotated, say) is the provider's
            // trouble, and ends nothing.
            let named =
                self.check_id_token(id_token, None)
                    .await
                    .map_err(|error| match error.code {
                        Code::AccessDenied => FrontError::unavailable(&error.description),
                        _ => error,
                    })?;
            if named.subject != subject {
                tracing::warn!("broker: a refresh answered for another user; the grant ends");
                return Err(FrontError::invalid_grant(
                    "the identity provider answered for another user; sign in again",
                ));
            }
        }
        Ok(tokens)
    }

    /// Revokes `token` (a `hint`) at the provider, where it can (RFC 7009).
    pub async fn revoke(&self, token: &str, hint: &str) {
        let outcome = async {
            let upstream = self.upstream().await?;
            let Some(endpoint) = upstream.endpoints.revocation_endpoint.clone() else {
                return Ok(None);
            };
            let form = vec![
                ("token", token.to_owned()),
                ("token_type_hint", hint.to_owned()),
            ];
            let credentials = self.credentials(&upstream.endpoints.token_endpoint)?;
            post_form(
                &self.http,
                PROVIDER,
                Endpoint::Revocation,
                &endpoint,
                credentials,
                form,
            )
            .await
            .map(Some)
        };
        match outcome.await {
            Ok(Some(answer)) if !answer.status.is_success() => {
                tracing::warn!(status = %answer.status, "broker: the provider refused a revocation");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "broker: a revocation failed"),
        }
    }

    /// POSTs `form` to the provider's token endpoint as the operator's
    /// client: the tokens, or the provider's refusal as `invalid_grant`.
    async fn token_call(&self, form: Vec<(&str, String)>) -> Result<UpstreamTokens, FrontError> {
        let upstream = self.upstream().await?;
        let endpoint = &upstream.endpoints.token_endpoint;
        let credentials = self.credentials(endpoint)?;
        let answer = post_form(
            &self.http,
            PROVIDER,
            Endpoint::Token,
            endpoint,
            credentials,
            form,
        )
        .await?;
        read_tokens(&answer)
    }

    /// The operator's client credentials, for a call to `token_endpoint`.
    fn credentials(&self, token_endpoint: &str) -> Result<Credentials<'_>, FrontError> {
        let id = self.settings.client_id.as_str();
        Ok(match &self.settings.credential {
            UpstreamCredential::SecretBasic(secret) => Credentials::SecretBasic {
                id,
                secret: secret.expose(),
            },
            UpstreamCredential::SecretPost(secret) => Credentials::SecretPost {
                id,
                secret: secret.expose(),
            },
            UpstreamCredential::PrivateKeyJwt(key) => {
                let audience = match self.settings.profile.assertion_audience_is_issuer {
                    true => self.settings.issuer.as_str(),
                    false => token_endpoint,
                };
                Credentials::Assertion {
                    id,
                    assertion: assertion::sign(key, id, audience, self.clock.now_unix())?,
                }
            }
        })
    }

    /// Checks an ID token: signature, issuer, audience, lifetime, nonce;
    /// the subject it names.
    async fn check_id_token(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Identity, FrontError> {
        let upstream = self.upstream().await?;
        let check = IdTokenCheck {
            issuer: &self.settings.issuer,
            issuer_aliases: &self.settings.profile.issuer_aliases,
            audience: &self.settings.client_id,
            nonce,
            allowed_tenants: &self.settings.allowed_tenants,
            now: self.clock.now_unix(),
        };
        self.keys.check(&upstream.jwks_uri, token, &check).await
    }
}

/// The JSON document at `url` (`what` names it in errors): a provider
/// that cannot be reached, answers otherwise than 200, or sends no JSON
/// is `temporarily_unavailable`.
pub async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    what: &str,
) -> Result<T, FrontError> {
    let answer = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FrontError::unavailable(&crate::error_text::with_causes(&e)))?;
    if !answer.status().is_success() {
        return Err(FrontError::unavailable(&format!(
            "{what} at {url} answered {}",
            answer.status()
        )));
    }
    let body = crate::outbound::read_capped(answer, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|e| FrontError::unavailable(&e.to_string()))?;
    serde_json::from_slice(&body)
        .map_err(|e| FrontError::unavailable(&format!("{what} at {url}: {e}")))
}

/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 262_144;

/// The tokens of a successful answer. A refusal of the grant (`400
/// invalid_grant`) is `invalid_grant`, which ends the grant here too; any
/// other failure (the operator's client refused, a limit, a redirect) is
/// the provider's trouble, `temporarily_unavailable`, and ends nothing.
fn read_tokens(answer: &ProviderAnswer) -> Result<UpstreamTokens, FrontError> {
    let body: Option<Map<String, Value>> = serde_json::from_slice(&answer.body).ok();
    if answer.status.is_success() {
        return match body {
            Some(members) if members.get("access_token").is_some_and(Value::is_string) => {
                Ok(UpstreamTokens(members))
            }
            _ => Err(FrontError::new(
                Code::ServerError,
                "the identity provider's token answer holds no access token",
            )),
        };
    }
    let error = body
        .as_ref()
        .and_then(|b| b.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .chars()
        .take(64)
        .collect::<String>();
    if answer.status == reqwest::StatusCode::BAD_REQUEST && error == "invalid_grant" {
        tracing::warn!("broker: the provider refused a grant (invalid_grant)");
        return Err(FrontError::invalid_grant(
            "the identity provider refused the grant; sign in again",
        ));
    }
    Err(FrontError::unavailable(&format!(
        "the provider's token endpoint answered {} ({})",
        answer.status,
        error.escape_debug()
    )))
}
