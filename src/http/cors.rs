//! CORS for the routes a browser-based client calls (MCP Inspector in
//! direct mode, single-page apps): `/register`, the RFC 7592 routes and the
//! discovery documents. Origins come from `[server.cors]` (any by default);
//! no credentials mode (tokens travel in `Authorization`, never cookies); a
//! preflight is answered `204` (by [`super::edge`]) with the methods and
//! headers of its route.
//! Operational routes (`/metrics`, `/readyz`, …) get no CORS headers.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may call the gateway from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin (`*`, the default): the registration API carries no
    /// ambient credentials, so any page may call it.
    Any,
    /// Only these origins, exactly (`https://app.example.com`).
    Listed(Vec<HeaderValue>),
}

/// The request headers browser clients send to these routes.
const ALLOWED_HEADERS: [HeaderName; 2] = [header::AUTHORIZATION, header::CONTENT_TYPE];

/// How long a browser may cache a preflight answer.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

impl AllowedOrigins {
    /// The CORS layer for a route answering `methods`.
    pub fn layer(&self, methods: &[Method]) -> RouteCors {
        RouteCors {
            cors: Arc::new(self.cors_layer(methods)),
        }
    }

    fn cors_layer(&self, methods: &[Method]) -> CorsLayer {
        let origins = match self {
            Self::Any => AllowOrigin::any(),
            Self::Listed(origins) => AllowOrigin::list(origins.iter().cloned()),
        };
        let mut methods = methods.to_vec();
        methods.push(Method::OPTIONS);
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(methods)
            .allow_headers(ALLOWED_HEADERS)
            .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
            .max_age(MAX_AGE)
    }
}

/// What every answer of a CORS route varies by, browser or not, so that a
/// shared cache never serves one origin's answer to another: the same
/// list tower-http's CORS layer sends.
const VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// tower-http's CORS layer for one route, applied only to requests that
/// carry an `Origin` (the ones from a browser). The others (most of the
/// traffic: apps, MCP clients, curl) get only the `Vary` header, without
/// paying for the CORS work per request; the layer itself is shared, not
/// cloned with the route on every request.
#[derive(Clone)]
pub struct RouteCors {
    cors: Arc<CorsLayer>,
}

impl<S> Layer<S> for RouteCors {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> BrowserCors<S> {
        BrowserCors {
            cors: Arc::clone(&self.cors),
            inner,
        }
    }
}

/// A route's service behind [`RouteCors`].
#[derive(Clone)]
pub struct BrowserCors<S> {
    cors: Arc<CorsLayer>,
    inner: S,
}

impl<S, In, Out> Service<Request<In>> for BrowserCors<S>
where
    S: Service<Request<In>, Response = Response<Out>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    In: Send + 'static,
    Out: Default + Send + 'static,
{
    type Response = Response<Out>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Out>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<In>) -> Self::Future {
        if request.headers().contains_key(header::ORIGIN) {
            // The service polled ready goes into the CORS layer; its clone
            // stays for the next call.
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            return Box::pin(self.cors.layer(ready).call(request));
        }
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            response.headers_mut().append(header::VARY, VARY);
            Ok(response)
        })
    }
}
