//! The gateway's HTTP entry: what every request goes through once, before
//! and after the router.
//!
//! In order: the `Authorization` header is marked sensitive (so nothing
//! below logs it), the request gets an id (or keeps the caller's
//! `x-request-id` when it is short and plain), which is echoed on the
//! answer; a plain RFC 7592 read whose answer is held in memory is answered
//! from it ([`super::reads`]), with no span and nothing logged but its
//! access line; anything else runs inside a span naming the id, through
//! the router, within `server.request_timeout`; a panic becomes a 500 with
//! an RFC body; the fault behind a 500 ([`super::error::Fault`]) is logged
//! here, once, with the request's id and its chain of causes; a request whose body did not arrive in time
//! ([`super::request_body`]), or that was not answered in time, is answered
//! `408` and closes its connection; a CORS preflight answered by its
//! route's CORS layer becomes `204`; an HTTP/1 answer given before the
//! request body was read says it closes the connection; when spans are
//! exported, the request's span (continuing the caller's `traceparent`)
//! is named by its route and given its status
//! ([`crate::logging::traces`]); then the request is counted by route and
//! status, and one access line is written.
//!
//! These steps are one function, not a stack of layers: under load the
//! profile showed axum cloning every layered route service and boxing
//! every middleware's future per request (a tenth of the read path), so
//! only what must see the matched route stays inside the router, in one
//! layer per route ([`super::routes`]: its label, the body limit, CORS).

use crate::registration::journal::Journal;
use std::any::Any;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tower::ServiceExt;
use tracing::Instrument;
use tracing::field::Empty;

use super::error::{ApiError, Fault};
use super::observe::{self, CountingRequestIds, RouteLabel};
use super::reads::{self, ReadLane};
use super::request_body::BodyWatch;
use crate::domain::RegistrationError;
use crate::error_text::with_causes;
use crate::logging::access::{self, AccessLine};
use crate::logging::traces;

/// The request id header, set on every request and echoed on its answer.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from the caller; a longer one, or one with
/// other characters than [`is_id_byte`] allows, is replaced by the
/// gateway's own, so that no caller can bloat or forge access lines.
const MAX_REQUEST_ID: usize = 128;

/// The whole HTTP application: the router behind the per-request steps of
/// the module documentation. Cloning is cheap (shared).
#[derive(Clone)]
pub struct Edge {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Router,
    reads: Option<ReadLane>,
    ids: CountingRequestIds,
    access_log: bool,
    request_timeout: Duration,
    journal: Option<Arc<Journal>>,
}

impl Edge {
    /// Puts the per-request steps in front of `routes`, with the reads
    /// `reads` holds answered from memory; `access_log` writes one line per
    /// request; a request not answered within `request_timeout` is answered
    /// `408`; what the console's Activity page counts is counted in
    /// `journal`.
    #[must_use]
    pub fn new(
        routes: Router,
        reads: Option<ReadLane>,
        access_log: bool,
        request_timeout: Duration,
        journal: Option<Arc<Journal>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                routes,
                reads,
                ids: CountingRequestIds::new(),
                access_log,
                request_timeout,
                journal,
            }),
        }
    }

    /// Answers one request, which came from `peer`, with its body watched
    /// by `body` when it has one ([`super::request_body::GuardedBody`]).
    pub async fn handle<B>(
        &self,
        request: axum::http::Request<B>,
        peer: SocketAddr,
        body: Option<BodyWatch>,
    ) -> Response
    where
        B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let started = Instant::now();
        let (request, seen) = self.receive(request, body);
        let id = seen.id.to_str().unwrap_or("-");
        let routed = async {
            let from_memory = self
                .inner
                .reads
                .as_ref()
                .and_then(|reads| reads.from_memory(&request));
            if let Some(response) = from_memory {
                return (response, Some(reads::ROUTE), None);
            }
            // `otel.kind` is recorded only when spans are exported.
            let span = tracing::info_span!("request", request_id = id, otel.kind = Empty);
            let exported = traces::exporting().then(|| {
                traces::request_received(&span, request.headers());
                span.clone()
            });
            let answered = async {
                let mut request = request;
                request.extensions_mut().insert(ConnectInfo(peer));
                let Ok(response) = self.inner.routes.clone().oneshot(request).await;
                let label = response.extensions().get::<RouteLabel>().copied();
                (response, label)
            };
            let timeout = self.inner.request_timeout;
            let (response, label) = tokio::time::timeout(timeout, answered)
                .instrument(span)
                .await
                .unwrap_or_else(|_| {
                    let timed_out = ApiError::Timeout(
                        "the request could not be answered within the time allowed",
                    );
                    (timed_out.into_response(), None)
                });
            (response, label, exported)
        };
        let (mut response, label, exported) = match AssertUnwindSafe(routed).catch_unwind().await {
            Ok(answered) => answered,
            Err(panic) => (panic_response(panic), None, None),
        };
        if let Some(Fault(cause)) = response.extensions_mut().remove::<Fault>() {
            tracing::error!(request_id = id, cause = %with_causes(&*cause), "internal error");
        }
        seen.complete(&mut response);
        if let Some(span) = exported {
            let route = label.map(|RouteLabel(route)| route);
            traces::request_answered(
                &span,
                &seen.method,
                route,
                seen.uri.path(),
                response.status(),
            );
        }
        self.record(&seen, &response, label, started.elapsed());
        response
    }

    /// The answer to a request of a connection refused for its address's
    /// waiting connections (`503`, closing the connection), logged and
    /// counted like any other.
    #[must_use]
    pub fn too_many_connections<B>(&self, request: &axum::http::Request<B>) -> Response {
        let started = Instant::now();
        let seen = Received {
            version: request.version(),
            ..self.received(request.method(), request.uri(), request.headers())
        };
        let mut response = ApiError::TooManyConnections.into_response();
        seen.close_http1(&mut response);
        seen.complete(&mut response);
        self.record(&seen, &response, None, started.elapsed());
        response
    }

    /// Counts the request by route and status, and writes its access line.
    fn record(
        &self,
        seen: &Received,
        response: &Response,
        label: Option<RouteLabel>,
        elapsed: Duration,
    ) {
        if let Some(RouteLabel(route)) = label {
            observe::count(route, &seen.method, response.status(), elapsed);
        }
        let counted = observe::activity(label, response.status());
        if let (Some(journal), Some(kind)) = (&self.inner.journal, counted) {
            journal.count(kind);
        }
        if self.inner.access_log {
            access::write(&AccessLine {
                method: seen.method.as_str(),
                path: seen.uri.path(),
                status: response.status().as_u16(),
                elapsed,
                request_id: seen.id.to_str().unwrap_or("-"),
            });
        }
    }

    /// Marks the credentials sensitive and gives the request its id;
    /// returns what the answer needs of it.
    fn receive<B>(
        &self,
        request: axum::http::Request<B>,
        body: Option<BodyWatch>,
    ) -> (Request, Received)
    where
        B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (mut parts, inner) = request.into_parts();
        if let Some(credentials) = parts.headers.get_mut(header::AUTHORIZATION) {
            credentials.set_sensitive(true);
        }
        let received = Received {
            body: body.filter(|_| !inner.is_end_stream()),
            version: parts.version,
            ..self.received(&parts.method, &parts.uri, &parts.headers)
        };
        (Request::from_parts(parts, Body::new(inner)), received)
    }

    /// What the answer to a request with this method, URI and headers needs.
    fn received(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Received {
        let id = match headers.get(REQUEST_ID).filter(|id| is_request_id(id)) {
            Some(id) => id.clone(),
            None => self.inner.ids.next_id(),
        };
        Received {
            preflight: *method == Method::OPTIONS
                && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD),
            method: method.clone(),
            uri: uri.clone(),
            id,
            version: Version::HTTP_11,
            body: None,
        }
    }
}

/// Whether a caller's request id is kept: at most [`MAX_REQUEST_ID`] bytes
/// of [`is_id_byte`].
fn is_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID && bytes.iter().copied().all(is_id_byte)
}

/// Letters, digits and `-._:/+=@`: what ids of the field (UUIDs, trace
/// ids, AWS and Heroku request ids) are made of.
fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._:/+=@".contains(&byte)
}

/// What the answer to a request needs of it.
struct Received {
    method: Method,
    uri: Uri,
    id: HeaderValue,
    /// A CORS preflight.
    preflight: bool,
    /// HTTP/1.x or 2 (which has no `Connection` header).
    version: Version,
    /// What became of the request's body, when it has one.
    body: Option<BodyWatch>,
}

impl Received {
    /// A request whose body did not arrive in time is answered `408`; a
    /// preflight the CORS layer answered is `204`; an HTTP/1 answer given
    /// before the body was read, and every `408`, closes the connection;
    /// the request id is echoed.
    fn complete(&self, response: &mut Response) {
        if self.body.as_ref().is_some_and(BodyWatch::timed_out) {
            *response =
                ApiError::Timeout("the request body did not arrive within the time allowed")
                    .into_response();
        }
        if self.preflight && response.status() == StatusCode::OK {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        let unread = self.body.as_ref().is_some_and(|body| !body.read_to_end());
        if unread || response.status() == StatusCode::REQUEST_TIMEOUT {
            self.close_http1(response);
        }
        if !response.headers().contains_key(REQUEST_ID) {
            response.headers_mut().insert(REQUEST_ID, self.id.clone());
        }
    }

    /// Says, on HTTP/1, that the connection closes after this answer.
    fn close_http1(&self, response: &mut Response) {
        if self.version < Version::HTTP_2 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Registration(RegistrationError::internal(format!("panic: {detail}"))).into_response()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use axum::routing::get;

    use super::*;

    fn edge(request_timeout: Duration) -> Edge {
        let routes = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            }),
        );
        let broken = || async {
            let cause = std::io::Error::other("disk on fire");
            ApiError::Registration(RegistrationError::internal(cause))
        };
        Edge::new(
            routes
                .route("/fast", get(|| async { "ok" }))
                .route("/broken", get(broken)),
            None,
            false,
            request_timeout,
            None,
        )
    }

    fn get_request(path: &str, id: Option<&[u8]>) -> axum::http::Request<Body> {
        let mut request = axum::http::Request::get(path);
        if let Some(id) = id {
            request = request.header(REQUEST_ID, HeaderValue::from_bytes(id).unwrap());
        }
        request.body(Body::empty()).unwrap()
    }

    const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1);

    #[tokio::test(start_paused = true)]
    async fn a_request_not_answered_in_time_gets_408_and_closes() {
        let edge = edge(Duration::from_secs(3));
        let response = edge.handle(get_request("/slow", None), PEER, None).await;
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let response = edge.handle(get_request("/fast", None), PEER, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key(header::CONNECTION));
    }

    #[tokio::test]
    async fn the_callers_request_id_is_kept_only_when_short_and_plain() {
        let edge = edge(Duration::from_secs(3));
        let echoed = |response: Response| response.headers()[REQUEST_ID].clone();
        let uuid = b"0f8fad5b-d9cb-469f-a165-70867728950e";
        let kept = edge
            .handle(get_request("/fast", Some(uuid)), PEER, None)
            .await;
        assert_eq!(echoed(kept).as_bytes(), uuid);
        let long = vec![b'a'; 200_000];
        for refused in [&long[..], b"two words", b"quote\"d", b"\xff\xfe"] {
            let response = edge
                .handle(get_request("/fast", Some(refused)), PEER, None)
                .await;
            let id = echoed(response);
            assert_ne!(id.as_bytes(), refused);
            assert!(id.len() <= 33 && is_request_id(&id), "{id:?}");
        }
    }

    #[tokio::test]
    async fn a_fault_is_logged_once_with_its_cause_and_request_id_and_never_told() {
        let log = tempfile::NamedTempFile::new().unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(log.reopen().unwrap()))
            .with_ansi(false)
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let edge = edge(Duration::from_secs(3));
        let response = edge
            .handle(get_request("/broken", Some(b"req-7")), PEER, None)
            .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<Fault>().is_none());
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("server_error") && !body.contains("disk on fire"));
        let logged = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(logged.matches("disk on fire").count(), 1, "{logged}");
        assert!(
            logged.contains("req-7")
                && logged.contains("internal error")
                && logged.contains("cause=disk on fire"),
            "{logged}"
        );
    }
}
