//! What the gateway records about each request: its id, the access log
//! line, and the per-route metrics. Built to cost little on the hot path:
//! ids come from a counter, labels are static strings, and the one access
//! line per request goes to the non-blocking log writer.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Instrument;

/// Request ids: a random per-process prefix and a counter, e.g.
/// `5f0c2a9e41d7b3c8-1f`. Unique across instances without formatting a
/// UUID per request.
#[derive(Clone)]
pub struct CountingRequestIds {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl CountingRequestIds {
    /// Ids for one process, with a fresh random prefix.
    #[must_use]
    pub fn new() -> Self {
        Self {
            prefix: rand::random(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Default for CountingRequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl MakeRequestId for CountingRequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:016x}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Runs the request inside a span carrying its id (so every line logged
/// while serving it, audit events included, names the request), then,
/// when `access` is on, writes one access line: method, path, status,
/// latency and request id.
pub async fn trace_request(access: bool, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let id = request.headers().get("x-request-id").cloned();
    let id = id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or("-");
    let span = tracing::info_span!("request", request_id = id);
    let response = next.run(request).instrument(span).await;
    if access {
        tracing::info!(
            target: "access",
            method = method.as_str(),
            path = uri.path(),
            status = response.status().as_u16(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            request_id = id,
        );
    }
    response
}

/// Counts every request and records its latency, by route and status.
/// Only matched routes get here (it is a route layer), so each label is
/// one of a fixed set of static strings.
pub async fn track_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| route_label(path.as_str()));
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = status_label(response.status());
    metrics::counter!("dcr_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("dcr_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The route pattern as a `'static` label. Patterns come from the router,
/// a fixed set, so each is leaked once and reused.
fn route_label(pattern: &str) -> &'static str {
    static SEEN: RwLock<BTreeSet<&'static str>> = RwLock::new(BTreeSet::new());
    let seen = SEEN.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(label) = seen.get(pattern) {
        return label;
    }
    drop(seen);
    let mut seen = SEEN.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(label) = seen.get(pattern) {
        return label;
    }
    let label: &'static str = Box::leak(pattern.into());
    seen.insert(label);
    label
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

fn status_label(status: StatusCode) -> &'static str {
    const LABELS: [(u16, &str); 16] = [
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (413, "413"),
        (415, "415"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
    ];
    LABELS
        .iter()
        .find(|(code, _)| *code == status.as_u16())
        .map_or_else(|| status_class(status), |(_, label)| label)
}

/// A status outside the usual set is counted by its class (`4xx`, …).
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}
