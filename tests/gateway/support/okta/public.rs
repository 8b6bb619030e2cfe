//! A custom authorization server's OAuth 2.0 endpoints, as
//! `okta-oauth-2026.06.3.yaml` documents them (`authorizeCustomAS`,
//! `tokenCustomAS`, `revokeCustomAS`, `userinfoCustomAS`, and the
//! authorization servers' discovery), over the clients the Dynamic Client
//! Registration API holds. Okta's hosted sign-in page is played by the fake
//! itself: `/v1/authorize` sends the browser to `/_fake/signin?challenge=…`,
//! and a test posts the username there (`sign_in`). That route is the
//! test's, not Okta's, and no contract covers it.
//!
//! A request that breaks what Okta documents is recorded in the ledger and
//! answered as Okta answers it (its documented examples' texts where it
//! gives them). What an app may legitimately meet (a user not assigned to
//! the app, a refresh token revoked) is answered the same way but is
//! nobody's violation.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use url::Url;

use super::OktaFake;
use crate::support::faults::or_answer;
use crate::support::oauth::{
    AuthorizationRequest, CodeRefusal, Grant, Presented, bearer, browser, error_back, form_body,
    found, redirect_to, redirected, registered_redirect, strings,
};

const AUTHORIZE: &str = "/oauth2/{authorizationServerId}/v1/authorize";
const TOKEN: &str = "/oauth2/{authorizationServerId}/v1/token";
const REVOKE: &str = "/oauth2/{authorizationServerId}/v1/revoke";
const USERINFO: &str = "/oauth2/{authorizationServerId}/v1/userinfo";
const DISCOVERY: &str = "/oauth2/{authorizationServerId}/.well-known/openid-configuration";

/// The scopes of the fake's authorization servers: those of the document's
/// `CustomASOidcMetadata` example that are not Okta's own API's.
pub(super) const SCOPES: [&str; 7] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
    "device_sso",
];

/// Okta's `OAuthError`.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "error_description": description })),
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

/// The discovery document of the authorization server at `issuer`, with
/// the endpoints `CustomASOidcMetadata` (or, for the org,
/// `OrgASOidcMetadata`) shows; `endpoints` is where they live (the issuer
/// for a custom server, `{org}/oauth2` for the org's).
pub(super) fn discovery_document(org: &str, issuer: &str, endpoints: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{endpoints}/v1/authorize"),
        "token_endpoint": format!("{endpoints}/v1/token"),
        "userinfo_endpoint": format!("{endpoints}/v1/userinfo"),
        "registration_endpoint": format!("{org}/oauth2/v1/clients"),
        "jwks_uri": format!("{endpoints}/v1/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "code token", "id_token token", "code id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post", "okta_post_message"],
        "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password", "urn:ietf:params:oauth:grant-type:device_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": SCOPES,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "claims_supported": ["iss", "ver", "sub", "aud", "iat", "exp", "jti", "auth_time", "amr", "idp", "nonce"],
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": format!("{endpoints}/v1/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint": format!("{endpoints}/v1/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "end_session_endpoint": format!("{endpoints}/v1/logout"),
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"],
        "device_authorization_endpoint": format!("{endpoints}/v1/device/authorize"),
    })
}

impl OktaFake {
    /// The issuer of the custom authorization server `server`.
    fn issuer(&self, server: &str) -> String {
        format!("{}/oauth2/{server}", self.base)
    }

    /// Checks the authorization server in the path: `Err` is Okta's 404
    /// (`Error404AuthorizationServerNotFound`) for one the org lacks.
    fn server(&self, here: &str, server: &str) -> Result<(), Response> {
        if self.state.lock().unwrap().servers.contains(server) {
            return Ok(());
        }
        self.violation(format!("{here}: no authorization server `{server}`"));
        Err(super::okta_error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {server} (AuthorizationServer)"),
        ))
    }

    /// Checks a form request at `template`: the form itself and what the
    /// contract documents (client credentials come by the operation's
    /// `security` schemes, not in its form).
    fn checked_form(
        &self,
        template: &str,
        server: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<BTreeMap<String, String>, Response> {
        let here = format!("POST {template}");
        self.server(&here, server)?;
        let form = form_body(headers, body).map_err(|problem| {
            self.violation(format!("{here}: {problem}"));
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &problem)
        })?;
        let problems = self.spec.check_form("POST", template, &form);
        if !problems.is_empty() {
            let text = problems.join("; ");
            self.ledger.violations_found(problems);
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &text,
            ));
        }
        Ok(form)
    }

    /// Authenticates the client of a token or revocation request ("The
    /// method is configured per client app"): its id and stored client.
    fn authenticate(
        &self,
        here: &str,
        headers: &HeaderMap,
        form: &BTreeMap<String, String>,
    ) -> Result<(String, Value), Response> {
        let presented = Presented::read(headers, form);
        let refused = |status, code, description: &str| {
            self.violation(format!("{here}: {description} ({presented:?})"));
            oauth_error(status, code, description)
        };
        if presented == Presented::Several {
            // OAuthError400InvalidRequest_MultipleClientCreds
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Can't supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a `client_assertion` in the post body.",
            ));
        }
        let Some((id, secret)) = presented.credentials() else {
            // OAuthError401InvalidClient_NoCreds
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "No client credentials found",
            ));
        };
        let Some(client) = self.client(id) else {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid value for 'client_id' parameter.",
            ));
        };
        let registered = client["token_endpoint_auth_method"]
            .as_str()
            .unwrap_or("client_secret_basic");
        if registered != presented.method() {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                &format!(
                    "Client authentication failed: the client is configured for `{registered}`, not `{}`.",
                    presented.method()
                ),
            ));
        }
        if secret.is_some() && client["client_secret"].as_str() != secret {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client secret supplied for a confidential client is invalid.",
            ));
        }
        Ok((id.to_owned(), client))
    }
}

/// `GET /oauth2/{authorizationServerId}/v1/authorize`: checks the request
/// against the document, the client, its redirect URI, response type,
/// state and scopes, keeps it and sends the browser to the sign-in page.
pub(super) async fn authorize(
    State(fake): State<OktaFake>,
    Path(server): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let here = format!("GET {AUTHORIZE}");
    or_answer!(fake.server(&here, &server));
    // Required: client_id, redirect_uri, response_type, scope, state.
    let path = [("authorizationServerId", server.as_str())];
    let problems = fake
        .spec
        .check_oauth_request("GET", AUTHORIZE, &path, &query);
    let (missing_scope, problems): (Vec<String>, Vec<String>) = problems
        .into_iter()
        .partition(|p| p.contains("`scope` missing"));
    let missing_scope = !missing_scope.is_empty();
    fake.ledger.violations_found(problems.clone());
    if missing_scope {
        fake.violation(format!("{here}: required query parameter `scope` missing"));
    }
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let Some(client) = fake.client(param("client_id")) else {
        fake.violation(format!("{here}: no client `{}`", param("client_id")));
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Invalid value for 'client_id' parameter.",
        );
    };
    // "It must match the value preregistered in Okta during client
    // registration."
    let redirect_uri = param("redirect_uri");
    if !registered_redirect(&client, redirect_uri) {
        fake.violation(format!(
            "{here}: redirect_uri `{redirect_uri}` not registered"
        ));
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The 'redirect_uri' parameter must be a Login redirect URI in the client app settings.",
        );
    }
    let state = param("state");
    let back = |code: &str, description: &str| error_back(redirect_uri, state, code, description);
    // Anything else the document rules out (a value outside an enum, a
    // required parameter missing).
    if !problems.is_empty() {
        return back("invalid_request", &problems.join("; "));
    }
    // `Client` `response_types`: "Default value: `[code]`".
    let response_types = match strings(&client, "response_types") {
        types if types.is_empty() => vec!["code".to_owned()],
        types => types,
    };
    if param("response_type") != "code" || !response_types.contains(&"code".into()) {
        fake.violation(format!(
            "{here}: response_type `{}` is not the client's `code`",
            param("response_type")
        ));
        return back(
            "unsupported_response_type",
            "The response type is not supported by the authorization server. Configured response types: [code].",
        );
    }
    // `state`: "It can contain alphanumeric, comma, period, underscore,
    // and hyphen characters."
    let state_characters =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b',' | b'.' | b'_' | b'-');
    if !state.bytes().all(state_characters) {
        fake.violation(format!(
            "{here}: state `{state}` is not of Okta's characters"
        ));
        return back(
            "invalid_request",
            "The 'state' parameter is missing or holds characters Okta does not accept.",
        );
    }
    if missing_scope {
        // Okta's answer when the server has no default scope to use.
        return back(
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    let scope: Vec<String> = param("scope")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // The server's scopes (`scopes_supported`); another is the app's
    // choice, answered, not a violation.
    if scope.iter().any(|s| !SCOPES.contains(&s.as_str())) {
        return back(
            "invalid_scope",
            "One or more scopes are not configured for the authorization server resource.",
        );
    }
    let challenge = query.get("code_challenge").map(|challenge| {
        let method = param("code_challenge_method").to_owned();
        (challenge.clone(), method)
    });
    let sign_in = fake.grants.begin(AuthorizationRequest {
        client_id: param("client_id").to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state: state.to_owned(),
        challenge,
        nonce: query.get("nonce").cloned(),
    });
    let mut page = Url::parse(&format!("{}/_fake/signin", fake.base)).unwrap();
    page.query_pairs_mut().append_pair("challenge", &sign_in);
    found(page.as_str())
}

/// `POST /_fake/signin` (the test's, not Okta's): `username` signs in on
/// the hosted page. Okta signs in only users assigned to the app (Okta
/// Help, "Assign app integrations"): anyone else is sent back to the
/// client with `access_denied`. Otherwise the client gets `code` and
/// `state` (no `iss`: the metadata has no
/// `authorization_response_iss_parameter_supported`).
pub(super) async fn sign_in(
    State(fake): State<OktaFake>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_body(&headers, &body).unwrap();
    let challenge = form.get("challenge").cloned().unwrap_or_default();
    let Some(request) = fake.grants.take_pending(&challenge) else {
        return (StatusCode::NOT_FOUND, "no such sign-in").into_response();
    };
    let username = form.get("username").cloned().unwrap_or_default();
    let (redirect_uri, state) = (request.redirect_uri.clone(), request.state.clone());
    if !fake.is_assigned(&request.client_id, &username) {
        return found(&redirect_to(
            &redirect_uri,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "User is not assigned to the client application.",
                ),
                ("state", &state),
            ],
        ));
    }
    let code = fake.grants.code_for(request, &username);
    found(&redirect_to(
        &redirect_uri,
        &[("code", &code), ("state", &state)],
    ))
}

/// The tokens of `grant` for `client`: a refresh token when the client
/// has the refresh token grant and `offline_access` was granted
/// (`TokenResponse` `refresh_token`: "returned if the `offline_access`
/// scope is granted").
fn tokens(fake: &OktaFake, issuer: &str, client: &Value, grant: &Grant) -> Response {
    let refresh = strings(client, "grant_types").contains(&"refresh_token".into())
        && grant.has("offline_access");
    let issued = fake.grants.issue(grant, refresh, issuer);
    no_store(StatusCode::OK, issued.answer("Bearer"))
}

/// `POST /oauth2/{authorizationServerId}/v1/token`: the authorization code
/// and refresh token grants.
pub(super) async fn token(
    State(fake): State<OktaFake>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = format!("POST {TOKEN}");
    let form = or_answer!(fake.checked_form(TOKEN, &server, &headers, &body));
    let (client_id, client) = or_answer!(fake.authenticate(&here, &headers, &form));
    let get = |name: &str| form.get(name).map(String::as_str);
    let grant_type = get("grant_type").unwrap_or_default();
    // `Client` `grant_types`: "Default value: `[authorization_code]`".
    let grants = match strings(&client, "grant_types") {
        grants if grants.is_empty() => vec!["authorization_code".to_owned()],
        grants => grants,
    };
    if !["authorization_code", "refresh_token"].contains(&grant_type) {
        fake.violation(format!("{here}: grant_type `{grant_type}`"));
        // OAuthError400UnsupportedGrantType
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant type in the request isn't supported.",
        );
    }
    if !grants.iter().any(|g| g == grant_type) {
        fake.violation(format!("{here}: grant `{grant_type}` not the client's"));
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "The client is not authorized to use the provided grant type. Configured grant types: {grants:?}."
            ),
        );
    }
    let issuer = fake.issuer(&server);
    if grant_type == "refresh_token" {
        // Okta keeps a refresh token across refreshes unless the app's
        // `refresh_token.rotation_type` (an Apps API setting the DCR API
        // cannot set) is `ROTATE`.
        let token = get("refresh_token").unwrap_or_default();
        let Some(mut grant) = fake.grants.refresh(token, &client_id, false) else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The refresh token is invalid or expired.",
            );
        };
        // `scope`: "They must be a subset of the original scopes".
        if let Some(scope) = get("scope") {
            let asked: Vec<String> = scope.split(' ').map(str::to_owned).collect();
            if asked.iter().any(|s| !grant.has(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "The requested scope is invalid, unknown, or malformed.",
                );
            }
            grant.scope = asked;
        }
        let issued = fake.grants.issue(&grant, false, &issuer);
        let mut answer = issued.answer("Bearer");
        answer["refresh_token"] = json!(token);
        return no_store(StatusCode::OK, answer);
    }
    let code = get("code").unwrap_or_default();
    let refused = |fake: &OktaFake, code: &str, description: &str, refusal: &CodeRefusal| {
        fake.violation(format!("{here}: {description} ({refusal:?})"));
        oauth_error(StatusCode::BAD_REQUEST, code, description)
    };
    match fake
        .grants
        .redeem(code, &client_id, get("redirect_uri"), get("code_verifier"))
    {
        Ok(grant) => tokens(&fake, &issuer, &client, &grant),
        // "The code has a lifetime of 300 seconds."
        Err(CodeRefusal::Expired) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The authorization code is invalid or has expired.",
        ),
        // OAuthError400InvalidGrant_InvalidAuthCode
        Err(refusal @ (CodeRefusal::Unknown | CodeRefusal::Used(_))) => refused(
            &fake,
            "invalid_grant",
            "The authorization code is invalid or has expired.",
            &refusal,
        ),
        // OAuthError400InvalidGrant_MismatchedClient
        Err(refusal @ CodeRefusal::OtherClient) => refused(
            &fake,
            "invalid_grant",
            "The grant was issued to another client. Ensure that the `client_id` matches the one used at the authorize request.",
            &refusal,
        ),
        // `redirect_uri`: "This value must match the `redirect_uri` used to
        // generate the original `authorization_code`."
        Err(refusal @ CodeRefusal::RedirectUri) => refused(
            &fake,
            "invalid_grant",
            "The 'redirect_uri' does not match the redirection URI used in the authorization request.",
            &refusal,
        ),
        // `code_verifier`: "Required if the `code_challenge` was specified in
        // the original `/authorize` request."
        Err(refusal @ CodeRefusal::NoVerifier) => refused(
            &fake,
            "invalid_request",
            "PKCE code verifier is required when the parameter code_challenge is specified in the authorize request.",
            &refusal,
        ),
        Err(refusal @ CodeRefusal::Verifier) => refused(
            &fake,
            "invalid_grant",
            "PKCE verification failed.",
            &refusal,
        ),
    }
}

/// `POST /oauth2/{authorizationServerId}/v1/revoke`: "A client may only
/// revoke its own tokens"; "revoking an invalid, expired, or revoked token
/// is still considered a success".
pub(super) async fn revoke(
    State(fake): State<OktaFake>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = format!("POST {REVOKE}");
    let form = or_answer!(fake.checked_form(REVOKE, &server, &headers, &body));
    let (client_id, _) = or_answer!(fake.authenticate(&here, &headers, &form));
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    match fake.grants.revoke(token, &client_id, false) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(()) => {
            fake.violation(format!("{here}: another client's token"));
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The token was not issued to this client.",
            )
        }
    }
}

/// `GET /oauth2/{authorizationServerId}/v1/userinfo`: the subject of an
/// active access token granted `openid` (the operation's security), else
/// the documented 401 or 403 with `WWW-Authenticate`.
pub(super) async fn userinfo(
    State(fake): State<OktaFake>,
    Path(server): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let here = format!("GET {USERINFO}");
    or_answer!(fake.server(&here, &server));
    let path = [("authorizationServerId", server.as_str())];
    fake.ledger.violations_found(
        fake.spec
            .check_oauth_request("GET", USERINFO, &path, &query),
    );
    let challenge = |status: StatusCode, value: &'static str| {
        let mut response = status.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        response
    };
    match bearer(&headers).and_then(|token| fake.grants.access(token)) {
        Some(grant) if grant.has("openid") => {
            axum::Json(json!({ "sub": grant.subject })).into_response()
        }
        Some(_) => challenge(
            StatusCode::FORBIDDEN,
            "Bearer error=\"insufficient_scope\", error_description=\"The access token must provide access to at least one of these scopes - profile, email, address or phone\"",
        ),
        None => challenge(
            StatusCode::UNAUTHORIZED,
            "Bearer error=\"invalid_token\", error_description=\"The access token is invalid\"",
        ),
    }
}

/// `GET /oauth2/{authorizationServerId}/.well-known/openid-configuration`.
pub(super) async fn discovery(
    State(fake): State<OktaFake>,
    Path(server): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let here = format!("GET {DISCOVERY}");
    or_answer!(fake.server(&here, &server));
    let path = [("authorizationServerId", server.as_str())];
    fake.ledger.violations_found(
        fake.spec
            .check_request("GET", DISCOVERY, &path, &query, &[]),
    );
    let issuer = fake.issuer(&server);
    axum::Json(discovery_document(&fake.base, &issuer, &issuer)).into_response()
}

impl OktaFake {
    /// Plays the user's browser from an authorization URL the gateway sent
    /// it to: follows Okta's redirect to the sign-in page and signs in as
    /// `username`; where Okta then sends the browser (the gateway's
    /// callback, with a code or an error).
    pub async fn sign_in(&self, authorization_url: &Url, username: &str) -> Url {
        let browser = browser();
        let answer = browser
            .get(authorization_url.as_str())
            .send()
            .await
            .unwrap();
        let page = redirected(&answer);
        assert!(
            page.path() == "/_fake/signin",
            "Okta did not send the browser to its sign-in page: {page}"
        );
        let challenge = page
            .query_pairs()
            .find(|(name, _)| name == "challenge")
            .map(|(_, value)| value.into_owned())
            .unwrap();
        let back = browser
            .post(page.as_str())
            .form(&[("challenge", challenge.as_str()), ("username", username)])
            .send()
            .await
            .unwrap();
        redirected(&back)
    }
}
