//! A stateful fake of BillForward's Clients API (`/clients`) that behaves as
//! its SDK documents describe: answers in the paged envelope, errors as
//! BFError, the record named by the body on `PUT /clients`, no DELETE, and
//! retired clients (`deleted: true`) still retrievable.
//!
//! No OpenAPI file exists for it, so every write is checked against the
//! `Client` model read from `shared/specs/billforward/Client.md` (members,
//! types, which are required and which are read-only), and every query
//! against the parameter tables of `ClientsApi.md`.

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

pub use super::faults::Fault;
use super::faults::{Ledger, after, before, or_answer};
use super::openapi::{json_body, judged};

/// The private API token the fake accepts (Bearer).
pub const API_TOKEN: &str = "billforward-test-token";

/// One member of the Client model.
#[derive(Debug, Clone)]
struct Member {
    wire: String,
    kind: String,
    required: bool,
    read_only: bool,
}

/// One documented query parameter: name and type.
type Parameter = (String, String);

struct Model {
    members: Vec<Member>,
    list_parameters: Vec<Parameter>,
    get_parameters: Vec<Parameter>,
}

fn specs_dir() -> String {
    format!("{}/../shared/specs/billforward", env!("CARGO_MANIFEST_DIR"))
}

/// The wire name of an SDK member name (`organization_id` is spelt `organizationID`).
fn wire_name(snake: &str) -> String {
    if snake == "organization_id" {
        return "organizationID".into();
    }
    let mut wire = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            wire.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            wire.push(c);
        }
    }
    wire
}

/// The rows of the Markdown table after `heading` (first one when empty):
/// the cells of each, with `*`, `[`, `]` and link targets stripped.
fn table_rows(text: &str, heading: &str) -> Vec<Vec<String>> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("`{heading}` not found"));
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text[start..].lines() {
        if line.starts_with("Name |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("---") || line.starts_with("-----") {
            continue;
        }
        if !line.contains('|') {
            if rows.is_empty() {
                continue;
            }
            break;
        }
        rows.push(
            line.split('|')
                .map(|cell| {
                    let cell = cell.split("](").next().unwrap_or_default();
                    cell.replace(['*', '[', ']'], "").trim().to_owned()
                })
                .collect(),
        );
    }
    rows
}

impl Model {
    fn load() -> Self {
        let client =
            std::fs::read_to_string(format!("{}/Client.md", specs_dir())).unwrap_or_else(|e| {
                panic!(
                    "Client.md is expected in {} (shared/ beside the clone): {e}",
                    specs_dir()
                )
            });
        let members = table_rows(&client, "## Properties")
            .into_iter()
            .map(|cells| {
                let verbs = cells[2].split("verbs").nth(1).unwrap_or_default();
                Member {
                    wire: wire_name(&cells[0]),
                    kind: cells[1].clone(),
                    // Neither `[optional]` nor `[default to …]`: the caller must send it.
                    required: cells.get(3).is_none_or(|notes| notes.is_empty()),
                    read_only: !verbs.contains("POST"),
                }
            })
            .collect();
        let api = std::fs::read_to_string(format!("{}/ClientsApi.md", specs_dir())).unwrap();
        let parameters = |section: &str| -> Vec<Parameter> {
            let text = &api[api.find(section).unwrap()..];
            table_rows(text, "### Parameters")
                .into_iter()
                .map(|cells| (cells[0].clone(), cells[1].clone()))
                .collect()
        };
        Self {
            members,
            list_parameters: parameters("# **get_all_clients**"),
            get_parameters: parameters("# **get_client_by_id**"),
        }
    }

    /// What in a create or update body breaks the Client model.
    fn problems(&self, here: &str, body: &Value) -> Vec<String> {
        let Some(members) = body.as_object() else {
            return vec![format!("{here}: body is not a JSON object")];
        };
        let mut problems = Vec::new();
        for (name, value) in members {
            let Some(member) = self.members.iter().find(|m| &m.wire == name) else {
                problems.push(format!("{here}: `{name}` is not a member of Client"));
                continue;
            };
            if member.read_only {
                problems.push(format!("{here}: `{name}` is read-only"));
            }
            let fits = match member.kind.as_str() {
                "str" | "datetime" => value.is_string(),
                "int" => value.is_i64(),
                "bool" => value.is_boolean(),
                _ => true,
            };
            if !fits {
                problems.push(format!("{here}: `{name}` must be {}", member.kind));
            }
        }
        for member in self.members.iter().filter(|m| m.required) {
            if !members.contains_key(&member.wire) {
                problems.push(format!("{here}: required `{}` missing", member.wire));
            }
        }
        problems
    }

    /// What in a query breaks the operation's parameter table.
    fn query_problems(
        here: &str,
        parameters: &[Parameter],
        query: &[(String, String)],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in query {
            match parameters.iter().find(|(p, _)| p == name) {
                None => problems.push(format!("{here}: undocumented query parameter `{name}`")),
                Some((_, kind)) => {
                    let fits = match kind.as_str() {
                        "int" => value.parse::<u64>().is_ok(),
                        "bool" => matches!(value.as_str(), "true" | "false"),
                        _ => true,
                    };
                    if !fits {
                        problems.push(format!("{here}: `{name}={value}` is not {kind}"));
                    }
                }
            }
        }
        problems
    }
}

struct FakeState {
    /// By client id, in creation order of the ids' first insertion.
    clients: BTreeMap<String, Value>,
    order: Vec<String>,
    max_records: Option<usize>,
    hide_secrets: bool,
}

/// A running BillForward fake.
#[derive(Clone)]
pub struct BillForwardFake {
    pub base: String,
    /// Requests received, violations, faults.
    pub ledger: Ledger,
    state: Arc<Mutex<FakeState>>,
    model: Arc<Model>,
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
        let fake = Self {
            base,
            ledger: Ledger::default(),
            state: Arc::new(Mutex::new(FakeState {
                clients: BTreeMap::new(),
                order: Vec::new(),
                max_records: None,
                hide_secrets: false,
            })),
            model: Arc::new(Model::load()),
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
        let fault = self.ledger.arrive();
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
        let problems = self.model.problems(here, &client);
        judged(&self.ledger, client, problems, |text| {
            bf_error(StatusCode::BAD_REQUEST, "ValidationError", text)
        })
    }
}

fn now() -> String {
    "2026-11-23T00:00:00Z".to_owned()
}

fn pairs(uri: &Uri) -> Vec<(String, String)> {
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
    let problems = Model::query_problems(here, &[], &pairs(&uri));
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
    let problems = Model::query_problems(here, &[], &pairs(&uri));
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
    let problems = Model::query_problems(here, &fake.model.get_parameters, &pairs(&uri));
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
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let here = "GET /clients";
    let problems = Model::query_problems(here, &fake.model.list_parameters, &pairs(&uri));
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
