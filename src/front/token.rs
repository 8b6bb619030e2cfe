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
//!
//! In broker mode the provider is not called at redemption: the code
//! stands for the tokens it already gave at `/callback`, and refresh
//! tokens are the gateway's own ([`super::refresh`]).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::authorize::s256;
use super::broker::SignedIn;
use super::client_assertion::JWT_BEARER;
use super::error::{Code, FrontError};
use super::provider_call::{Credentials, Endpoint, ProviderAnswer, post_form};
use super::transactions::FrontSecret;
use super::{Front, Params, callback_uri};
use crate::clock::seconds;
use crate::domain::values::AuthMethod;
use crate::store::front::CodePhase;

/// How the client authenticated, and so how the gateway authenticates it
/// at the provider (but for broker mode's own client).
pub(super) enum ClientAuth {
    /// A public client: `client_id` in the form.
    Public(String),
    /// A client whose assertion the gateway verified itself (broker mode,
    /// where the provider is called as the operator's client, never as
    /// this one).
    Verified(String),
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
            Self::Verified(id) => write!(f, "Verified({id})"),
            Self::Secret { id, method, .. } => write!(f, "Secret({id}, {method}, [redacted])"),
        }
    }
}

impl ClientAuth {
    /// Whether the client is a public one, which proved nothing.
    pub(super) fn is_public(&self) -> bool {
        matches!(self, Self::Public(_))
    }

    /// The client's id at the provider.
    fn provider_id(&self) -> &str {
        match self {
            Self::Public(id) | Self::Verified(id) | Self::Secret { id, .. } => id,
        }
    }

    /// The credentials the provider is sent for this client.
    fn credentials(&self) -> Credentials<'_> {
        match self {
            Self::Public(id) | Self::Verified(id) => Credentials::ClientId(id),
            Self::Secret {
                id,
                secret,
                method: AuthMethod::ClientSecretPost,
            } => Credentials::SecretPost { id, secret },
            Self::Secret { id, secret, .. } => Credentials::SecretBasic { id, secret },
        }
    }
}

/// What a redemption issued, sealed under the code so that a replay can
/// revoke it: the provider's tokens, and in broker mode the family of the
/// gateway's refresh tokens.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct Issued {
    pub(super) access_token: Option<String>,
    pub(super) refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) family: Option<String>,
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
            "refresh_token" if self.broker.is_some() || self.tokens.is_some() => {
                self.refresh(&app_id, &auth, params.require("refresh_token")?, &params)
                    .await
            }
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
                self.call_provider(Endpoint::Token, &provider.token_endpoint, &auth, form)
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
    pub(super) async fn authenticate(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<(String, ClientAuth), FrontError> {
        if let Some(assertion) = params.get("client_assertion") {
            return self
                .assertion_authenticates(authorization, params, assertion)
                .await;
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
        self.registrations.usage().used(client.client_id.as_str());
        Ok((id, auth))
    }

    /// The client a `private_key_jwt` assertion authenticates (broker mode
    /// only: elsewhere the provider holds the client and would need the
    /// client's own assertion, made out to it).
    async fn assertion_authenticates(
        &self,
        authorization: Option<&str>,
        params: &Params,
        assertion: &str,
    ) -> Result<(String, ClientAuth), FrontError> {
        if self.broker.is_none() {
            return Err(FrontError::new(
                Code::InvalidClient,
                "the gateway verifies client assertions in broker mode only",
            ));
        }
        if authorization.is_some() || params.get("client_secret").is_some() {
            return Err(FrontError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        if params.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(FrontError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let failed = || FrontError::new(Code::InvalidClient, "client authentication failed");
        let id = match params.get("client_id") {
            Some(id) => id.to_owned(),
            None => claimed_issuer(assertion).ok_or_else(failed)?,
        };
        let client = self.client(&id).await?.ok_or_else(failed)?;
        if client.metadata.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
            return Err(failed());
        }
        self.assertions
            .verify(&id, &client, assertion, self.now())
            .await?;
        self.registrations.usage().used(client.client_id.as_str());
        Ok((id.clone(), ClientAuth::Verified(id)))
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
        let payload = code.open(sealed)?;
        let keep_until = now.saturating_add(seconds(self.settings.transaction_ttl));
        if !self.transactions.redeem(&hash, now, keep_until).await? {
            return Err(unknown());
        }
        if self.broker.is_some() {
            let signed_in: SignedIn = serde_json::from_slice(&payload)
                .map_err(|e| FrontError::internal(&format!("sealed tokens: {e}")))?;
            let (answer, issued) = self.first_tokens(transaction, signed_in).await?;
            return self.kept_for_replays(auth, &code, answer, &issued).await;
        }
        let provider_code =
            String::from_utf8(payload).map_err(|e| FrontError::internal(&e.to_string()))?;
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
            .call_provider(Endpoint::Token, &provider.token_endpoint, auth, form)
            .await?;
        if self.tokens.is_some() && answer.status.is_success() {
            let signed_in = self.identified(auth.provider_id(), &answer).await?;
            let (answer, issued) = self.first_tokens(transaction, signed_in).await?;
            return self.kept_for_replays(auth, &code, answer, &issued).await;
        }
        match serde_json::from_slice::<Issued>(&answer.body) {
            Ok(issued) if answer.status.is_success() => {
                self.kept_for_replays(auth, &code, answer, &issued).await
            }
            _ => Ok(answer),
        }
    }

    /// Keeps what a redemption `issued`, sealed under its code, and passes
    /// `answer` on; unless the code was replayed while the provider
    /// answered: then what it issued is revoked, and handed to no one.
    async fn kept_for_replays(
        &self,
        auth: &ClientAuth,
        code: &FrontSecret,
        answer: ProviderAnswer,
        issued: &Issued,
    ) -> Result<ProviderAnswer, FrontError> {
        if let Some((sealed, true)) = self.record_issued(code, issued).await {
            self.revoke_issued(auth, code, &sealed).await;
            return Err(FrontError::invalid_grant(
                "the code is unknown, expired or already used",
            ));
        }
        Ok(answer)
    }

    /// Keeps the tokens a redemption issued, sealed under its code: what
    /// was kept, and whether the code was replayed meanwhile.
    async fn record_issued(&self, code: &FrontSecret, issued: &Issued) -> Option<(Vec<u8>, bool)> {
        let kept = match serde_json::to_vec(issued) {
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
        if let Some(family) = &issued.family {
            self.revoke_family(family, auth).await;
        }
        if let Some(broker) = &self.broker {
            if let Some(token) = &issued.access_token {
                broker.revoke(token, "access_token").await;
            }
            return;
        }
        let tokens = [
            ("refresh_token", issued.refresh_token),
            ("access_token", issued.access_token),
        ];
        for (hint, token) in tokens {
            if let Some(token) = token {
                self.revoke_at_provider(auth, token, hint).await;
            }
        }
    }

    /// Revokes `token` (of the kind `hint` names) at the provider's
    /// revocation endpoint, if it has one, as the client `auth`; a failure
    /// is logged, the caller's answer does not change.
    pub(super) async fn revoke_at_provider(&self, auth: &ClientAuth, token: String, hint: &str) {
        let Ok(provider) = self.endpoints().await else {
            return;
        };
        let Some(endpoint) = &provider.revocation_endpoint else {
            return;
        };
        let form = vec![("token", token), ("token_type_hint", hint.to_owned())];
        match self
            .call_provider(Endpoint::Revocation, endpoint, auth, form)
            .await
        {
            Ok(answer) if answer.status.is_success() => {}
            Ok(answer) => tracing::warn!(status = %answer.status, "front: revocation refused"),
            Err(error) => tracing::warn!(%error, "front: revocation failed"),
        }
    }
}

impl Front {
    /// POSTs `form` to the provider's `url`, its `endpoint`, with the
    /// client's credentials.
    pub(super) async fn call_provider(
        &self,
        endpoint: Endpoint,
        url: &str,
        auth: &ClientAuth,
        form: Vec<(&str, String)>,
    ) -> Result<ProviderAnswer, FrontError> {
        let provider = self.registrations.provider_name();
        post_form(
            &self.http,
            provider,
            endpoint,
            url,
            auth.credentials(),
            form,
        )
        .await
    }
}

/// The `iss` an assertion claims (not yet verified): whom to look up.
fn claimed_issuer(assertion: &str) -> Option<String> {
    let claims = crate::jwt::unverified_claims(assertion).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The client id and secret of an `Authorization: Basic` header.
pub(super) fn basic_credentials(header: &str) -> Result<(String, String), FrontError> {
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
