//! What the gateway records about each request: its id and the per-route
//! metrics ([`super::edge`] writes the access line). Built to cost little on
//! the hot path: ids come from a counter, labels are static strings.

use crate::store::activity::Activity;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use metrics::{Counter, Histogram};

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
///
/// The metric handles of each route, method and status are looked up in
/// the recorder once per thread and kept: the recorder's lookup hashes and
/// compares every label on each call.
pub fn count(route: &'static str, method: &Method, status: StatusCode, elapsed: Duration) {
    type Labels = (&'static str, &'static str, &'static str);
    thread_local! {
        static HANDLES: RefCell<HashMap<Labels, (Counter, Histogram)>> =
            RefCell::new(HashMap::new());
    }
    let labels = (route, method_label(method), status_label(status));
    HANDLES.with_borrow_mut(|handles| {
        let (requests, latency) = handles.entry(labels).or_insert_with(|| {
            let (route, method, status) = labels;
            (
                metrics::counter!("dcr_http_requests_total", "route" => route, "method" => method, "status" => status),
                metrics::histogram!("dcr_http_request_duration_seconds", "route" => route, "method" => method),
            )
        });
        requests.increment(1);
        latency.record(elapsed.as_secs_f64());
    });
}

/// What the console's Activity page counts of an answer with `status`
/// from the route `label`: a registration, an RFC 7592 call, a refusal, a
/// rate-limit hit, or nothing.
#[must_use]
pub fn activity(label: Option<RouteLabel>, status: StatusCode) -> Option<Activity> {
    let route = label.map(|RouteLabel(route)| route);
    match status {
        StatusCode::TOO_MANY_REQUESTS => Some(Activity::RateLimited),
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Some(Activity::Refusal)
        }
        StatusCode::CREATED if route == Some("/register") => Some(Activity::Registration),
        status if status.is_success() && route == Some(super::reads::CLIENT_ROUTE) => {
            Some(Activity::Management)
        }
        _ => None,
    }
}

/// The route pattern that answered a request, carried on its response for
/// [`count`] (set by [`super::routes`]). Requests no route matched have
/// none.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

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
    const LABELS: [(u16, &str); 17] = [
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (408, "408"),
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
