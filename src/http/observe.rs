//! What the gateway records about each request: its id and the per-route
//! metrics ([`super::edge`] writes the access line). Built to cost little on
//! the hot path: ids come from a counter, labels are static strings.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

/// Request ids: a random per-process prefix and a counter, e.g.
/// `5f0c2a9e41d7b3c8-1f`. Unique across instances without formatting a
/// UUID per request.
pub struct CountingRequestIds {
    /// The prefix in hex, and the dash.
    prefix: [u8; 17],
    next: AtomicU64,
}

impl CountingRequestIds {
    /// Ids for one process, with a fresh random prefix.
    #[must_use]
    pub fn new() -> Self {
        let mut prefix = [b'-'; 17];
        write_hex(&mut prefix[..16], rand::random());
        Self {
            prefix,
            next: AtomicU64::new(0),
        }
    }

    /// The next id.
    #[must_use]
    pub fn next_id(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0; 33];
        id[..17].copy_from_slice(&self.prefix);
        let digits = (16 - n.leading_zeros() as usize / 4).max(1);
        write_hex(&mut id[17..17 + digits], n);
        HeaderValue::from_bytes(&id[..17 + digits])
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// Writes the low `out.len()` hex digits of `value` into `out`.
fn write_hex(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[(value & 0xf) as usize];
        value >>= 4;
    }
}

impl Default for CountingRequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a request of a matched route and records its latency, by route
/// and status. Every label is a static string.
pub fn count(route: &'static str, method: &Method, status: StatusCode, elapsed: Duration) {
    let method = method_label(method);
    let status = status_label(status);
    metrics::counter!("dcr_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("dcr_http_request_duration_seconds", "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
}

/// The route pattern that answered a request, carried on its response for
/// [`count`]. Requests no route matched have none.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Route layer that puts the matched route's [`RouteLabel`] on each
/// response.
#[derive(Debug, Clone, Copy)]
pub struct LabelRoutes;

impl<S> Layer<S> for LabelRoutes {
    type Service = Labelled<S>;

    fn layer(&self, inner: S) -> Labelled<S> {
        Labelled { inner }
    }
}

/// A route's service behind [`LabelRoutes`].
#[derive(Debug, Clone)]
pub struct Labelled<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Labelled<S>
where
    S: Service<Request<B>, Response = Response> + Send,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let label = request
            .extensions()
            .get::<MatchedPath>()
            .map(|path| RouteLabel(route_label(path.as_str())));
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            if let Some(label) = label {
                response.extensions_mut().insert(label);
            }
            Ok(response)
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_the_prefix_and_the_counter_in_hex() {
        let ids = CountingRequestIds::new();
        let first = ids.next_id();
        let (prefix, counter) = first.to_str().unwrap().split_once('-').unwrap();
        assert_eq!(prefix.len(), 16);
        assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(counter, "0");
        for _ in 0..30 {
            let _ = ids.next_id();
        }
        assert_eq!(ids.next_id().to_str().unwrap(), format!("{prefix}-1f"));
    }

    #[test]
    fn hex_digits_fill_the_slice_from_the_right() {
        let mut out = [0; 4];
        write_hex(&mut out, 0xab);
        assert_eq!(&out, b"00ab");
    }
}
