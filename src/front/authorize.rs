//! `GET /authorize`: checks the client and its redirect URI (failures
//! before that are pages, never redirects), then PKCE and the request,
//! opens a transaction and sends the user to the provider with the
//! provider's client id, the app's challenge and the gateway's callback.
//!
//! Nothing is stored: the login travels sealed in the state sent to the
//! provider ([`super::transactions`]), so however many logins are started
//! and abandoned, they take no room.
//!
//! For a client of a metadata document, when the operator asks for it, the
//! user first sees the gateway's consent page; its form (`POST /consent`)
//! carries the sealed login and must come from the browser the page was
//! shown to (its cookie, [`super::browser`]), whose digest the login
//! carries to `/callback` too. Only then is the user sent to the provider:
//! no link anyone can forward leads there.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::{Host, Url};

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::broker::{Broker, SignIn};
use super::consent::ConsentPage;
use super::error::{Code, FrontError};
use super::identified::with_openid;
use super::remembered::consent_key;
use super::transactions::FrontSecret;
use super::transactions::{Leg, Login, UpstreamLeg};
use super::{Front, Params, callback_uri};
use crate::audit::{self, AuditEvent};
use crate::clock::seconds;
use crate::domain::metadata::is_scope_token;
use crate::domain::uri::is_loopback_url;
use crate::domain::values::GrantType;
use crate::domain::{RegisteredClient, RegisteredUri};
use crate::store::front::Transaction;

/// OpenID Connect request parameters passed on to the provider as sent.
const PASSED_ON: [&str; 6] = [
    "nonce",
    "prompt",
    "login_hint",
    "max_age",
    "ui_locales",
    "acr_values",
];

/// Where `/authorize` sends the user next.
#[derive(Debug)]
pub enum Next {
    /// A redirect: to the provider, or back to the app with an error.
    Redirect(String),
    /// The gateway's consent page, whose form leads on to the provider.
    Consent {
        /// The page.
        page: ConsentPage,
        /// The cookie that binds the transaction to this browser, when the
        /// browser had none yet (a `Set-Cookie` value).
        set_cookie: Option<String>,
    },
}

/// Where the consent form sends the browser, and the cookie that
/// remembers the consent, if the user gave it.
#[derive(Debug)]
pub struct Consented {
    /// The provider, or the app with `access_denied`.
    pub location: String,
    /// A `Set-Cookie` value remembering the consent.
    pub set_cookie: Option<String>,
}

/// Where the app is sent back: its redirect URI as it sent it, its `state`,
/// and the gateway as `iss` (RFC 9207).
#[derive(Debug)]
pub struct AppRedirect<'a> {
    uri: Url,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl<'a> AppRedirect<'a> {
    /// The redirect to `uri` (validated before), for a request with `state`.
    pub fn new(uri: &str, state: Option<&'a str>, issuer: &'a str) -> Result<Self, FrontError> {
        let uri = Url::parse(uri).map_err(|e| FrontError::internal(&e.to_string()))?;
        Ok(Self { uri, state, issuer })
    }

    /// The app's redirect URI with `params`, `state` and `iss` added.
    fn with(&self, params: &[(&str, &str)]) -> String {
        let mut uri = self.uri.clone();
        {
            let mut query = uri.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer);
        }
        uri.into()
    }

    /// The host the app's redirect URI names.
    #[must_use]
    pub fn host(&self) -> &str {
        self.uri.host_str().unwrap_or_default()
    }

    /// The success answer: a gateway code.
    #[must_use]
    pub fn code(&self, code: &FrontSecret) -> String {
        self.with(&[("code", code.expose())])
    }

    /// An error answer (RFC 6749 §4.1.2.1).
    #[must_use]
    pub fn error(&self, error: &FrontError) -> String {
        self.with(&[
            ("error", error.code.as_str()),
            ("error_description", &error.description),
        ])
    }
}

impl Front {
    /// Handles `/authorize` for the caller at `ip`, whose browser sent
    /// `cookies`: where the user goes next (the provider, the app with an
    /// error, or the gateway's consent page), or a failure to show as a
    /// page.
    pub async fn authorize(
        &self,
        ip: IpAddr,
        query: &[u8],
        cookies: &HeaderMap,
    ) -> Result<Next, FrontError> {
        Self::limit(self.authorize_limit.as_ref(), "authorize", ip)?;
        let params = Params::parse(query)?;
        let client_id = params.require("client_id")?;
        let client = self
            .client(client_id)
            .await?
            .ok_or_else(|| FrontError::invalid_request("no such client is registered"))?;
        self.registrations.usage().used(client.client_id.as_str());
        let redirect_uri = params.require("redirect_uri")?;
        let localhost = self.settings.localhost_any_port;
        if !client
            .metadata
            .redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, redirect_uri, localhost))
        {
            return Err(FrontError::invalid_request(
                "redirect_uri is not one this client registered",
            ));
        }
        let back = AppRedirect::new(redirect_uri, params.get("state"), &self.issuer)?;
        let request = Request {
            client_id,
            client: &client,
            redirect_uri,
            params: &params,
        };
        match self.open(&request, &back, cookies).await {
            Ok(next) => Ok(next),
            Err(error) => Ok(Next::Redirect(back.error(&error))),
        }
    }

    /// Checks the rest of the request and starts its login: sealed into the
    /// state sent to the provider, or into the consent page's form token
    /// when the user must consent (in broker mode, or for a client of a
    /// metadata document when the operator asks for it) and has not
    /// consented to this client lately. Nothing is stored.
    async fn open(
        &self,
        request: &Request<'_>,
        back: &AppRedirect<'_>,
        cookies: &HeaderMap,
    ) -> Result<Next, FrontError> {
        let checked = checked_request(request.client, request.params)?;
        if self.tokens.is_some() && checked.resource.is_none() {
            return Err(FrontError::new(
                Code::InvalidTarget,
                "resource is required: the gateway's access tokens are made out to one \
                 resource (RFC 8707)",
            ));
        }
        if let Some(resource) = checked.resource
            && !self.settings.allowed_resources.allows(resource)
        {
            return Err(FrontError::new(
                Code::InvalidTarget,
                "resource is not one the operator allows tokens for",
            ));
        }
        if self.broker.is_some() {
            within_registered_scope(request.client, checked.scope)?;
        }
        if checked.scope.is_none() && self.scope_required {
            return Err(FrontError::new(
                Code::InvalidScope,
                "scope is required: send one, or register the client with one",
            ));
        }
        let upstream = self.broker.as_ref().map(|_| UpstreamLeg::generate());
        // The app's nonce goes into the gateway's own ID token (broker
        // mode); elsewhere it is passed on to the provider.
        let app_nonce = self
            .broker
            .as_ref()
            .and(request.params.get("nonce"))
            .map(str::to_owned);
        let provider_url = match (&self.broker, &upstream) {
            (Some(broker), Some(leg)) => self.brokered_url(broker, request, &checked, leg).await?,
            _ => self.provider_url(request, &checked).await?,
        };
        let transaction = Transaction {
            client_id: request.client_id.to_owned(),
            redirect_uri: request.redirect_uri.to_owned(),
            app_state: request.params.get("state").map(str::to_owned),
            code_challenge: checked.code_challenge.to_owned(),
            scope: checked.scope.map(str::to_owned),
            resource: checked.resource.map(str::to_owned),
            expires_at: self
                .now()
                .saturating_add(seconds(self.settings.transaction_ttl)),
        };
        let document = self
            .documents
            .as_ref()
            .is_some_and(|d| d.names_document(request.client_id));
        let asks_consent = self.broker.is_some()
            || (document && self.documents.as_ref().is_some_and(|d| d.consent_page()));
        let browser = self.browser_cookie.presented(cookies);
        let consented = asks_consent
            && browser.is_some()
            && self
                .remembered
                .covers(cookies, &consent_key(&transaction), self.now());
        if !asks_consent || consented {
            // A consent remembered by this browser counts only in it: the
            // login is bound to it as after the page, so the provider link
            // cannot be forwarded to anyone else.
            let login = Login {
                browser: browser.filter(|_| consented).map(|b| b.hash()),
                transaction,
                provider_url: None,
                upstream,
                app_nonce,
            };
            let state = self.logins.seal(Leg::Provider, &login)?;
            return Ok(Next::Redirect(with_state(provider_url, &state)));
        }
        let set_cookie = browser.is_none();
        let browser = browser.unwrap_or_else(FrontSecret::generate);
        let login = Login {
            transaction,
            browser: Some(browser.hash()),
            provider_url: Some(provider_url.into()),
            upstream,
            app_nonce,
        };
        Ok(Next::Consent {
            page: ConsentPage {
                client_name: request.client.metadata.client_name.plain.clone(),
                client_id: request.client_id.to_owned(),
                document,
                scope: login.transaction.scope.clone(),
                resource: login.transaction.resource.clone(),
                redirect_host: back.host().to_owned(),
                form_token: self.logins.seal(Leg::Consent, &login)?,
                action: self.endpoint("/consent"),
            },
            set_cookie: set_cookie.then(|| self.browser_cookie.set(&browser)),
        })
    }

    /// The provider's authorization URL for `request`, without its `state`:
    /// the provider's client id, the app's challenge, the gateway's
    /// callback.
    async fn provider_url(
        &self,
        request: &Request<'_>,
        checked: &Checked<'_>,
    ) -> Result<Url, FrontError> {
        let provider = self.endpoints().await?;
        let mut location = Url::parse(&provider.authorization_endpoint)
            .map_err(|e| FrontError::internal(&format!("authorization_endpoint: {e}")))?;
        {
            let mut query = location.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", request.client.client_id.as_str())
                .append_pair("redirect_uri", &callback_uri(&self.issuer))
                .append_pair("code_challenge", checked.code_challenge)
                .append_pair("code_challenge_method", "S256");
            // The gateway's own tokens name the user its ID token names.
            let scope = match self.tokens {
                Some(_) => Some(with_openid(checked.scope)),
                None => checked.scope.map(str::to_owned),
            };
            for (name, value) in [("scope", scope.as_deref()), ("resource", checked.resource)] {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
            for name in PASSED_ON {
                if let Some(value) = request.params.get(name) {
                    query.append_pair(name, value);
                }
            }
        }
        Ok(location)
    }

    /// The provider's authorization URL in broker mode, without its
    /// `state`: the operator's client, the gateway's challenge and nonce,
    /// the app's scope and resource as the provider wants them.
    async fn brokered_url(
        &self,
        broker: &Broker,
        request: &Request<'_>,
        checked: &Checked<'_>,
        leg: &UpstreamLeg,
    ) -> Result<Url, FrontError> {
        let upstream = broker.upstream().await?;
        let challenge = s256(&leg.verifier);
        let redirect_uri = callback_uri(&self.issuer);
        let passed_on = PASSED_ON
            .iter()
            .filter(|name| **name != "nonce")
            .filter_map(|name| request.params.get(name).map(|value| (*name, value)))
            .collect();
        broker.authorization_url(
            &upstream,
            &SignIn {
                scope: checked.scope,
                resource: checked.resource,
                challenge: &challenge,
                nonce: &leg.nonce,
                redirect_uri: &redirect_uri,
                passed_on,
            },
        )
    }

    /// Handles the consent page's form, posted by the caller at `ip` with
    /// the `Origin` it sent and the browser's `cookies`: on to the provider
    /// (remembering the consent) when the user agreed, back to the app with
    /// `access_denied` when they declined, or a failure to show as a page.
    pub async fn consent(
        &self,
        ip: IpAddr,
        origin: Option<&str>,
        form: &[u8],
        cookies: &HeaderMap,
    ) -> Result<Consented, FrontError> {
        Self::limit(self.authorize_limit.as_ref(), "authorize", ip)?;
        if origin.is_some_and(|origin| origin != self.origin) {
            return Err(FrontError::invalid_request(
                "the consent form was posted from another site",
            ));
        }
        let params = Params::parse(form)?;
        let login = self
            .logins
            .open(Leg::Consent, params.require("consent")?, self.now())?;
        let browser = self.browser_cookie.presented(cookies).ok_or_else(|| {
            FrontError::invalid_request(
                "this browser did not open the consent page (or refuses its cookie); start again",
            )
        })?;
        if login.browser.as_ref() != Some(&browser.hash()) {
            return Err(FrontError::invalid_request(
                "this consent page was opened in another browser; start again",
            ));
        }
        let client_id = login.transaction.client_id.clone();
        let (action, location, set_cookie) = match params.require("decision")? {
            "allow" => {
                let provider_url = login.provider_url.as_deref().unwrap_or_default();
                let provider_url = Url::parse(provider_url)
                    .map_err(|e| FrontError::internal(&format!("sealed provider URL: {e}")))?;
                let state = self.logins.seal(Leg::Provider, &login)?;
                let key = consent_key(&login.transaction);
                let remember = self.remembered.adding(cookies, &key, self.now())?;
                ("consent_given", with_state(provider_url, &state), remember)
            }
            "deny" => {
                let declined = FrontError::new(Code::AccessDenied, "the user declined");
                let location = self.back_to(&login.transaction)?.error(&declined);
                ("consent_refused", location, None)
            }
            _ => {
                return Err(FrontError::invalid_request(
                    "decision must be allow or deny",
                ));
            }
        };
        metrics::counter!("dcr_front_consents_total", "decision" => action).increment(1);
        audit::record(&AuditEvent {
            action,
            outcome: "success",
            client_id: Some(&client_id),
            ip: Some(ip),
            ..AuditEvent::default()
        });
        Ok(Consented {
            location,
            set_cookie,
        })
    }
}

/// An authorization request whose client and redirect URI were checked.
struct Request<'a> {
    client_id: &'a str,
    client: &'a RegisteredClient,
    redirect_uri: &'a str,
    params: &'a Params,
}

/// `location` with the provider-side `state` added.
fn with_state(mut location: Url, state: &str) -> String {
    location.query_pairs_mut().append_pair("state", state);
    location.into()
}

/// The parts of an authorization request the front checks and keeps.
struct Checked<'a> {
    code_challenge: &'a str,
    scope: Option<&'a str>,
    resource: Option<&'a str>,
}

/// Refuses what the front does not serve: another response type, a client
/// without the code grant, a missing or `plain` PKCE challenge, scope text
/// that is not scope tokens, a resource that is not an absolute URI. The
/// scope of a request without one is the client's registered scope.
fn checked_request<'a>(
    client: &'a RegisteredClient,
    params: &'a Params,
) -> Result<Checked<'a>, FrontError> {
    if params.get("response_type") != Some("code") {
        return Err(FrontError::new(
            Code::UnsupportedResponseType,
            "only response_type=code is supported",
        ));
    }
    if !client
        .metadata
        .grant_types
        .contains(&GrantType::AuthorizationCode)
    {
        return Err(FrontError::new(
            Code::UnauthorizedClient,
            "the client did not register the authorization_code grant",
        ));
    }
    let code_challenge = params.get("code_challenge").ok_or_else(|| {
        FrontError::invalid_request("PKCE is required: send code_challenge (S256)")
    })?;
    if params.get("code_challenge_method") != Some("S256") {
        return Err(FrontError::invalid_request(
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if !is_s256_value(code_challenge) {
        return Err(FrontError::invalid_request(
            "code_challenge must be an S256 value: 43 base64url characters",
        ));
    }
    // RFC 6749 §3.3: a request without scope gets the client's registered
    // one (some providers, Okta among them, require a scope).
    let scope = params.get("scope").or(client.metadata.scope.as_deref());
    if scope.is_some_and(|scope| !scope.split(' ').all(is_scope_token)) {
        return Err(FrontError::new(
            Code::InvalidScope,
            "scope must be scope tokens separated by single spaces",
        ));
    }
    let resource = params.get("resource");
    if resource.is_some_and(|r| Url::parse(r).map_or(true, |url| url.fragment().is_some())) {
        return Err(FrontError::invalid_request(
            "resource must be an absolute URI without a fragment",
        ));
    }
    Ok(Checked {
        code_challenge,
        scope,
        resource,
    })
}

/// Refuses (`invalid_scope`) a scope beyond the one the client registered,
/// if it registered one. In broker mode the provider only knows the
/// operator's client, so the gateway holds each app to its own scope.
fn within_registered_scope(
    client: &RegisteredClient,
    scope: Option<&str>,
) -> Result<(), FrontError> {
    let (Some(registered), Some(asked)) = (client.metadata.scope.as_deref(), scope) else {
        return Ok(());
    };
    let registered: Vec<&str> = registered.split(' ').collect();
    match asked.split(' ').find(|token| !registered.contains(token)) {
        None => Ok(()),
        Some(beyond) => Err(FrontError::new(
            Code::InvalidScope,
            format!(
                "the scope `{}` is not one the client registered",
                beyond.escape_debug()
            ),
        )),
    }
}

/// Whether `value` has the form of an S256 challenge: the base64url (no
/// padding) of 32 bytes.
fn is_s256_value(value: &str) -> bool {
    value.len() == 43
        && URL_SAFE_NO_PAD
            .decode(value)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
#[must_use]
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `presented` is the registered redirect URI: the same text, or,
/// for an `http` loopback IP literal (and `localhost` when `localhost` is
/// set), the same URI on another port (RFC 8252 §7.3). A URI matched on
/// its port must be written in its normal form.
#[must_use]
pub fn redirect_matches(registered: &RegisteredUri, presented: &str, localhost: bool) -> bool {
    if registered.as_str() == presented {
        return true;
    }
    let Ok(mut url) = Url::parse(presented) else {
        return false;
    };
    let mut own = registered.url().clone();
    url.as_str() == presented
        && url.scheme() == "http"
        && is_loopback_host(&url, localhost)
        && url.set_port(None).is_ok()
        && own.set_port(None).is_ok()
        && url == own
}

/// A loopback address, or `localhost` when `localhost` is allowed.
fn is_loopback_host(url: &Url, localhost: bool) -> bool {
    is_loopback_url(url) && (localhost || !matches!(url.host(), Some(Host::Domain(_))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(registered: &str, presented: &str) -> bool {
        redirect_matches(&RegisteredUri::parse(registered).unwrap(), presented, false)
    }

    #[test]
    fn loopback_literals_match_on_any_port_and_nothing_else_does() {
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:53127/cb"));
        assert!(matches("http://127.0.0.1:8000/cb", "http://127.0.0.1:9/cb"));
        assert!(matches("http://[::1]:8000/cb", "http://[::1]:1234/cb"));
        assert!(matches(
            "https://app.example.com/cb",
            "https://app.example.com/cb"
        ));
        assert!(!matches(
            "https://app.example.com/cb",
            "https://app.example.com:444/cb"
        ));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb/"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb?x=1"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb#x"));
        assert!(!matches("http://127.0.0.1/cb", "http://[::1]:5/cb"));
        assert!(!matches("http://127.0.0.1/cb", "HTTP://127.0.0.1:5/cb"));
        assert!(!matches("http://localhost/cb", "http://localhost:5/cb"));
        let localhost = RegisteredUri::parse("http://localhost/cb").unwrap();
        assert!(redirect_matches(&localhost, "http://localhost:5/cb", true));
    }

    #[test]
    fn only_s256_shaped_challenges_pass() {
        assert!(is_s256_value(&s256("verifier")));
        assert!(!is_s256_value("short"));
        assert!(!is_s256_value(&"=".repeat(43)));
    }
}
