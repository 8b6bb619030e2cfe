//! The gateway's HTTP entry: what every request goes through once, before
//! and after the router.
//!
//! In order: the `Authorization` header is marked sensitive (so nothing
//! below logs it), the request gets an id (or keeps the caller's
//! `x-request-id`), which is echoed on the answer; the request runs inside
//! a span naming that id; a panic becomes a logged 500 with an RFC body; a
//! CORS preflight answered by its route's CORS layer becomes `204`; an
//! HTTP/1 answer given before the request body was read says it closes the
//! connection ([`super::connection`]); then the request is counted by
//! route and status, and one access line is written.
//!
//! These steps are one function, not a stack of layers: under load the
//! profile showed axum cloning every layered route service and boxing
//! every middleware's future per request (a tenth of the read path), so
//! only what must see the matched route stays inside the router
//! ([`observe::LabelRoutes`], the CORS layers).

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use http_body::Body as _;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use super::connection::WatchedBody;
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
    /// The router, with the body limit and the panic guard.
    routes: BoxCloneSyncService<Request, Response, Infallible>,
    ids: CountingRequestIds,
    access_log: bool,
}

impl Edge {
    /// Puts the per-request steps in front of `routes`; request bodies
    /// over `max_body_bytes` are refused by the extractors with 413, and
    /// `access_log` writes one line per request.
    #[must_use]
    pub fn new(routes: Router, max_body_bytes: usize, access_log: bool) -> Self {
        let routes = tower::ServiceBuilder::new()
            .map_response(IntoResponse::into_response)
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(DefaultBodyLimit::max(max_body_bytes))
            .service(routes);
        Self {
            inner: Arc::new(Inner {
                routes: BoxCloneSyncService::new(routes),
                ids: CountingRequestIds::new(),
                access_log,
            }),
        }
    }

    /// Answers one request.
    pub async fn handle<B>(&self, request: axum::http::Request<B>) -> Response
    where
        B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let started = Instant::now();
        let (mut parts, body) = request.into_parts();
        if let Some(credentials) = parts.headers.get_mut(header::AUTHORIZATION) {
            credentials.set_sensitive(true);
        }
        let id = match parts.headers.get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = self.inner.ids.next_id();
                parts.headers.insert(REQUEST_ID, id.clone());
                id
            }
        };
        let preflight = parts.method == Method::OPTIONS
            && parts
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let (method, uri) = (parts.method.clone(), parts.uri.clone());
        let body = Body::new(body);
        let (body, read_to_end) = if parts.version >= Version::HTTP_2 || body.is_end_stream() {
            (body, None)
        } else {
            let (body, read_to_end) = WatchedBody::new(body);
            (Body::new(body), Some(read_to_end))
        };
        let id_text = id.to_str().unwrap_or("-");
        let span = tracing::info_span!("request", request_id = id_text);
        let routed = self.inner.routes.clone().oneshot(Request::from_parts(parts, body));
        let mut response = match routed.instrument(span).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if preflight && response.status() == StatusCode::OK {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        if read_to_end.is_some_and(|read| !read.load()) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !response.headers().contains_key(REQUEST_ID) {
            response.headers_mut().insert(REQUEST_ID, id.clone());
        }
        let elapsed = started.elapsed();
        if let Some(RouteLabel(route)) = response.extensions().get::<RouteLabel>() {
            observe::count(route, &method, response.status(), elapsed);
        }
        if self.inner.access_log {
            access::write(&AccessLine {
                method: method.as_str(),
                path: uri.path(),
                status: response.status().as_u16(),
                elapsed,
                request_id: id_text,
            });
        }
        response
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
