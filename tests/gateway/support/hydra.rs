//! A stateful fake of Ory Hydra's admin API (`/admin/clients`), behaving as
//! Hydra v26 documents it, that checks every request against Hydra's contract
//! (`tests/contracts/hydra.json`, from the published OpenAPI document
//! `ory-hydra-v26.2.0-api.json`) and can be
//! told to fail, hang, answer garbage, or commit and then drop the connection.
//! Its public OAuth 2.0 endpoints (`public`) sign users in to the clients
//! the admin API holds and issue, refresh and revoke their tokens.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::contract::{Contract, json_body, judged};
pub use super::faults::Fault;
use super::faults::{Ledger, after, before, or_answer};
use super::oauth::Grants;

// The public OAuth 2.0 endpoints and the login app the tests drive.
mod public;

/// The key a proxy in front of the admin API wants, once told to
/// (`require_api_key`): the gateway's `api_key`, sent as a Bearer token.
pub const API_KEY: &str = "hydra-test-api-key";

#[derive(Default)]
struct FakeState {
    clients: BTreeMap<String, Value>,
    reject_next_with: Option<String>,
    max_page_size: Option<usize>,
    api_key_required: bool,
}

/// A running Hydra fake.
#[derive(Clone)]
pub struct HydraFake {
    pub base: String,
    /// Requests received (create, replace, read, delete, list), violations, faults.
    pub ledger: Ledger,
    state: Arc<Mutex<FakeState>>,
    validator: Arc<jsonschema::Validator>,
    spec: Arc<Contract>,
    /// Sign-ins, codes and tokens of the public endpoints.
    grants: Grants,
}

impl HydraFake {
    /// How many tokens the public endpoints issued that are still active.
    pub fn active_tokens(&self) -> usize {
        self.grants.active_tokens()
    }

    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let spec = Contract::load("hydra");
        let fake = Self {
            base,
            ledger: Ledger::default(),
            state: Arc::new(Mutex::new(FakeState::default())),
            validator: Arc::new(spec.body_validator("oAuth2Client")),
            // Hydra's `ttl.auth_code` is 10 minutes by default; its codes
            // and tokens carry the `ory_ac_`, `ory_at_`, `ory_rt_` prefixes.
            grants: Grants::new(
                std::time::Duration::from_secs(600),
                ["ory_ac_", "ory_at_", "ory_rt_"],
            ),
            spec: Arc::new(spec),
        };
        let document = fake.discovery_document();
        let fits = fake.spec.answer_validator("oidcConfiguration");
        assert!(fits.is_valid(&document), "the fake's discovery document");
        let router = Router::new()
            .route("/admin/clients", get(list).post(create))
            .route("/admin/clients/{id}", get(read).put(replace).delete(delete))
            .route("/.well-known/openid-configuration", get(discovery))
            .route(
                "/.well-known/jwks.json",
                get(|| async { axum::Json(super::oauth::published_keys()) }),
            )
            .route("/oauth2/auth", get(public::authorize))
            .route("/oauth2/token", post(public::token))
            .route("/oauth2/revoke", post(public::revoke))
            .route("/userinfo", get(public::userinfo))
            .route("/_fake/login", post(public::log_in))
            .fallback(unknown_route)
            .method_not_allowed_fallback(unknown_route)
            .layer(middleware::from_fn_with_state(fake.clone(), guard))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        fake
    }

    /// From now on the admin API sits behind a proxy that wants
    /// `Bearer API_KEY`, as an operator may put one in front of Hydra's
    /// unauthenticated admin API (the gateway's `api_key`): other
    /// requests are answered 401 and recorded as violations.
    pub fn require_api_key(&self) {
        self.state.lock().unwrap().api_key_required = true;
    }

    /// Client ids the fake holds.
    pub fn client_ids(&self) -> Vec<String> {
        self.state.lock().unwrap().clients.keys().cloned().collect()
    }

    /// The stored client, as the fake would answer a GET.
    pub fn client(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().clients.get(id).cloned()
    }

    /// Pages hold at most `n` clients, whatever the caller asks for (Hydra
    /// may return fewer than `page_size`; callers must follow `Link`).
    pub fn limit_page_size(&self, n: usize) {
        self.state.lock().unwrap().max_page_size = Some(n);
    }

    /// The next create or replace is refused with this `error_description`.
    pub fn reject_next(&self, reason: &str) {
        self.state.lock().unwrap().reject_next_with = Some(reason.to_owned());
    }

    fn violation(&self, text: String) {
        self.ledger.violation(text);
    }

    /// Records what in a request's operation, path and query breaks Hydra's
    /// document; `id` is the client its path names, if it names one.
    fn check_operation(&self, method: &Method, uri: &Uri, id: Option<&str>) {
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let (template, path) = match id {
            Some(id) => ("/admin/clients/{id}", vec![("id", id)]),
            None => ("/admin/clients", Vec::new()),
        };
        let problems = self
            .spec
            .check_request(method.as_str(), template, &path, &query, &[]);
        self.ledger.violations_found(problems);
    }

    /// Checks a request body against the oAuth2Client schema.
    fn check_body(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Option<Value> {
        let here = format!("{method} {uri}");
        let value = match json_body(headers, body) {
            Ok(value) => value,
            Err(problem) => {
                self.violation(format!("{here}: {problem}"));
                return None;
            }
        };
        let errors = Contract::body_problems(&self.validator, &here, &value);
        judged(&self.ledger, value, errors, |_| ()).ok()
    }
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": error,
            "error_description": description,
            "status_code": status.as_u16(),
        })),
    )
        .into_response()
}

/// The proxy in front of the admin API, once `require_api_key` was called.
async fn guard(State(fake): State<HydraFake>, request: Request, next: Next) -> Response {
    let admin = request.uri().path().starts_with("/admin/");
    let required = admin && fake.state.lock().unwrap().api_key_required;
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if required && presented != Some(format!("Bearer {API_KEY}").as_str()) {
        fake.violation(format!(
            "{} {}: no Bearer API key",
            request.method(),
            request.uri()
        ));
        return error(
            StatusCode::UNAUTHORIZED,
            "request_unauthorized",
            "The request could not be authorized",
        );
    }
    next.run(request).await
}

/// Applies a fault before the work; `Ok(after)` says what to do after it.
async fn before_work(fake: &HydraFake, method: &str) -> Result<Option<Fault>, Response> {
    before(fake.ledger.arrive(method), |status| match status {
        StatusCode::TOO_MANY_REQUESTS => error(status, "rate_limited", "slow down"),
        _ => error(status, "server_error", "injected failure"),
    })
    .await
}

fn now() -> String {
    "2026-11-23T00:00:00Z".to_owned()
}

/// The common start of create and replace (of client `id`): the operation
/// check, a fault, the schema check, and a queued refusal. `Ok` carries the
/// fault to apply after the work, and the body.
async fn accept_write(
    fake: &HydraFake,
    id: Option<&str>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Option<Fault>, Value), Response> {
    fake.check_operation(method, uri, id);
    let fault = before_work(fake, method.as_str()).await?;
    let Some(client) = fake.check_body(method, uri, headers, body) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body breaks the oAuth2Client schema",
        ));
    };
    if let Some(reason) = fake.state.lock().unwrap().reject_next_with.take() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            &reason,
        ));
    }
    Ok((fault, client))
}

async fn create(
    State(fake): State<HydraFake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, mut client) =
        or_answer!(accept_write(&fake, None, &method, &uri, &headers, &body).await);
    let id = match client["client_id"].as_str() {
        Some(id) => id.to_owned(),
        None => format!("generated-{}", rand::random::<u64>()),
    };
    let mut state = fake.state.lock().unwrap();
    if state.clients.contains_key(&id) {
        return error(
            StatusCode::CONFLICT,
            "invalid_request",
            "Unable to insert or update resource because a resource with that value exists already",
        );
    }
    client["client_id"] = json!(id);
    client["created_at"] = json!(now());
    client["updated_at"] = json!(now());
    client["client_secret_expires_at"] = json!(0);
    state.clients.insert(id, client.clone());
    drop(state);
    after(
        fault,
        (StatusCode::CREATED, axum::Json(client)).into_response(),
    )
}

async fn replace(
    State(fake): State<HydraFake>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, mut client) =
        or_answer!(accept_write(&fake, Some(&id), &method, &uri, &headers, &body).await);
    let mut state = fake.state.lock().unwrap();
    let Some(existing) = state.clients.get(&id).cloned() else {
        return error(StatusCode::NOT_FOUND, "Unable to locate the resource", "");
    };
    if client.get("client_id").and_then(Value::as_str) != Some(id.as_str()) {
        drop(state);
        fake.violation(format!("PUT {uri}: body client_id differs from the path"));
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id mismatch",
        );
    }
    // Hydra keeps the old secret when none is sent.
    if client.get("client_secret").is_none() {
        if let Some(secret) = existing.get("client_secret") {
            client["client_secret"] = secret.clone();
        }
    }
    client["created_at"] = existing["created_at"].clone();
    client["updated_at"] = json!(now());
    client["client_secret_expires_at"] = json!(0);
    state.clients.insert(id, client.clone());
    drop(state);
    after(fault, (StatusCode::OK, axum::Json(client)).into_response())
}

async fn read(
    State(fake): State<HydraFake>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
) -> Response {
    fake.check_operation(&method, &uri, Some(&id));
    let fault = or_answer!(before_work(&fake, "GET").await);
    let client = fake.client(&id);
    let response = match client {
        Some(mut client) => {
            // The secret is never read back.
            if let Some(members) = client.as_object_mut() {
                members.remove("client_secret");
            }
            (StatusCode::OK, axum::Json(client)).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Unable to locate the resource", ""),
    };
    after(fault, response)
}

async fn delete(
    State(fake): State<HydraFake>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
) -> Response {
    fake.check_operation(&method, &uri, Some(&id));
    let fault = or_answer!(before_work(&fake, "DELETE").await);
    let removed = fake.state.lock().unwrap().clients.remove(&id);
    let response = match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": { "code": 404, "status": "Not Found", "message": "Unable to locate the resource" } })),
        )
            .into_response(),
    };
    after(fault, response)
}

async fn list(
    State(fake): State<HydraFake>,
    Query(query): Query<BTreeMap<String, String>>,
    method: Method,
    uri: Uri,
) -> Response {
    fake.check_operation(&method, &uri, None);
    let page_size = match query.get("page_size").map(|s| s.parse::<usize>()) {
        None => 250,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            fake.violation(format!("GET {uri}: page_size outside 1..=1000"));
            return error(StatusCode::BAD_REQUEST, "invalid_request", "page_size");
        }
    };
    let after_token = query.get("page_token").cloned().unwrap_or_default();
    let state = fake.state.lock().unwrap();
    let page_size = state
        .max_page_size
        .map_or(page_size, |max| page_size.min(max));
    let page: Vec<Value> = state
        .clients
        .range::<String, _>((
            std::ops::Bound::Excluded(after_token),
            std::ops::Bound::Unbounded,
        ))
        .take(page_size)
        .map(|(_, c)| {
            let mut c = c.clone();
            if let Some(m) = c.as_object_mut() {
                m.remove("client_secret");
            }
            c
        })
        .collect();
    let more = page.len() == page_size
        && page
            .last()
            .and_then(|c| c["client_id"].as_str())
            .is_some_and(|last| {
                state
                    .clients
                    .range::<str, _>((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded))
                    .next()
                    .is_some()
            });
    let mut response = (StatusCode::OK, axum::Json(page.clone())).into_response();
    if more {
        if let Some(last) = page.last().and_then(|c| c["client_id"].as_str()) {
            let link =
                format!("</admin/clients?page_size={page_size}&page_token={last}>; rel=\"next\"");
            response
                .headers_mut()
                .insert(header::LINK, header::HeaderValue::from_str(&link).unwrap());
        }
    }
    response
}

async fn discovery(
    State(fake): State<HydraFake>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    fake.ledger.violations_found(fake.spec.check_request(
        "GET",
        "/.well-known/openid-configuration",
        &[],
        &query,
        &[],
    ));
    axum::Json(fake.discovery_document()).into_response()
}

async fn unknown_route(State(fake): State<HydraFake>, method: Method, uri: Uri) -> Response {
    fake.violation(format!("{method} {uri}: not in Hydra's API"));
    StatusCode::NOT_FOUND.into_response()
}
