//! A stateful fake of BillForward's Clients API (`/clients`) that behaves as
//! its SDK documents describe: answers in the paged envelope, errors as
//! BFError, the record named by the body on `PUT /clients`, no DELETE, and
//! retired clients (`deleted: true`) still retrievable.
//!
//! No OpenAPI file exists for it: its contract (`tests/contracts/billforward.json`)
//! is distilled from the SDK's `Client.md` and `ClientsApi.md`. Every write is
//! checked against the `Client` model (members, types, which are required and
//! which are read-only), and every query against the operation's parameters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::contract::{Contract, json_body, judged};
pub use super::faults::Fault;
use super::faults::{Ledger, after, before, or_answer};

/// The private API token the fake accepts (Bearer).
pub const API_TOKEN: &str = "billforward-test-token";

struct FakeState {
    /// By client id, in creation order of the ids' first insertion.
    clients: BTreeMap<String, Value>,
    order: Vec<String>,
    max_records: Option<usize>,
    hide_secrets: bool,
    ignore_offset: bool,
}

/// A running BillForward fake.
#[derive(Clone)]
pub struct BillForwardFake {
    pub base: String,
    /// Requests received, violations, faults.
    pub ledger: Ledger,
    state: Arc<Mutex<FakeState>>,
    contract: Arc<Contract>,
    validator: Arc<jsonschema::Validator>,
}

fn envelope(results: Vec<Value>, offset: usize, requested: usize) -> Value {
    json!({
        "nextPage": "",
        "currentPage": offset.checked_div(requested).unwrap_or(0),
        "currentOffset": offset,
        "recordsRequested": requested,
        "recordsReturned": results.len(),
        "executionTime": 3,
        "results": results,
    })
}

fn bf_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "errorType": error_type,
            "errorMessage": message,
            "errorCode": 0,
            "errorParameters": [],
        })),
    )
        .into_response()
}

impl BillForwardFake {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let contract = Contract::load("billforward");
        let fake = Self {
            base,
            ledger: Ledger::default(),
            state: Arc::new(Mutex::new(FakeState {
                clients: BTreeMap::new(),
                order: Vec::new(),
                max_records: None,
                hide_secrets: false,
                ignore_offset: false,
            })),
            validator: Arc::new(contract.body_validator("Client")),
            contract: Arc::new(contract),
        };
        let router = Router::new()
            .route("/v1/clients", get(list).post(create).put(update))
            .route("/v1/clients/{id}", get(read))
            .fallback(unknown_route)
            .method_not_allowed_fallback(unknown_route)
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        fake
    }

    /// The stored record of `id`, retired or not.
    pub fn client(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().clients.get(id).cloned()
    }

    /// Ids of clients not retired.
    pub fn active_ids(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .clients
            .iter()
            .filter(|(_, c)| c["deleted"] != true)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Reads leave `clientSecret` out (an account whose secrets are masked).
    pub fn hide_secrets(&self) {
        self.state.lock().unwrap().hide_secrets = true;
    }

    /// Listing always answers the first page, whatever `offset` says (a
    /// broken deployment of a Spring-style API).
    pub fn ignore_offset(&self) {
        self.state.lock().unwrap().ignore_offset = true;
    }

    /// Pages hold at most `n` clients, whatever the caller asks for.
    pub fn limit_page_size(&self, n: usize) {
        self.state.lock().unwrap().max_records = Some(n);
    }

    /// Removes a record behind the gateway's back.
    pub fn forget(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        state.clients.remove(id);
        state.order.retain(|o| o != id);
    }

    /// Counting, the credential, and a fault.
    async fn admit(
        &self,
        here: &str,
        headers: &HeaderMap,
        problems: Vec<String>,
    ) -> Result<Option<Fault>, Response> {
        let authorized = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {API_TOKEN}").as_str());
        let fault = self
            .ledger
            .arrive(here.split(' ').next().unwrap_or_default());
        self.ledger.violations_found(problems);
        if !authorized {
            self.ledger
                .violation(format!("{here}: no Bearer API token"));
            return Err(bf_error(
                StatusCode::UNAUTHORIZED,
                "PermissionsError",
                "Authentication required",
            ));
        }
        before(fault, |status| {
            bf_error(status, "ServerError", "injected failure")
        })
        .await
    }

    /// A create or update body, checked against the Client model.
    fn check_body(&self, here: &str, headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
        let client = json_body(headers, body).map_err(|problem| {
            self.ledger.violation(format!("{here}: {problem}"));
            bf_error(StatusCode::BAD_REQUEST, "ValidationError", "malformed body")
        })?;
        let problems = Contract::body_problems(&self.validator, here, &client);
        judged(&self.ledger, client, problems, |text| {
            bf_error(StatusCode::BAD_REQUEST, "ValidationError", text)
        })
    }
}

fn now() -> String {
    "2026-11-23T00:00:00Z".to_owned()
}

fn query_of(uri: &Uri) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn create(
    State(fake): State<BillForwardFake>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = "POST /clients";
    let problems = fake
        .contract
        .check_request("POST", "/clients", &[], &query_of(&uri), &[]);
    let fault = or_answer!(fake.admit(here, &headers, problems).await);
    let mut client = or_answer!(fake.check_body(here, &headers, &body));
    let id = client["clientId"]
        .as_str()
        .map_or_else(|| format!("bf-{}", rand::random::<u32>()), str::to_owned);
    let mut state = fake.state.lock().unwrap();
    if state.clients.contains_key(&id) {
        return bf_error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            &format!("A client with ID {id} already exists"),
        );
    }
    client["clientId"] = json!(id);
    client["created"] = json!(now());
    client["updated"] = json!(now());
    client["changedBy"] = json!("api-user");
    if client.get("deleted").is_none() {
        client["deleted"] = json!(false);
    }
    state.clients.insert(id.clone(), client.clone());
    state.order.push(id);
    drop(state);
    after(
        fault,
        axum::Json(envelope(vec![client], 0, 1)).into_response(),
    )
}

async fn update(
    State(fake): State<BillForwardFake>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = "PUT /clients";
    let problems = fake
        .contract
        .check_request("PUT", "/clients", &[], &query_of(&uri), &[]);
    let fault = or_answer!(fake.admit(here, &headers, problems).await);
    let mut client = or_answer!(fake.check_body(here, &headers, &body));
    let Some(id) = client["clientId"].as_str().map(str::to_owned) else {
        fake.ledger
            .violation(format!("{here}: the body names no clientId"));
        return bf_error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "clientId is required",
        );
    };
    let mut state = fake.state.lock().unwrap();
    let Some(existing) = state.clients.get(&id).cloned() else {
        return bf_error(
            StatusCode::NOT_FOUND,
            "ValidationError",
            &format!("No client with ID {id}"),
        );
    };
    client["created"] = existing["created"].clone();
    client["updated"] = json!(now());
    client["changedBy"] = json!("api-user");
    state.clients.insert(id, client.clone());
    drop(state);
    after(
        fault,
        axum::Json(envelope(vec![client], 0, 1)).into_response(),
    )
}

async fn read(
    State(fake): State<BillForwardFake>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let here = "GET /clients/{client-ID}";
    let problems = fake.contract.check_request(
        "GET",
        "/clients/{client-ID}",
        &[("client-ID", &id)],
        &query_of(&uri),
        &[],
    );
    let fault = or_answer!(fake.admit(here, &headers, problems).await);
    let hide = fake.state.lock().unwrap().hide_secrets;
    let response = match fake.client(&id) {
        Some(mut client) => {
            if let Some(members) = client.as_object_mut().filter(|_| hide) {
                members.remove("clientSecret");
            }
            axum::Json(envelope(vec![client], 0, 1)).into_response()
        }
        None => bf_error(
            StatusCode::NOT_FOUND,
            "ValidationError",
            &format!("No client with ID {id}"),
        ),
    };
    after(fault, response)
}

async fn list(
    State(fake): State<BillForwardFake>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let here = "GET /clients";
    let problems = fake
        .contract
        .check_request("GET", "/clients", &[], &query, &[]);
    let fault = or_answer!(fake.admit(here, &headers, problems).await);
    let offset: usize = query
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let records: usize = query
        .get("records")
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let include_retired = query.get("include_retired").is_none_or(|v| v == "true");
    let state = fake.state.lock().unwrap();
    let offset = if state.ignore_offset { 0 } else { offset };
    let records = state.max_records.map_or(records, |max| records.min(max));
    let results: Vec<Value> = state
        .order
        .iter()
        .filter_map(|id| state.clients.get(id))
        .filter(|c| include_retired || c["deleted"] != true)
        .skip(offset)
        .take(records)
        .cloned()
        .collect();
    drop(state);
    after(
        fault,
        axum::Json(envelope(results, offset, records)).into_response(),
    )
}

async fn unknown_route(State(fake): State<BillForwardFake>, method: Method, uri: Uri) -> Response {
    fake.ledger
        .violation(format!("{method} {uri}: not in BillForward's Clients API"));
    bf_error(StatusCode::NOT_FOUND, "ValidationError", "no such resource")
}
