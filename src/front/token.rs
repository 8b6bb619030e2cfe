//! `POST /token`: authenticates the client to the gateway, then redeems a
//! gateway code once (checking client, redirect URI and PKCE verifier
//! before the provider is called) or forwards a refresh token, and answers
//! with the provider's token response unchanged.
//!
//! Client authentication: `none` (public clients send `client_id` only),
//! and `client_secret_basic` / `client_secret_post`, checked against the
//! digest the gateway keeps and sent on to the provider, which holds the
//! same secret, by the method the client registered. Methods the gateway
//! cannot verify (JWT assertions, mutual TLS) are refused.

use std::net::IpAddr;

use axum::http::{HeaderValue, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::authorize::s256;
use super::error::{Code, FrontError};
use super::transactions::FrontSecret;
use super::{Front, Params, callback_uri};
use crate::clock::seconds;
use crate::domain::values::AuthMethod;
use crate::error_text::with_causes;
use crate::provider::urlencode;
use crate::store::front::CodePhase;

/// Largest provider token answer passed on.
const MAX_ANSWER_BYTES: usize = 65_536;

/// The provider's answer, passed on unchanged. `Debug` leaves out the
/// body, which holds tokens.
pub struct ProviderAnswer {
    /// Its status.
    pub status: StatusCode,
    /// Its `Content-Type`.
    pub content_type: Option<HeaderValue>,
    /// Its body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ProviderAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderAnswer")
            .field("status", &self.status)
            .field(
                "body",
                &format_args!("[{} bytes, redacted]", self.body.len()),
            )
            .finish_non_exhaustive()
    }
}

/// How the client authenticated, and so how the gateway authenticates it
/// at the provider.
enum ClientAuth {
    /// A public client: `client_id` in the form.
    Public(String),
    /// A confidential client with its secret, sent by its registered method.
    Secret {
        id: String,
        secret: String,
        method: AuthMethod,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Public(id) => write!(f, "Public({id})"),
            Self::Secret { id, method, .. } => write!(f, "Secret({id}, {method}, [redacted])"),
        }
    }
}

/// What a redemption issued, sealed under the code so that a replay can
/// revoke it.
#[derive(Serialize, Deserialize)]
struct Issued {
    access_token: Option<String>,
    refresh_token: Option<String>,
}

impl Front {
    /// Handles `/token` for the caller at `ip`, with the `Authorization`
    /// header, if any, and the form body.
    pub async fn token(
        &self,
        ip: IpAddr,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<ProviderAnswer, FrontError> {
        Self::limit(self.token_limit.as_ref(), "token", ip)?;
        let params = Params::parse(body)?;
        let (app_id, auth) = self.authenticate(authorization, &params).await?;
        match params.require("grant_type")? {
            "authorization_code" => self.redeem(&app_id, &auth, &params).await,
            "refresh_token" => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", params.require("refresh_token")?.to_owned()),
                ];
                for name in ["scope", "resource"] {
                    if let Some(value) = params.get(name) {
                        form.push((name, value.to_owned()));
                    }
                }
                let provider = self.endpoints().await?;
                self.call_provider(&provider.token_endpoint, &auth, form)
                    .await
            }
            _ => Err(FrontError::new(
                Code::UnsupportedGrantType,
                "only authorization_code and refresh_token are supported",
            )),
        }
    }

    /// The client id the app used, and how the gateway authenticates that
    /// client at the provider; or `invalid_client`.
    async fn authenticate(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<(String, ClientAuth), FrontError> {
        if params.get("client_assertion").is_some() {
            return Err(FrontError::new(
                Code::InvalidClient,
                "the gateway cannot verify client assertions",
            ));
        }
        let basic = authorization.map(basic_credentials).transpose()?;
        let (id, secret) = match (basic, params.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(FrontError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            (Some((id, secret)), None) => {
                if params.get("client_id").is_some_and(|sent| sent != id) {
                    return Err(FrontError::invalid_request(
                        "client_id differs from the authenticated client",
                    ));
                }
                (id, Some(secret))
            }
            (None, secret) => (
                params.require("client_id")?.to_owned(),
                secret.map(str::to_owned),
            ),
        };
        let failed = || FrontError::new(Code::InvalidClient, "client authentication failed");
        let client = self.client(&id).await?.ok_or_else(failed)?;
        let expires = client.client_secret_expires_at;
        if secret.is_some() && expires != 0 && expires <= self.now() {
            return Err(FrontError::new(
                Code::InvalidClient,
                "the client secret has expired; renew it through the registration",
            ));
        }
        let method = client.metadata.token_endpoint_auth_method;
        let provider_id = client.client_id.to_string();
        let auth = match (method, secret) {
            (AuthMethod::None, None) => ClientAuth::Public(provider_id),
            (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, Some(secret))
                if client
                    .client_secret
                    .as_ref()
                    .is_some_and(|hash| hash.matches(&secret)) =>
            {
                ClientAuth::Secret {
                    id: provider_id,
                    secret,
                    method,
                }
            }
            (
                AuthMethod::None | AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost,
                _,
            ) => {
                return Err(failed());
            }
            (other, _) => {
                return Err(FrontError::new(
                    Code::InvalidClient,
                    format!("the gateway cannot verify {other} client authentication"),
                ));
            }
        };
        Ok((id, auth))
    }

    /// Redeems a gateway code for the app's client `app_id`, once, and
    /// exchanges the provider's code.
    async fn redeem(
        &self,
        app_id: &str,
        auth: &ClientAuth,
        params: &Params,
    ) -> Result<ProviderAnswer, FrontError> {
        let code = FrontSecret::presented(params.require("code")?);
        let hash = code.hash();
        let now = self.now();
        let unknown = || FrontError::invalid_grant("the code is unknown, expired or already used");
        let stored = self.transactions.code(&hash).await?.ok_or_else(unknown)?;
        let transaction = &stored.transaction;
        if transaction.client_id != app_id {
            return Err(FrontError::invalid_grant(
                "the code was not issued to this client",
            ));
        }
        if stored.phase == CodePhase::Redeemed {
            tracing::warn!(client_id = %transaction.client_id, "front: a gateway code was replayed");
            if let Some(sealed) = self.transactions.mark_replayed(&hash).await? {
                self.revoke_issued(auth, &code, &sealed).await;
            }
            return Err(unknown());
        }
        if transaction.expires_at <= now {
            return Err(unknown());
        }
        if params.get("redirect_uri") != Some(transaction.redirect_uri.as_str()) {
            return Err(FrontError::invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        // RFC 8707 §2.2: the resource of the grant is the one bound at
        // /authorize; another one here is refused, none means that one.
        if params
            .get("resource")
            .is_some_and(|sent| transaction.resource.as_deref() != Some(sent))
        {
            return Err(FrontError::new(
                Code::InvalidTarget,
                "resource differs from the one the authorization was granted for",
            ));
        }
        let verifier = params.require("code_verifier")?;
        let matches: bool = s256(verifier)
            .as_bytes()
            .ct_eq(transaction.code_challenge.as_bytes())
            .into();
        if !is_verifier(verifier) || !matches {
            return Err(FrontError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let sealed = stored.sealed.as_deref().unwrap_or_default();
        let provider_code = String::from_utf8(code.open(sealed)?)
            .map_err(|e| FrontError::internal(&e.to_string()))?;
        let keep_until = now.saturating_add(seconds(self.settings.transaction_ttl));
        if !self.transactions.redeem(&hash, now, keep_until).await? {
            return Err(unknown());
        }
        let provider = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", provider_code),
            ("redirect_uri", callback_uri(&self.issuer)),
            ("code_verifier", verifier.to_owned()),
        ];
        if let Some(resource) = &transaction.resource {
            form.push(("resource", resource.clone()));
        }
        let answer = self
            .call_provider(&provider.token_endpoint, auth, form)
            .await?;
        if answer.status.is_success() {
            let sealed = self.record_issued(&code, &answer.body).await;
            if let Some(sealed) = sealed.filter(|(_, replayed)| *replayed) {
                // The code was replayed while the provider answered: what
                // it issued is revoked, and handed to no one.
                self.revoke_issued(auth, &code, &sealed.0).await;
                return Err(unknown());
            }
        }
        Ok(answer)
    }

    /// Keeps the tokens a redemption issued, sealed under its code: what
    /// was kept, and whether the code was replayed meanwhile.
    async fn record_issued(&self, code: &FrontSecret, body: &[u8]) -> Option<(Vec<u8>, bool)> {
        let issued = serde_json::from_slice::<Issued>(body).ok()?;
        let kept = match serde_json::to_vec(&issued) {
            Ok(plain) => match code.seal(&plain) {
                Ok(sealed) => self
                    .transactions
                    .record_tokens(&code.hash(), &sealed)
                    .await
                    .map(|replayed| (sealed, replayed)),
                Err(error) => Err(error),
            },
            Err(error) => Err(crate::store::StoreError::Write(error.to_string())),
        };
        kept.inspect_err(|error| {
            tracing::warn!(%error, "front: tokens of a redemption not kept for revocation");
        })
        .ok()
    }

    /// Revokes, where the provider can, what the first redemption of a
    /// replayed code issued (RFC 6749 §4.1.2), `sealed` under the code.
    async fn revoke_issued(&self, auth: &ClientAuth, code: &FrontSecret, sealed: &[u8]) {
        let Some(issued) = code
            .open(sealed)
            .ok()
            .and_then(|plain| serde_json::from_slice::<Issued>(&plain).ok())
        else {
            return;
        };
        let Ok(provider) = self.endpoints().await else {
            return;
        };
        let Some(endpoint) = &provider.revocation_endpoint else {
            return;
        };
        let tokens = [
            ("refresh_token", issued.refresh_token),
            ("access_token", issued.access_token),
        ];
        for (hint, token) in tokens {
            let Some(token) = token else { continue };
            let form = vec![("token", token), ("token_type_hint", hint.to_owned())];
            match self.call_provider(endpoint, auth, form).await {
                Ok(answer) if answer.status.is_success() => {}
                Ok(answer) => tracing::warn!(status = %answer.status, "front: revocation refused"),
                Err(error) => tracing::warn!(%error, "front: revocation failed"),
            }
        }
    }

    /// POSTs `form` to the provider's `url` with the client's credentials.
    async fn call_provider(
        &self,
        url: &str,
        auth: &ClientAuth,
        mut form: Vec<(&str, String)>,
    ) -> Result<ProviderAnswer, FrontError> {
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json");
        match auth {
            ClientAuth::Public(id) => form.push(("client_id", id.clone())),
            ClientAuth::Secret {
                id,
                secret,
                method: AuthMethod::ClientSecretPost,
            } => {
                form.push(("client_id", id.clone()));
                form.push(("client_secret", secret.clone()));
            }
            ClientAuth::Secret { id, secret, .. } => {
                // RFC 6749 §2.3.1: each part form-encoded before Basic.
                let pair = format!("{}:{}", urlencode(id), urlencode(secret));
                let value = format!("Basic {}", STANDARD.encode(pair));
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| FrontError::unavailable(&with_causes(&e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(FrontError::unavailable(&format!(
                "the provider's token endpoint answered {status}"
            )));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .cloned();
        let body = crate::outbound::read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| FrontError::unavailable(&e.to_string()))?;
        Ok(ProviderAnswer {
            status,
            content_type,
            body,
        })
    }
}

/// The client id and secret of an `Authorization: Basic` header.
fn basic_credentials(header: &str) -> Result<(String, String), FrontError> {
    let bad = || FrontError::new(Code::InvalidClient, "malformed Basic credentials");
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(bad)?;
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Ok((decode(id), decode(secret)))
}

/// Whether `verifier` is a PKCE code verifier: 43 to 128 unreserved
/// characters (RFC 7636 §4.1).
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("a%3Ab:s%2Bc"));
        let (id, secret) = basic_credentials(&header).unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("a:b", "s+c"));
        assert!(basic_credentials("Bearer x").is_err());
        assert!(basic_credentials("Basic !!!").is_err());
    }

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        assert!(is_verifier(&"a".repeat(43)));
        assert!(!is_verifier(&"a".repeat(42)));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+", "a".repeat(43))));
    }
}
