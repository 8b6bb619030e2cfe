//! OTLP trace export (`[log] otlp_endpoint`), against a small OTLP/HTTP
//! receiver: the gateway's binary runs as a process of its own (the
//! `tracing` subscriber is one per process), behind the Hydra fake, so
//! that a registration calls the provider.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::hydra::HydraFake;
use crate::support::{
    ServerProcess, binary, free_port, id_of, token_of, uri_of, web_client, write_hydra_config,
};

/// A caller's trace, as its `traceparent` names it.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The token an app revokes through the front.
const REVOKED_TOKEN: &str = "ory_at_a-token-no-span-may-hold";

/// Receives OTLP/HTTP exports (`POST /v1/traces`, protobuf) and keeps each
/// body as it came and decoded.
struct Receiver {
    base: String,
    bodies: Arc<Mutex<Vec<Bytes>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                // Refuse what is not an export, as a collector would.
                if ExportTraceServiceRequest::decode(body.clone()).is_err() {
                    return Err(axum::http::StatusCode::BAD_REQUEST);
                }
                kept.lock().unwrap().push(body);
                let answer = ExportTraceServiceResponse::default().encode_to_vec();
                Ok(([(CONTENT_TYPE, "application/x-protobuf")], answer))
            }),
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, bodies, task }
    }

    /// Every export body received so far.
    fn bodies(&self) -> Vec<Bytes> {
        self.bodies.lock().unwrap().clone()
    }

    /// Every span received so far, with its service's name.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for body in self.bodies() {
            let export = ExportTraceServiceRequest::decode(body).unwrap();
            for resource_spans in export.resource_spans {
                let attributes = resource_spans.resource.unwrap_or_default().attributes;
                let service = text_in(&attributes, "service.name").unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
                }
            }
        }
        spans
    }

    /// Waits up to 10 s for spans that `done` accepts; the spans then.
    async fn spans_when(&self, done: impl Fn(&[(String, Span)]) -> bool) -> Vec<(String, Span)> {
        for _ in 0..200 {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the spans did not arrive: {:#?}", self.spans());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The string value of attribute `key` among `attributes`.
fn text_in(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
        .and_then(|value| match value {
            AnyValue::StringValue(text) => Some(text.clone()),
            _ => None,
        })
}

fn text(span: &Span, key: &str) -> Option<String> {
    text_in(&span.attributes, key)
}

fn number(span: &Span, key: &str) -> Option<i64> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                AnyValue::IntValue(n) => Some(*n),
                _ => None,
            },
        )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The gateway's binary behind `hydra`, with the front on and `env` set,
/// its batch sent every `schedule_delay_ms` ms.
async fn gateway(
    dir: &std::path::Path,
    hydra: &HydraFake,
    env: &[(&str, &str)],
    schedule_delay_ms: u64,
) -> ServerProcess {
    let port = free_port();
    let config = write_hydra_config(dir, port, hydra);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[front]\nenabled = true\n");
    std::fs::write(&config, text).unwrap();
    let mut command = Command::new(binary());
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("OTEL_BSP_SCHEDULE_DELAY", schedule_delay_ms.to_string())
        .envs(env.iter().copied())
        .stderr(Stdio::null());
    ServerProcess::start_command(command, port).await
}

/// `config`'s `[log]` section with `otlp_endpoint` set to `endpoint`.
fn with_endpoint(config: &std::path::Path, endpoint: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replacen(
        "[log]\n",
        &format!("[log]\notlp_endpoint = \"{endpoint}\"\n"),
        1,
    );
    std::fs::write(config, text).unwrap();
}

/// The request span named `name` whose request id is `request_id`.
fn request_span<'a>(spans: &'a [(String, Span)], name: &str, request_id: &str) -> Option<&'a Span> {
    spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == name && text(span, "request_id").as_deref() == Some(request_id))
}

/// The spans whose parent is `parent`, in the order they started.
fn children<'a>(spans: &'a [(String, Span)], parent: &Span) -> Vec<&'a Span> {
    let mut children: Vec<&Span> = spans
        .iter()
        .map(|(_, span)| span)
        .filter(|span| span.trace_id == parent.trace_id && span.parent_span_id == parent.span_id)
        .collect();
    children.sort_by_key(|span| span.start_time_unix_nano);
    children
}

/// The request id the gateway echoed.
fn request_id_of(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn register(
    http: &reqwest::Client,
    base: &str,
    traceparent: Option<&str>,
) -> (Value, String) {
    let mut request = http.post(format!("{base}/register")).json(&web_client());
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = request_id_of(&response);
    (response.json().await.unwrap(), id)
}

#[tokio::test]
async fn a_request_is_a_server_span_with_each_provider_call_a_child_and_no_secret() {
    let receiver = Receiver::start().await;
    let hydra = HydraFake::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The endpoint from the environment, as a deployment would set it.
    let server = gateway(
        dir.path(),
        &hydra,
        &[("DCR_GATEWAY__LOG__OTLP_ENDPOINT", receiver.base.as_str())],
        100,
    )
    .await;
    let http = reqwest::Client::new();

    let (client, request_id) = register(&http, &server.base, None).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (continued, continued_id) = register(&http, &server.base, Some(&traceparent)).await;
    // An RFC 7592 call: the registration access token in Authorization.
    let deleted = http
        .delete(uri_of(&continued))
        .bearer_auth(token_of(&continued))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let delete_id = request_id_of(&deleted);
    // The front: a revocation sent on to the provider, with the client's
    // secret in Authorization and the token in the form.
    let revoked = http
        .post(format!("{}/revoke", server.base))
        .basic_auth(id_of(&client), client["client_secret"].as_str())
        .form(&[("token", REVOKED_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoke_id = request_id_of(&revoked);

    let spans = receiver
        .spans_when(|spans| {
            [
                ("POST /register", &request_id),
                ("POST /register", &continued_id),
                ("DELETE /register/{client_id}", &delete_id),
                ("POST /revoke", &revoke_id),
            ]
            .iter()
            .all(|(name, id)| {
                request_span(spans, name, id).is_some_and(|span| !children(spans, span).is_empty())
            })
        })
        .await;
    assert!(spans.iter().all(|(service, _)| service == "dcr-gateway"));

    // The registration: a root server span, its provider call a child.
    let root = request_span(&spans, "POST /register", &request_id).unwrap();
    assert!(root.parent_span_id.is_empty(), "{root:#?}");
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(text(root, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(text(root, "http.route").as_deref(), Some("/register"));
    assert_eq!(text(root, "url.path").as_deref(), Some("/register"));
    assert_eq!(number(root, "http.response.status_code"), Some(201));
    let calls = children(&spans, root);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let create = calls[0];
    assert_eq!(create.name, "hydra create");
    assert_eq!(create.kind, SpanKind::Client as i32);
    assert_eq!(text(create, "dcr.provider").as_deref(), Some("hydra"));
    assert_eq!(
        text(create, "dcr.provider.operation").as_deref(),
        Some("create")
    );
    assert_eq!(text(create, "dcr.provider.outcome").as_deref(), Some("ok"));
    assert_ne!(
        create.status.as_ref().map(|status| status.code),
        Some(SpanStatus::Error as i32)
    );
    assert!(create.start_time_unix_nano >= root.start_time_unix_nano);
    assert!(create.end_time_unix_nano <= root.end_time_unix_nano);

    // The caller's traceparent: the request continues its trace.
    let child_of_caller = request_span(&spans, "POST /register", &continued_id).unwrap();
    assert_eq!(hex(&child_of_caller.trace_id), CALLER_TRACE);
    assert_eq!(hex(&child_of_caller.parent_span_id), CALLER_SPAN);
    assert_eq!(children(&spans, child_of_caller)[0].name, "hydra create");

    // The deletion, by route pattern, with its provider call.
    let delete = request_span(&spans, "DELETE /register/{client_id}", &delete_id).unwrap();
    assert_eq!(
        text(delete, "url.path"),
        Some(format!("/register/{}", id_of(&continued)))
    );
    assert_eq!(number(delete, "http.response.status_code"), Some(204));
    assert_eq!(children(&spans, delete)[0].name, "hydra delete");

    // The front's call to the provider's revocation endpoint (after its
    // read of the provider's discovery document, held for a minute).
    let revoke = request_span(&spans, "POST /revoke", &revoke_id).unwrap();
    let calls = children(&spans, revoke);
    let names: Vec<&str> = calls.iter().map(|call| call.name.as_str()).collect();
    assert_eq!(names, ["hydra discovery", "hydra revocation"], "{calls:#?}");
    let revocation = calls[1];
    assert_eq!(revocation.kind, SpanKind::Client as i32);
    assert_eq!(
        text(revocation, "dcr.provider.operation").as_deref(),
        Some("revocation")
    );
    assert_eq!(
        text(revocation, "dcr.provider.outcome").as_deref(),
        Some("ok")
    );

    // No secret in anything exported: neither the tokens and secrets
    // answered to the apps, nor the token sent in Authorization.
    let mut secrets: Vec<&str> = [&client, &continued]
        .iter()
        .flat_map(|client| ["registration_access_token", "client_secret"].map(|m| &client[m]))
        .map(|secret| secret.as_str().unwrap())
        .collect();
    secrets.push(REVOKED_TOKEN);
    assert_eq!(secrets.len(), 5);
    for body in receiver.bodies() {
        for secret in &secrets {
            assert!(
                !body
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "a secret was exported"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_spans_still_batched_are_sent_at_shutdown() {
    let receiver = Receiver::start().await;
    let hydra = HydraFake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_hydra_config(dir.path(), port, &hydra);
    with_endpoint(&config, &receiver.base);
    let mut command = Command::new(binary());
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        // No batch is due before the end of the test: only shutdown sends.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .stderr(Stdio::null());
    let mut server = ServerProcess::start_command(command, port).await;
    let (_, request_id) = register(&reqwest::Client::new(), &server.base, None).await;
    assert!(receiver.bodies().is_empty());

    server.terminate();
    let exit = server.exit_within(Duration::from_secs(20)).await;
    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    let spans = receiver.spans();
    let root = request_span(&spans, "POST /register", &request_id)
        .unwrap_or_else(|| panic!("the request span was not sent: {spans:#?}"));
    assert_eq!(children(&spans, root)[0].name, "hydra create");
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported() {
    let receiver = Receiver::start().await;
    let hydra = HydraFake::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The SDK's own variables alone do not turn the export on.
    let server = gateway(
        dir.path(),
        &hydra,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base.as_str()),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("{}/v1/traces", receiver.base).as_str(),
            ),
        ],
        50,
    )
    .await;
    register(&reqwest::Client::new(), &server.base, None).await;
    // A graceful stop sends whatever an export would hold.
    server.stop().await;
    assert!(receiver.bodies().is_empty());
}
