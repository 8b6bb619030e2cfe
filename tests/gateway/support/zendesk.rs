//! A stateful fake of Zendesk's OAuth clients API (`/api/v2/oauth/clients`)
//! that behaves as Zendesk documents it: numeric record ids, a caller-chosen
//! unique `identifier`, a secret shown in full only on create and
//! `generate_secret` (truncated elsewhere), cursor paging with `page[size]`
//! and `page[after]`, `{"client": …}` envelopes, `RecordInvalid` and
//! `RecordNotFound` errors, and 429 with `Retry-After` and a text body.
//!
//! Every request is checked against Zendesk's contract
//! (`tests/contracts/zendesk.json`, from Zendesk's OpenAPI document
//! `zendesk-support-oas.yaml`): operation and parameters, and,
//! since the document gives no request body schema, the body's `client`
//! against `OAuthClientObject` with its read-only members refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::contract::{Contract, json_body, judged};
pub use super::faults::Fault;
use super::faults::{Ledger, after, before, or_answer};

/// The admin whose API token the fake accepts.
pub const EMAIL: &str = "admin@example.com";
/// The API token the fake accepts.
pub const API_TOKEN: &str = "zendesk-test-api-token";
/// The OAuth access token of an admin the fake accepts as Bearer.
pub const ACCESS_TOKEN: &str = "zendesk-test-access-token";
/// Query parameters of Zendesk's cursor pagination, documented in its
/// pagination reference rather than per operation.
const CURSOR_PARAMETERS: [&str; 2] = ["page[size]", "page[after]"];

#[derive(Default)]
struct FakeState {
    clients: BTreeMap<i64, Value>,
    next_id: i64,
    max_page_size: Option<usize>,
}

/// A running Zendesk fake.
#[derive(Clone)]
pub struct ZendeskFake {
    pub base: String,
    /// Requests received, violations, faults.
    pub ledger: Ledger,
    state: Arc<Mutex<FakeState>>,
    spec: Arc<Contract>,
    validator: Arc<jsonschema::Validator>,
}

fn secret() -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// How reads show a secret: the start of it.
fn masked(mut client: Value) -> Value {
    if let Some(secret) = client["secret"].as_str() {
        client["secret"] = json!(format!("{}...", &secret[..8]));
    }
    client
}

impl ZendeskFake {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let spec = Contract::load("zendesk");
        let fake = Self {
            base,
            ledger: Ledger::default(),
            state: Arc::new(Mutex::new(FakeState {
                next_id: 223_443,
                ..FakeState::default()
            })),
            validator: Arc::new(spec.body_validator("OAuthClientObject")),
            spec: Arc::new(spec),
        };
        let router = Router::new()
            .route("/api/v2/oauth/clients", get(list).post(create))
            .route(
                "/api/v2/oauth/clients/{id}",
                get(read).put(update).delete(delete),
            )
            .route(
                "/api/v2/oauth/clients/{id}/generate_secret",
                put(generate_secret),
            )
            .fallback(unknown_route)
            .method_not_allowed_fallback(unknown_route)
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        fake
    }

    /// The record whose identifier is `identifier`, secret in full.
    pub fn client(&self, identifier: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .clients
            .values()
            .find(|c| c["identifier"] == identifier)
            .cloned()
    }

    /// Identifiers the fake holds.
    pub fn identifiers(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .clients
            .values()
            .filter_map(|c| c["identifier"].as_str().map(str::to_owned))
            .collect()
    }

    /// Removes a record behind the gateway's back.
    pub fn forget(&self, identifier: &str) {
        self.state
            .lock()
            .unwrap()
            .clients
            .retain(|_, c| c["identifier"] != identifier);
    }

    /// Pages hold at most `n` clients, whatever the caller asks for.
    pub fn limit_page_size(&self, n: usize) {
        self.state.lock().unwrap().max_page_size = Some(n);
    }

    /// Counting, the credential, the document's operation and parameters,
    /// and a fault.
    async fn admit(
        &self,
        method: &Method,
        template: &str,
        id: Option<&str>,
        query: &BTreeMap<String, String>,
        headers: &HeaderMap,
    ) -> Result<Option<Fault>, Response> {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}/token:{API_TOKEN}"))
        );
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let authorized = presented == expected || presented == format!("Bearer {ACCESS_TOKEN}");
        let path: Vec<(&str, &str)> = id.map(|id| ("oauth_client_id", id)).into_iter().collect();
        let problems =
            self.spec
                .check_request(method.as_str(), template, &path, query, &CURSOR_PARAMETERS);
        let fault = self.ledger.arrive(method.as_str());
        self.ledger.violations_found(problems);
        if !authorized {
            self.violation(format!(
                "{method} {template}: not {{email}}/token:{{api_token}} Basic auth"
            ));
        }
        if !authorized {
            return Err((
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "error": "Couldn't authenticate you" })),
            )
                .into_response());
        }
        before(fault, |status| match status {
            StatusCode::TOO_MANY_REQUESTS => (
                status,
                [(header::CONTENT_TYPE, "text/plain")],
                "Rate limit for oauth clients exceeded",
            )
                .into_response(),
            _ => (status, axum::Json(json!({ "error": "InternalError" }))).into_response(),
        })
        .await
    }

    /// The `client` of a `{"client": …}` body, checked against the model.
    fn check_body(&self, here: &str, headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
        let envelope = json_body(headers, body).map_err(|problem| {
            self.violation(format!("{here}: {problem}"));
            record_invalid("client", "is missing")
        })?;
        let client = envelope.as_object().and_then(|members| {
            (members.len() == 1)
                .then(|| members.get("client").cloned())
                .flatten()
        });
        let Some(client) = client else {
            self.violation(format!(
                "{here}: body is not a JSON {{\"client\": …}} envelope"
            ));
            return Err(record_invalid("client", "is missing"));
        };
        let mut problems = Contract::body_problems(&self.validator, here, &client);
        if !matches!(
            client["kind"].as_str(),
            None | Some("public" | "confidential")
        ) {
            problems.push(format!("{here}: kind must be public or confidential"));
        }
        judged(&self.ledger, client, problems, |text| {
            record_invalid("client", text)
        })
    }

    fn violation(&self, text: String) {
        self.ledger.violation(text);
    }

    /// The record id of a path, which the document types as an integer.
    fn record_id(&self, id: &str) -> Option<i64> {
        id.parse().ok()
    }
}

fn record_invalid(field: &str, description: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": { field: [{ "description": format!("{field}: {description}") }] },
        })),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": "RecordNotFound", "description": "Not found" })),
    )
        .into_response()
}

fn now() -> String {
    "2026-11-23T00:00:00Z".to_owned()
}

async fn create(
    State(fake): State<ZendeskFake>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let template = "/api/v2/oauth/clients";
    let fault = or_answer!(fake.admit(&method, template, None, &query, &headers).await);
    let mut client = or_answer!(fake.check_body(&format!("POST {template}"), &headers, &body));
    let mut state = fake.state.lock().unwrap();
    if state
        .clients
        .values()
        .any(|c| c["identifier"] == client["identifier"])
    {
        return record_invalid("identifier", "has already been taken");
    }
    let id = state.next_id;
    state.next_id += 1;
    client["id"] = json!(id);
    client["secret"] = json!(secret());
    client["created_at"] = json!(now());
    client["updated_at"] = json!(now());
    client["global"] = json!(false);
    client["url"] = json!(format!("{}/api/v2/oauth/clients/{id}.json", fake.base));
    if client.get("kind").is_none() {
        client["kind"] = json!("confidential");
    }
    state.clients.insert(id, client.clone());
    drop(state);
    after(
        fault,
        (StatusCode::CREATED, axum::Json(json!({ "client": client }))).into_response(),
    )
}

async fn update(
    State(fake): State<ZendeskFake>,
    Path(id): Path<String>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let template = "/api/v2/oauth/clients/{oauth_client_id}";
    let fault = or_answer!(
        fake.admit(&method, template, Some(&id), &query, &headers)
            .await
    );
    let changes = or_answer!(fake.check_body(&format!("PUT {template}"), &headers, &body));
    let mut state = fake.state.lock().unwrap();
    let Some(record) = fake
        .record_id(&id)
        .and_then(|id| state.clients.get(&id))
        .cloned()
    else {
        return not_found();
    };
    let taken = state
        .clients
        .values()
        .any(|c| c["id"] != record["id"] && c["identifier"] == changes["identifier"]);
    if taken {
        return record_invalid("identifier", "has already been taken");
    }
    let mut updated = record;
    for (key, value) in changes.as_object().into_iter().flatten() {
        updated[key] = value.clone();
    }
    updated["updated_at"] = json!(now());
    if let Some(id) = updated["id"].as_i64() {
        state.clients.insert(id, updated.clone());
    }
    drop(state);
    after(
        fault,
        (
            StatusCode::OK,
            axum::Json(json!({ "client": masked(updated) })),
        )
            .into_response(),
    )
}

async fn generate_secret(
    State(fake): State<ZendeskFake>,
    Path(id): Path<String>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let template = "/api/v2/oauth/clients/{oauth_client_id}/generate_secret";
    let fault = or_answer!(
        fake.admit(&method, template, Some(&id), &query, &headers)
            .await
    );
    if !body.is_empty() {
        fake.violation(format!("PUT {template}: the operation takes no body"));
    }
    let mut state = fake.state.lock().unwrap();
    let Some(client) = fake
        .record_id(&id)
        .and_then(|id| state.clients.get_mut(&id))
    else {
        return not_found();
    };
    client["secret"] = json!(secret());
    let client = client.clone();
    drop(state);
    after(
        fault,
        (StatusCode::OK, axum::Json(json!({ "client": client }))).into_response(),
    )
}

async fn read(
    State(fake): State<ZendeskFake>,
    Path(id): Path<String>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let template = "/api/v2/oauth/clients/{oauth_client_id}";
    let fault = or_answer!(
        fake.admit(&method, template, Some(&id), &query, &headers)
            .await
    );
    let client = fake
        .record_id(&id)
        .and_then(|id| fake.state.lock().unwrap().clients.get(&id).cloned());
    let response = match client {
        Some(client) => axum::Json(json!({ "client": masked(client) })).into_response(),
        None => not_found(),
    };
    after(fault, response)
}

async fn delete(
    State(fake): State<ZendeskFake>,
    Path(id): Path<String>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let template = "/api/v2/oauth/clients/{oauth_client_id}";
    let fault = or_answer!(
        fake.admit(&method, template, Some(&id), &query, &headers)
            .await
    );
    let removed = fake
        .record_id(&id)
        .and_then(|id| fake.state.lock().unwrap().clients.remove(&id));
    let response = match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(),
    };
    after(fault, response)
}

async fn list(
    State(fake): State<ZendeskFake>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let template = "/api/v2/oauth/clients";
    let fault = or_answer!(fake.admit(&method, template, None, &query, &headers).await);
    let size = match query.get("page[size]").map(|s| s.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            fake.violation(format!("GET {template}: page[size] outside 1..=100"));
            return record_invalid("page[size]", "must be between 1 and 100");
        }
    };
    let after_id: i64 = match query.get("page[after]").map(|c| c.parse()) {
        None => 0,
        Some(Ok(id)) => id,
        Some(Err(_)) => {
            fake.violation(format!(
                "GET {template}: page[after] is not a cursor the fake gave"
            ));
            return record_invalid("page[after]", "is invalid");
        }
    };
    let state = fake.state.lock().unwrap();
    let size = state.max_page_size.map_or(size, |max| size.min(max));
    let rest: Vec<Value> = state
        .clients
        .range(after_id + 1..)
        .map(|(_, c)| masked(c.clone()))
        .collect();
    drop(state);
    let page: Vec<Value> = rest.iter().take(size).cloned().collect();
    let has_more = rest.len() > size;
    let cursor = page
        .last()
        .and_then(|c| c["id"].as_i64())
        .map(|id| id.to_string());
    let next = cursor.as_ref().filter(|_| has_more).map(|c| {
        format!(
            "{}/api/v2/oauth/clients?page[size]={size}&page[after]={c}",
            fake.base
        )
    });
    after(
        fault,
        axum::Json(json!({
            "clients": page,
            "meta": { "has_more": has_more, "after_cursor": cursor, "before_cursor": null },
            "links": { "next": next, "prev": null },
        }))
        .into_response(),
    )
}

async fn unknown_route(State(fake): State<ZendeskFake>, method: Method, uri: Uri) -> Response {
    fake.violation(format!(
        "{method} {uri}: not in Zendesk's OAuth clients API"
    ));
    not_found()
}
