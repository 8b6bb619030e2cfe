//! The gateway's HTTP entry: what every request goes through once, before
//! and after the router.
//!
//! In order: the `Authorization` header is marked sensitive (so nothing
//! below logs it), the request gets an id (or keeps the caller's
//! `x-request-id`), which is echoed on the answer; the request runs inside
//! a span naming that id, unless it is a read answered from memory with
//! nothing to log ([`ReadShortcut::from_memory`]); a panic becomes a
//! logged 500 with an RFC body; a
//! CORS preflight answered by its route's CORS layer becomes `204`; an
//! HTTP/1 answer given before the request body was read says it closes the
//! connection ([`super::connection`]); then the request is counted by
//! route and status, and one access line is written. Between those steps,
//! a plain RFC 7592 read is answered by [`ReadShortcut`], anything else by
//! the router.
//!
//! These steps are one function, not a stack of layers: under load the
//! profile showed axum cloning every layered route service and boxing
//! every middleware's future per request (a tenth of the read path), so
//! only what must see the matched route stays inside the router, in one
//! layer per route ([`super::routes`]: its label, the body limit, CORS).

use std::any::Any;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http_body::Body as _;
use tower::ServiceExt;
use tracing::Instrument;

use super::configure::ReadShortcut;
use super::connection::{ReadToEnd, WatchedBody};
use super::error::ApiError;
use super::observe::{self, CountingRequestIds, RouteLabel};
use crate::domain::RegistrationError;
use crate::logging::access::{self, AccessLine};

/// The request id header, set on every request and echoed on its answer.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application: the router behind the per-request steps of
/// the module documentation. Cloning is cheap (shared).
#[derive(Clone)]
pub struct Edge {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Router,
    read_shortcut: ReadShortcut,
    ids: CountingRequestIds,
    access_log: bool,
}

impl Edge {
    /// Puts the per-request steps in front of `routes`, with the reads
    /// `read_shortcut` takes answered without them; `access_log` writes one
    /// line per request.
    #[must_use]
    pub fn new(routes: Router, read_shortcut: ReadShortcut, access_log: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                routes,
                read_shortcut,
                ids: CountingRequestIds::new(),
                access_log,
            }),
        }
    }

    /// Answers one request, which came from `peer`.
    pub async fn handle<B>(&self, request: axum::http::Request<B>, peer: SocketAddr) -> Response
    where
        B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let started = Instant::now();
        let (request, seen) = self.receive(request);
        let id = seen.id.to_str().unwrap_or("-");
        let routed = async {
            let shortcut = &self.inner.read_shortcut;
            if let Some((client_id, token)) = ReadShortcut::plain_read(&request) {
                if let Some(response) = shortcut.from_memory(client_id, &token).await {
                    return (response, Some(ReadShortcut::ROUTE));
                }
            }
            let answered = async {
                match shortcut.answer(request, peer.ip()).await {
                    Ok(response) => (response, Some(ReadShortcut::ROUTE)),
                    Err(mut request) => {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        let Ok(response) = self.inner.routes.clone().oneshot(request).await;
                        let label = response.extensions().get::<RouteLabel>().copied();
                        (response, label)
                    }
                }
            };
            answered
                .instrument(tracing::info_span!("request", request_id = id))
                .await
        };
        let (mut response, label) = match AssertUnwindSafe(routed).catch_unwind().await {
            Ok(answered) => answered,
            Err(panic) => (panic_response(panic), None),
        };
        seen.complete(&mut response);
        let elapsed = started.elapsed();
        if let Some(RouteLabel(route)) = label {
            observe::count(route, &seen.method, response.status(), elapsed);
        }
        if self.inner.access_log {
            access::write(&AccessLine {
                method: seen.method.as_str(),
                path: seen.uri.path(),
                status: response.status().as_u16(),
                elapsed,
                request_id: id,
            });
        }
        response
    }

    /// Marks the credentials sensitive, gives the request its id and
    /// watches its body; returns what the answer needs of it.
    fn receive<B>(&self, request: axum::http::Request<B>) -> (Request, Received)
    where
        B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (mut parts, body) = request.into_parts();
        if let Some(credentials) = parts.headers.get_mut(header::AUTHORIZATION) {
            credentials.set_sensitive(true);
        }
        let id = match parts.headers.get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => self.inner.ids.next_id(),
        };
        let body = Body::new(body);
        let (body, read_to_end) = if parts.version >= Version::HTTP_2 || body.is_end_stream() {
            (body, None)
        } else {
            let (body, read_to_end) = WatchedBody::new(body);
            (Body::new(body), Some(read_to_end))
        };
        let received = Received {
            preflight: parts.method == Method::OPTIONS
                && parts
                    .headers
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            id,
            read_to_end,
        };
        (Request::from_parts(parts, body), received)
    }
}

/// What the answer to a request needs of it.
struct Received {
    method: Method,
    uri: Uri,
    id: HeaderValue,
    /// A CORS preflight.
    preflight: bool,
    /// For an HTTP/1 request with a body.
    read_to_end: Option<ReadToEnd>,
}

impl Received {
    /// A preflight the CORS layer answered is `204`; an answer given before
    /// the body was read closes the connection; the request id is echoed.
    fn complete(&self, response: &mut Response) {
        if self.preflight && response.status() == StatusCode::OK {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        if self.read_to_end.as_ref().is_some_and(|read| !read.load()) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !response.headers().contains_key(REQUEST_ID) {
            response.headers_mut().insert(REQUEST_ID, self.id.clone());
        }
    }
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Registration(RegistrationError::Internal(format!("panic: {detail}"))).into_response()
}
