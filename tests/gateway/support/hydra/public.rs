//! Hydra's public OAuth 2.0 endpoints, as `ory-hydra-v26.2.0-api.json`
//! documents them (`oAuth2Authorize`, `oauth2TokenExchange`,
//! `revokeOAuth2Token`, `getOidcUserInfo`, `discoverOidcConfiguration`) over
//! the clients the admin API holds, with the login and consent app played
//! by the fake itself: `/oauth2/auth` sends the browser to
//! `/_fake/login?login_challenge=…` (where Hydra sends it to the operator's
//! login app), and a test posts the subject there (`log_in`). That route is
//! the test's, not Hydra's, and no contract covers it.
//!
//! A request that breaks what Hydra documents is recorded in the ledger and
//! answered as Hydra answers it. What an app may legitimately meet (a
//! refresh token revoked, a scope the client may not ask for) is answered
//! the same way but is nobody's violation.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use url::Url;

use super::{HydraFake, error};
use crate::support::faults::or_answer;
use crate::support::oauth::{
    AuthorizationRequest, CodeRefusal, Grant, Presented, bearer, browser, error_back, form_body,
    found, redirect_to, redirected, registered_redirect, strings,
};

/// The scope a client holds when it was created without one: Hydra's
/// client validator sets `oidc.dynamic_client_registration.default_scope`
/// (Ory Hydra configuration reference; by default `offline_access offline
/// openid`) on every client written without `scope`.
const DEFAULT_CLIENT_SCOPE: [&str; 3] = ["offline_access", "offline", "openid"];

/// Hydra's `errorOAuth2` answer, with `error_hint`.
fn oauth_error(status: StatusCode, code: &str, description: &str, hint: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": code,
            "error_description": description,
            "error_hint": hint,
            "status_code": status.as_u16(),
        })),
    )
        .into_response()
}

/// A token endpoint answer: never cached (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl HydraFake {
    /// The client `id` as stored, secret included.
    fn stored_client(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().clients.get(id).cloned()
    }

    /// The discovery document Hydra serves at its issuer (`oidcConfiguration`,
    /// with every member it requires).
    pub(super) fn discovery_document(&self) -> Value {
        let base = &self.base;
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/oauth2/auth"),
            "device_authorization_endpoint": format!("{base}/oauth2/device/auth"),
            "token_endpoint": format!("{base}/oauth2/token"),
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "end_session_endpoint": format!("{base}/oauth2/sessions/logout"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "registration_endpoint": format!("{base}/oauth2/register"),
            "response_types_supported": ["code", "code id_token", "id_token", "token id_token", "token", "token id_token code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "implicit", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt", "none"],
            "scopes_supported": DEFAULT_CLIENT_SCOPE,
            "claims_supported": ["sub"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "id_token_signed_response_alg": ["RS256"],
            "userinfo_signed_response_alg": ["RS256"],
            "userinfo_signing_alg_values_supported": ["none", "RS256"],
            "request_parameter_supported": true,
            "request_uri_parameter_supported": true,
            "require_request_uri_registration": true,
            "claims_parameter_supported": false,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "frontchannel_logout_supported": true,
            "frontchannel_logout_session_supported": true,
        })
    }

    /// Checks a form request at `template`: the form itself and what the
    /// contract documents (its form for the token endpoint lists neither
    /// `client_secret` nor `code_verifier`, which `client_secret_post` and
    /// PKCE, both announced in `oidcConfiguration`, add; unlisted members
    /// are no fault). `Err` is Hydra's refusal of a body it cannot read.
    fn checked_form(
        &self,
        template: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<BTreeMap<String, String>, Response> {
        let form = form_body(headers, body).map_err(|problem| {
            self.violation(format!("POST {template}: {problem}"));
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.",
                &problem,
            )
        })?;
        let problems = self.spec.check_form("POST", template, &form);
        if !problems.is_empty() {
            let text = problems.join("; ");
            self.ledger.violations_found(problems);
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.",
                &text,
            ));
        }
        Ok(form)
    }

    /// Authenticates the client of a token or revocation request by the
    /// method it registered (`oAuth2Client` `token_endpoint_auth_method`,
    /// `client_secret_basic` by default): its id and stored client.
    fn authenticate(
        &self,
        here: &str,
        headers: &HeaderMap,
        form: &BTreeMap<String, String>,
    ) -> Result<(String, Value), Response> {
        let refused = |fake: &Self, hint: String| {
            fake.violation(format!("{here}: {hint}"));
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).",
                &hint,
            )
        };
        let presented = Presented::read(headers, form);
        let Some((id, secret)) = presented.credentials() else {
            return Err(refused(self, format!("client credentials: {presented:?}")));
        };
        let Some(client) = self.stored_client(id) else {
            return Err(refused(self, format!("no client `{id}`")));
        };
        let registered = client["token_endpoint_auth_method"]
            .as_str()
            .unwrap_or("client_secret_basic");
        if registered != presented.method() {
            return Err(refused(
                self,
                format!(
                    "The OAuth 2.0 Client supports client authentication method '{registered}', but method '{}' was requested.",
                    presented.method()
                ),
            ));
        }
        if secret.is_some() && client["client_secret"].as_str() != secret {
            return Err(refused(
                self,
                "the client secret is not the client's".into(),
            ));
        }
        Ok((id.to_owned(), client))
    }
}

/// `GET /oauth2/auth`: checks the client, its registered redirect URI, the
/// response type, state and scope, keeps the request and sends the browser
/// to the login app.
pub(super) async fn authorize(
    State(fake): State<HydraFake>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let here = "GET /oauth2/auth";
    // The document lists no parameter here ("OAuth 2.0 Authorize
    // Endpoint"): those of RFC 6749 §4.1.1, RFC 7636 §4.3 and OpenID
    // Connect Core §3.1.2.1 are checked below.
    fake.ledger.violations_found(
        fake.spec
            .check_oauth_request("GET", "/oauth2/auth", &[], &query),
    );
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let Some(client) = fake.stored_client(param("client_id")) else {
        fake.violation(format!("{here}: no client `{}`", param("client_id")));
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).",
            "The requested OAuth 2.0 Client does not exist.",
        );
    };
    // The registered text (RFC 6749 §3.1.2.3). Hydra (fosite) also lets a
    // loopback IP's port vary (RFC 8252 §7.3); the gateway's callback never
    // needs that, so the fake holds it to the text.
    let redirect_uri = param("redirect_uri");
    if !registered_redirect(&client, redirect_uri) {
        fake.violation(format!(
            "{here}: redirect_uri `{redirect_uri}` not registered"
        ));
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.",
            "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.",
        );
    }
    // From here on, errors go back to the client (RFC 6749 §4.1.2.1).
    let state = param("state");
    let back = |code: &str, description: &str| error_back(redirect_uri, state, code, description);
    if param("response_type") != "code"
        || !strings(&client, "response_types").contains(&"code".into())
    {
        fake.violation(format!(
            "{here}: response_type `{}` is not the client's `code`",
            param("response_type")
        ));
        return back(
            "unsupported_response_type",
            "The client is not allowed to request response_type 'code'.",
        );
    }
    // fosite's ErrInvalidState: "Request parameter 'state' must be at
    // least be 8 characters long to ensure sufficient entropy."
    if state.len() < 8 {
        fake.violation(format!("{here}: state shorter than 8 characters"));
        return back(
            "invalid_state",
            "The state is missing or does not have enough characters and is therefore considered too weak.",
        );
    }
    let challenge = query.get("code_challenge").map(|challenge| {
        let method = query
            .get("code_challenge_method")
            .cloned()
            .unwrap_or_else(|| "plain".into());
        (challenge.clone(), method)
    });
    if let Some((_, method)) = &challenge {
        if !["plain", "S256"].contains(&method.as_str()) {
            fake.violation(format!("{here}: code_challenge_method `{method}`"));
            return back(
                "invalid_request",
                "The code_challenge_method is not supported, use S256 instead.",
            );
        }
    }
    // `oAuth2Client` `scope`: the scopes "the client can use when
    // requesting access tokens". Asking for another is the app's choice,
    // answered, not a violation.
    let allowed: Vec<String> = match client["scope"].as_str() {
        Some(scope) if !scope.is_empty() => scope.split(' ').map(str::to_owned).collect(),
        _ => DEFAULT_CLIENT_SCOPE.map(str::to_owned).to_vec(),
    };
    let scope: Vec<String> = param("scope")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(refused) = scope.iter().find(|s| !allowed.contains(s)) {
        return back(
            "invalid_scope",
            &format!("The OAuth 2.0 Client is not allowed to request scope '{refused}'."),
        );
    }
    let login_challenge = fake.grants.begin(AuthorizationRequest {
        client_id: param("client_id").to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state: state.to_owned(),
        challenge,
        nonce: query.get("nonce").cloned(),
    });
    let mut login = Url::parse(&format!("{}/_fake/login", fake.base)).unwrap();
    login
        .query_pairs_mut()
        .append_pair("login_challenge", &login_challenge);
    found(login.as_str())
}

/// `POST /_fake/login` (the test's, not Hydra's): the login and consent
/// app accepts `login_challenge` for `subject` and grants every scope
/// asked for; Hydra then sends the browser back to the client with `code`,
/// `scope` and `state` (no `iss`: `oidcConfiguration` has no
/// `authorization_response_iss_parameter_supported`).
pub(super) async fn log_in(
    State(fake): State<HydraFake>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_body(&headers, &body).unwrap();
    let challenge = form.get("login_challenge").cloned().unwrap_or_default();
    let Some(request) = fake.grants.take_pending(&challenge) else {
        return (StatusCode::NOT_FOUND, "no such login challenge").into_response();
    };
    let subject = form.get("subject").cloned().unwrap_or_default();
    let scope = request.scope.join(" ");
    let (redirect_uri, state) = (request.redirect_uri.clone(), request.state.clone());
    let code = fake.grants.code_for(request, &subject);
    found(&redirect_to(
        &redirect_uri,
        &[("code", &code), ("scope", &scope), ("state", &state)],
    ))
}

/// The tokens of `grant` for `client`: a refresh token when the client may
/// use the refresh grant and `offline` or `offline_access` was granted
/// (`oAuth2TokenExchange` `refresh_token`: "add the scope "offline" to
/// your access token request").
fn tokens(fake: &HydraFake, client: &Value, grant: &Grant) -> Response {
    let refresh = strings(client, "grant_types").contains(&"refresh_token".into())
        && (grant.has("offline") || grant.has("offline_access"));
    let issued = fake.grants.issue(grant, refresh, &fake.base);
    no_store(StatusCode::OK, issued.answer("bearer"))
}

/// `POST /oauth2/token`: the authorization code and refresh token grants.
pub(super) async fn token(
    State(fake): State<HydraFake>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = "POST /oauth2/token";
    // Queued faults apply here too (before the work only: a slow answer).
    or_answer!(super::before_work(&fake, "POST").await);
    let form = or_answer!(fake.checked_form("/oauth2/token", &headers, &body));
    let (client_id, client) = or_answer!(fake.authenticate(here, &headers, &form));
    let get = |name: &str| form.get(name).map(String::as_str);
    let grant_type = get("grant_type").unwrap_or_default();
    if !["authorization_code", "refresh_token"].contains(&grant_type) {
        fake.violation(format!("{here}: grant_type `{grant_type}`"));
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
            grant_type,
        );
    }
    if !strings(&client, "grant_types")
        .iter()
        .any(|g| g == grant_type)
    {
        fake.violation(format!("{here}: grant `{grant_type}` not the client's"));
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "The client is not authorized to request a token using this method.",
            &format!(
                "The OAuth 2.0 Client is not allowed to use authorization grant '{grant_type}'."
            ),
        );
    }
    let invalid_grant = |hint: &str| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
            hint,
        )
    };
    match grant_type {
        "authorization_code" => {
            let code = get("code").unwrap_or_default();
            match fake
                .grants
                .redeem(code, &client_id, get("redirect_uri"), get("code_verifier"))
            {
                Ok(grant) => tokens(&fake, &client, &grant),
                Err(CodeRefusal::Expired) => invalid_grant("The authorization code has expired."),
                Err(refusal) => {
                    fake.violation(format!("{here}: the code is refused: {refusal:?}"));
                    // A code used twice takes the tokens of its first use
                    // along (RFC 6749 §4.1.2; fosite revokes them).
                    if let CodeRefusal::Used(grant) = refusal {
                        fake.grants.revoke_grant(grant);
                    }
                    invalid_grant(&format!("{refusal:?}"))
                }
            }
        }
        _ => {
            let token = get("refresh_token").unwrap_or_default();
            // Hydra rotates refresh tokens: each is good for one refresh
            // (Ory Hydra docs, "Refresh token rotation"; the grace period
            // `oauth2.grant.refresh_token.rotation_grace_period` is 0 by
            // default).
            match fake.grants.refresh(token, &client_id, true) {
                Some(grant) => tokens(&fake, &client, &grant),
                None => invalid_grant(
                    "The refresh token is unknown, used, revoked or another client's.",
                ),
            }
        }
    }
}

/// `POST /oauth2/revoke`: "Revoking a refresh token also invalidates the
/// access token that was created with it. A token may only be revoked by
/// the client the token was generated for." (`revokeOAuth2Token`)
pub(super) async fn revoke(
    State(fake): State<HydraFake>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = "POST /oauth2/revoke";
    let form = or_answer!(fake.checked_form("/oauth2/revoke", &headers, &body));
    let (client_id, _) = or_answer!(fake.authenticate(here, &headers, &form));
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    match fake.grants.revoke(token, &client_id, true) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(()) => {
            fake.violation(format!("{here}: another client's token"));
            oauth_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "The client is not authorized to request a token using this method.",
                "The token was not issued to this client.",
            )
        }
    }
}

/// `GET /userinfo`: the claims of an active access token's subject, or 401
/// with `WWW-Authenticate` (RFC 6750 §3, as `getOidcUserInfo` says).
pub(super) async fn userinfo(
    State(fake): State<HydraFake>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    fake.ledger.violations_found(
        fake.spec
            .check_oauth_request("GET", "/userinfo", &[], &query),
    );
    match bearer(&headers).and_then(|token| fake.grants.access(token)) {
        Some(grant) => axum::Json(json!({ "sub": grant.subject })).into_response(),
        None => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "request_unauthorized",
                "The request could not be authorized. Check that you provided valid credentials in the right format.",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"request_unauthorized\""),
            );
            response
        }
    }
}

impl HydraFake {
    /// Plays the user's browser from an authorization URL the gateway sent
    /// it to: follows Hydra's redirect to the login app and signs in as
    /// `subject`; where Hydra then sends the browser (the gateway's callback).
    pub async fn log_in(&self, authorization_url: &Url, subject: &str) -> Url {
        let browser = browser();
        let answer = browser
            .get(authorization_url.as_str())
            .send()
            .await
            .unwrap();
        let login = redirected(&answer);
        assert!(
            login.path() == "/_fake/login",
            "Hydra did not send the browser to the login app: {login}"
        );
        let challenge = login
            .query_pairs()
            .find(|(name, _)| name == "login_challenge")
            .map(|(_, value)| value.into_owned())
            .unwrap();
        let back = browser
            .post(login.as_str())
            .form(&[
                ("login_challenge", challenge.as_str()),
                ("subject", subject),
            ])
            .send()
            .await
            .unwrap();
        redirected(&back)
    }
}
