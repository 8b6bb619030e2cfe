//! A stateful fake of Okta's Dynamic Client Registration API
//! (`/oauth2/v1/clients`) that behaves as Okta documents it: Okta picks ids
//! and secrets, shows a secret only when it is created or the client is
//! written, pages with `after`/`limit` and a `Link` header, searches names by
//! prefix with `q`, takes any `client_name` any number of times (Okta dropped
//! its uniqueness rule in 2022, okta-developer-docs PR 3304), and announces its rate budget
//! in `X-Rate-Limit-*` headers. Every request is checked against Okta's
//! contract (`tests/contracts/okta.json`, from Okta's OpenAPI document
//! `okta-oauth-2026.06.3.yaml`): operation,
//! parameters and, for writes, the `Client` schema with its read-only
//! members refused, plus the app-type rules of the `createClient` text.
//! Its custom authorization servers (`public`) sign users assigned to those
//! clients in and issue, refresh and revoke their tokens.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dcr_gateway::clock::{Clock, SystemClock};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::contract::{Contract, json_body, judged};
pub use super::faults::Fault;
use super::faults::{Ledger, after, before, or_answer};
use super::oauth::Grants;

// A custom authorization server's endpoints and the sign-in page the tests drive.
mod public;

/// The API token the fake accepts (`Authorization: SSWS …`).
pub const API_TOKEN: &str = "okta-test-api-token";
/// The OAuth access token (`okta.clients.*` scopes) the fake accepts as Bearer.
pub const ACCESS_TOKEN: &str = "okta-test-access-token";
/// The settings a replace must carry (`replaceClient`: partial updates fail).
const FULL_REPLACE: [&str; 6] = [
    "client_name",
    "application_type",
    "redirect_uris",
    "response_types",
    "grant_types",
    "token_endpoint_auth_method",
];
/// Requests per window in the announced budget, unless a test sets another.
const BUDGET_LIMIT: i64 = 600;

struct FakeState {
    clients: BTreeMap<String, Value>,
    limit: i64,
    remaining: i64,
    reset: i64,
    unknown_as_401: bool,
    max_page_size: Option<usize>,
    /// The org's custom authorization servers, by id.
    servers: BTreeSet<String>,
    /// The users assigned to each app, by client id.
    assigned: BTreeMap<String, BTreeSet<String>>,
}

/// A running Okta fake.
#[derive(Clone)]
pub struct OktaFake {
    pub base: String,
    /// Requests received, violations, faults.
    pub ledger: Ledger,
    state: Arc<Mutex<FakeState>>,
    spec: Arc<Contract>,
    validator: Arc<jsonschema::Validator>,
    /// Sign-ins, codes and tokens of the authorization servers.
    grants: Grants,
}

fn now() -> i64 {
    SystemClock.now_unix()
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl OktaFake {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut spec = Contract::load("okta");
        unroll_signing_key(&mut spec);
        // The document types this member `string` yet gives it `items`,
        // describes it as an array and shows arrays in every example.
        spec.schema_mut("Client")["properties"]["post_logout_redirect_uris"]["type"] =
            json!("array");
        let fake = Self {
            base,
            ledger: Ledger::default(),
            state: Arc::new(Mutex::new(FakeState {
                clients: BTreeMap::new(),
                limit: BUDGET_LIMIT,
                remaining: BUDGET_LIMIT,
                reset: now() + 60,
                unknown_as_401: false,
                max_page_size: None,
                servers: BTreeSet::from(["default".to_owned()]),
                assigned: BTreeMap::new(),
            })),
            validator: Arc::new(spec.body_validator("Client")),
            // "The code has a lifetime of 300 seconds" (`TokenRequestAuthorizationCode`).
            grants: Grants::new(std::time::Duration::from_secs(300), ["", "", ""]),
            spec: Arc::new(spec),
        };
        let fits = fake.spec.answer_validator("OidcMetadata");
        let issuer = format!("{}/oauth2/default", fake.base);
        for document in [
            public::discovery_document(&fake.base, &issuer, &issuer),
            org_discovery_document(&fake.base),
        ] {
            assert!(fits.is_valid(&document), "the fake's discovery document");
        }
        let router = Router::new()
            .route("/oauth2/v1/clients", get(list).post(create))
            .route(
                "/oauth2/v1/clients/{client_id}",
                get(read).put(replace).delete(delete),
            )
            .route(
                "/oauth2/v1/clients/{client_id}/lifecycle/newSecret",
                post(new_secret),
            )
            .route("/.well-known/openid-configuration", get(org_discovery))
            .route("/oauth2/v1/keys", get(keys))
            .route("/oauth2/{server}/v1/keys", get(keys))
            .route(
                "/oauth2/{server}/.well-known/openid-configuration",
                get(public::discovery),
            )
            .route("/oauth2/{server}/v1/authorize", get(public::authorize))
            .route("/oauth2/{server}/v1/token", post(public::token))
            .route("/oauth2/{server}/v1/revoke", post(public::revoke))
            .route("/oauth2/{server}/v1/userinfo", get(public::userinfo))
            .route("/_fake/signin", post(public::sign_in))
            .fallback(unknown_route)
            .method_not_allowed_fallback(unknown_route)
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        fake
    }

    /// Client ids the fake holds.
    pub fn client_ids(&self) -> Vec<String> {
        self.state.lock().unwrap().clients.keys().cloned().collect()
    }

    /// The stored client, secret included.
    pub fn client(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().clients.get(id).cloned()
    }

    /// Adds a client as an admin would in Okta's console; returns its id.
    pub fn seed(&self, client_name: &str) -> String {
        let id = format!("0oa{}", random_text(17));
        let client = json!({
            "client_id": id,
            "client_name": client_name,
            "client_id_issued_at": now(),
            "application_type": "service",
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret": random_text(40),
        });
        self.state
            .lock()
            .unwrap()
            .clients
            .insert(id.clone(), client);
        id
    }

    /// Sets a member as an Okta admin would in the console.
    pub fn set_member(&self, id: &str, member: &str, value: Value) {
        if let Some(client) = self.state.lock().unwrap().clients.get_mut(id) {
            client[member] = value;
        }
    }

    /// Assigns `user` to the app `client_id`, as an admin does (Okta signs
    /// in only users assigned to an app).
    pub fn assign(&self, client_id: &str, user: &str) {
        let mut state = self.state.lock().unwrap();
        let users = state.assigned.entry(client_id.to_owned()).or_default();
        users.insert(user.to_owned());
    }

    /// Whether `user` is assigned to the app `client_id`.
    fn is_assigned(&self, client_id: &str, user: &str) -> bool {
        let state = self.state.lock().unwrap();
        state
            .assigned
            .get(client_id)
            .is_some_and(|users| users.contains(user))
    }

    /// Removes a client behind the gateway's back (an admin deleted the app).
    pub fn forget(&self, id: &str) {
        self.state.lock().unwrap().clients.remove(id);
    }

    /// The budget of each one-minute window, from now on.
    pub fn set_budget_limit(&self, limit: i64) {
        let mut state = self.state.lock().unwrap();
        state.limit = limit;
        state.remaining = limit;
    }

    /// Only `remaining` more requests are allowed until `reset_in` seconds from now.
    pub fn set_budget(&self, remaining: i64, reset_in: i64) {
        self.set_budget_until(remaining, now() + reset_in);
    }

    /// Only `remaining` more requests are allowed until `reset` (seconds
    /// since the epoch), e.g. a time on the gateway's test clock.
    pub fn set_budget_until(&self, remaining: i64, reset: i64) {
        let mut state = self.state.lock().unwrap();
        state.remaining = remaining;
        state.reset = reset;
    }

    /// Pages hold at most `n` clients, whatever `limit` asks for; callers
    /// must follow `Link`.
    pub fn limit_page_size(&self, n: usize) {
        self.state.lock().unwrap().max_page_size = Some(n);
    }

    /// Unknown clients are answered 401 `invalid_client` instead of 404.
    pub fn answer_unknown_with_401(&self) {
        self.state.lock().unwrap().unknown_as_401 = true;
    }

    fn violation(&self, text: String) {
        self.ledger.violation(text);
    }

    /// What every request goes through: counting, the credential, the
    /// document's operation and parameters, the rate budget, and a fault.
    async fn admit(
        &self,
        method: &str,
        template: &str,
        path: &[(&str, &str)],
        query: &BTreeMap<String, String>,
        headers: &HeaderMap,
    ) -> Result<Option<Fault>, Response> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let authorized = presented == format!("SSWS {API_TOKEN}")
            || presented == format!("Bearer {ACCESS_TOKEN}");
        let problems = self.spec.check_request(method, template, path, query, &[]);
        let fault = self.ledger.arrive(method);
        self.ledger.violations_found(problems);
        if !authorized {
            self.violation(format!(
                "{method} {template}: no SSWS API token or Bearer access token"
            ));
        }
        let spent = {
            let mut state = self.state.lock().unwrap();
            if now() >= state.reset {
                state.remaining = state.limit;
                state.reset = now() + 60;
            }
            let spent = state.remaining <= 0;
            if !spent {
                state.remaining -= 1;
            }
            spent
        };
        if spent {
            // The gateway was told the budget was spent, and called anyway.
            self.violation(format!(
                "{method} {template}: called with the rate budget spent"
            ));
        }
        if !authorized {
            return Err(self.budgeted(okta_error(
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided",
            )));
        }
        if spent {
            return Err(self.budgeted(okta_error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            )));
        }
        before(fault, |status| {
            okta_error(status, "E0000009", "Internal Server Error")
        })
        .await
        .map_err(|response| self.budgeted(response))
    }

    /// Adds the rate-limit headers Okta sends on every answer.
    fn budgeted(&self, mut response: Response) -> Response {
        let state = self.state.lock().unwrap();
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-rate-limit-limit", state.limit),
            ("x-rate-limit-remaining", state.remaining.max(0)),
            ("x-rate-limit-reset", state.reset),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
        response
    }

    /// Checks a create or replace body: JSON, the `Client` schema, and the
    /// app-type rules. `Err` is Okta's 400.
    fn check_client(
        &self,
        here: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Value, Response> {
        let client = json_body(headers, body).map_err(|problem| {
            self.violation(format!("{here}: {problem}"));
            invalid_metadata("The request body was not well-formed.")
        })?;
        let mut problems = Contract::body_problems(&self.validator, here, &client);
        problems.extend(
            app_type_problems(&client)
                .into_iter()
                .map(|p| format!("{here}: {p}")),
        );
        judged(&self.ledger, client, problems, invalid_metadata)
    }

    fn unknown_client(&self, id: &str) -> Response {
        if self.state.lock().unwrap().unknown_as_401 {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({
                    "error": "invalid_client",
                    "error_description": "Invalid value for 'client_id' parameter.",
                })),
            )
                .into_response()
        } else {
            okta_error(
                StatusCode::NOT_FOUND,
                "E0000007",
                &format!("Not found: Resource not found: {id} (AppInstance)"),
            )
        }
    }
}

/// Okta's document describes a signing key polymorphically: `JsonSigningWebKey`
/// is `oneOf` `JsonWebKeyEC` / `JsonWebKeyRsa`, each of which is `allOf`
/// `JsonSigningWebKey` again (meant to be read through the `kty`
/// discriminator). As JSON Schema that never ends, so the fake spells the
/// two shapes out: the common members, plus the EC or RSA members by `kty`.
fn unroll_signing_key(spec: &mut Contract) {
    let key = spec.schema_mut("JsonSigningWebKey");
    if let Some(members) = key.as_object_mut() {
        members.remove("oneOf");
        members.remove("discriminator");
    }
    key["anyOf"] = json!([
        { "properties": { "kty": { "enum": ["EC"] }, "x": { "type": "string" }, "y": { "type": "string" } }, "required": ["kty", "x", "y"] },
        { "properties": { "kty": { "enum": ["RSA"] }, "e": { "type": "string" }, "n": { "type": "string" } }, "required": ["kty", "e", "n"] },
    ]);
}

fn okta_error(status: StatusCode, code: &str, summary: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": format!("oae{}", random_text(20)),
            "errorCauses": [],
        })),
    )
        .into_response()
}

fn invalid_metadata(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "error": "invalid_client_metadata",
            "error_description": description,
        })),
    )
        .into_response()
}

/// The table of valid grant types per app type in `createClient`, and the
/// redirect URI requirement of the `Client` schema.
fn app_type_problems(client: &Value) -> Vec<String> {
    let strings = |key: &str| -> Vec<String> {
        client[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let app_type = client["application_type"].as_str().unwrap_or("web");
    let grants = {
        let g = strings("grant_types");
        if g.is_empty() {
            vec!["authorization_code".to_owned()]
        } else {
            g
        }
    };
    let method = client["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("client_secret_basic");
    let valid: &[&str] = match app_type {
        "browser" => &[
            "authorization_code",
            "implicit",
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
        ],
        "native" => &[
            "authorization_code",
            "implicit",
            "password",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
        ],
        "service" => &[
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
        ],
        _ => &[
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
        ],
    };
    let mut problems: Vec<String> = grants
        .iter()
        .filter(|g| !valid.contains(&g.as_str()))
        .map(|g| format!("grant type `{g}` is not valid for a `{app_type}` app"))
        .collect();
    if matches!(app_type, "web" | "native") && !grants.iter().any(|g| g == "authorization_code") {
        problems.push(format!("a `{app_type}` app must have authorization_code"));
    }
    if (app_type == "browser") != (method == "none") && app_type != "native" {
        problems.push(format!(
            "a `{app_type}` app cannot use token_endpoint_auth_method `{method}`"
        ));
    }
    let redirected = grants
        .iter()
        .any(|g| g == "authorization_code" || g == "implicit");
    if redirected && strings("redirect_uris").is_empty() {
        problems.push("redirect_uris are required for this grant type".into());
    }
    problems
}

fn uses_secret(client: &Value) -> bool {
    matches!(
        client["token_endpoint_auth_method"]
            .as_str()
            .unwrap_or("client_secret_basic"),
        "client_secret_basic" | "client_secret_post" | "client_secret_jwt"
    )
}

/// The client as GET shows it: the secret is never read back.
fn without_secret(mut client: Value) -> Value {
    if let Some(members) = client.as_object_mut() {
        members.remove("client_secret");
    }
    client
}

async fn create(
    State(fake): State<OktaFake>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = or_answer!(
        fake.admit("POST", "/oauth2/v1/clients", &[], &query, &headers)
            .await
    );
    let mut client = or_answer!(
        fake.check_client("POST /oauth2/v1/clients", &headers, &body)
            .map_err(|response| fake.budgeted(response))
    );
    let mut state = fake.state.lock().unwrap();
    let id = format!("0oa{}", random_text(17));
    client["client_id"] = json!(id);
    client["client_id_issued_at"] = json!(now());
    client["client_secret_expires_at"] = json!(0);
    if uses_secret(&client) {
        client["client_secret"] = json!(random_text(40));
    }
    state.clients.insert(id, client.clone());
    drop(state);
    after(
        fault,
        fake.budgeted((StatusCode::CREATED, axum::Json(client)).into_response()),
    )
}

async fn replace(
    State(fake): State<OktaFake>,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let template = "/oauth2/v1/clients/{clientId}";
    let fault = or_answer!(
        fake.admit("PUT", template, &[("clientId", &id)], &query, &headers)
            .await
    );
    let mut client = or_answer!(
        fake.check_client(&format!("PUT {template}"), &headers, &body)
            .map_err(|response| fake.budgeted(response))
    );
    // "You must specify all settings when you update a client app": the
    // fake reads that as every setting that has a default.
    let missing: Vec<&str> = FULL_REPLACE
        .into_iter()
        .filter(|m| client.get(m).is_none())
        .collect();
    if !missing.is_empty() {
        fake.violation(format!("PUT {template}: settings missing: {missing:?}"));
        return fake.budgeted(invalid_metadata("All settings must be specified."));
    }
    let mut state = fake.state.lock().unwrap();
    let Some(existing) = state.clients.get(&id).cloned() else {
        drop(state);
        return fake.budgeted(fake.unknown_client(&id));
    };
    client["client_id"] = json!(id);
    client["client_id_issued_at"] = existing["client_id_issued_at"].clone();
    client["client_secret_expires_at"] = json!(0);
    if uses_secret(&client) {
        client["client_secret"] = existing
            .get("client_secret")
            .cloned()
            .unwrap_or_else(|| json!(random_text(40)));
    }
    state.clients.insert(id, client.clone());
    drop(state);
    after(
        fault,
        fake.budgeted((StatusCode::OK, axum::Json(client)).into_response()),
    )
}

async fn new_secret(
    State(fake): State<OktaFake>,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let template = "/oauth2/v1/clients/{clientId}/lifecycle/newSecret";
    let fault = or_answer!(
        fake.admit("POST", template, &[("clientId", &id)], &query, &headers)
            .await
    );
    if !body.is_empty() {
        fake.violation(format!("POST {template}: the operation takes no body"));
    }
    let mut state = fake.state.lock().unwrap();
    let Some(client) = state.clients.get_mut(&id) else {
        drop(state);
        return fake.budgeted(fake.unknown_client(&id));
    };
    let method = client["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("client_secret_basic");
    if !matches!(method, "client_secret_basic" | "client_secret_post") {
        drop(state);
        return fake.budgeted(invalid_metadata(
            "A new secret applies only to client_secret_basic and client_secret_post clients.",
        ));
    }
    client["client_secret"] = json!(random_text(40));
    let client = client.clone();
    drop(state);
    after(
        fault,
        fake.budgeted((StatusCode::OK, axum::Json(client)).into_response()),
    )
}

async fn read(
    State(fake): State<OktaFake>,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let template = "/oauth2/v1/clients/{clientId}";
    let fault = or_answer!(
        fake.admit("GET", template, &[("clientId", &id)], &query, &headers)
            .await
    );
    let response = match fake.client(&id) {
        Some(client) => (StatusCode::OK, axum::Json(without_secret(client))).into_response(),
        None => fake.unknown_client(&id),
    };
    after(fault, fake.budgeted(response))
}

async fn delete(
    State(fake): State<OktaFake>,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let template = "/oauth2/v1/clients/{clientId}";
    let fault = or_answer!(
        fake.admit("DELETE", template, &[("clientId", &id)], &query, &headers)
            .await
    );
    let removed = fake.state.lock().unwrap().clients.remove(&id);
    let response = match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => fake.unknown_client(&id),
    };
    after(fault, fake.budgeted(response))
}

async fn list(
    State(fake): State<OktaFake>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let fault = or_answer!(
        fake.admit("GET", "/oauth2/v1/clients", &[], &query, &headers)
            .await
    );
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20);
    let prefix = query.get("q").cloned().unwrap_or_default();
    let after_id = query.get("after").cloned().unwrap_or_default();
    let state = fake.state.lock().unwrap();
    let limit = state.max_page_size.map_or(limit, |max| limit.min(max));
    let matching: Vec<&Value> = state
        .clients
        .range::<String, _>((
            std::ops::Bound::Excluded(after_id),
            std::ops::Bound::Unbounded,
        ))
        .map(|(_, c)| c)
        .filter(|c| {
            c["client_name"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&prefix)
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|c| without_secret((*c).clone()))
        .collect();
    let more = matching.len() > limit;
    drop(state);
    let mut response = (StatusCode::OK, axum::Json(page.clone())).into_response();
    if more {
        if let Some(last) = page.last().and_then(|c| c["client_id"].as_str()) {
            let q: String = url::form_urlencoded::byte_serialize(prefix.as_bytes()).collect();
            let link = format!(
                "<{}/oauth2/v1/clients?after={last}&limit={limit}&q={q}>; rel=\"next\"",
                fake.base
            );
            response
                .headers_mut()
                .insert(header::LINK, HeaderValue::from_str(&link).unwrap());
        }
    }
    after(fault, fake.budgeted(response))
}

/// The org authorization server's discovery document: issuer the org URL,
/// endpoints under `{org}/oauth2/v1` (`OrgASOidcMetadata`).
fn org_discovery_document(org: &str) -> Value {
    public::discovery_document(org, org, &format!("{org}/oauth2"))
}

async fn org_discovery(
    State(fake): State<OktaFake>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let template = "/.well-known/openid-configuration";
    let problems = fake.spec.check_request("GET", template, &[], &query, &[]);
    fake.ledger.violations_found(problems);
    axum::Json(org_discovery_document(&fake.base)).into_response()
}

/// The authorization servers' key set (the org's and each custom one's).
async fn keys() -> axum::Json<Value> {
    axum::Json(super::oauth::published_keys())
}

async fn unknown_route(
    State(fake): State<OktaFake>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    fake.violation(format!("{method} {uri}: not in Okta's API"));
    StatusCode::NOT_FOUND.into_response()
}
