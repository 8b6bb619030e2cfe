//! How a route is declared: its pattern, its handlers, and one layer of its
//! own that names it on every answer (the metrics label), sets the body
//! limit and, on a route a browser calls, answers CORS.
//!
//! One layer per route, not a layer per concern: axum clones a route's
//! layered service and boxes its future once per layer on every request,
//! and under load the profile showed each of those levels.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use axum::routing::MethodRouter;
use futures_util::future::{BoxFuture, Either};
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use super::HttpState;
use super::cors::AllowedOrigins;
use super::observe::RouteLabel;

/// What every answer of a browser route varies by, browser or not, so that
/// a shared cache never serves one origin's answer to another: the list
/// tower-http's CORS layer sends.
const VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// Adds routes with their own layer.
pub struct Routes<'a> {
    router: Router<HttpState>,
    origins: &'a AllowedOrigins,
    max_body_bytes: usize,
}

impl<'a> Routes<'a> {
    /// No routes yet; browser routes will answer CORS for `origins`, and
    /// bodies over `max_body_bytes` are refused by the extractors with 413.
    #[must_use]
    pub fn new(origins: &'a AllowedOrigins, max_body_bytes: usize) -> Self {
        Self {
            router: Router::new(),
            origins,
            max_body_bytes,
        }
    }

    /// A route only servers and scripts call: no CORS.
    #[must_use]
    pub fn plain(self, pattern: &'static str, handlers: MethodRouter<HttpState>) -> Self {
        self.add(pattern, handlers, None)
    }

    /// A route a browser calls: CORS for the methods `handlers` answer
    /// (listed in `methods`), and an `OPTIONS` handler so that preflights
    /// reach the route.
    #[must_use]
    pub fn browser(
        self,
        pattern: &'static str,
        methods: &[Method],
        handlers: MethodRouter<HttpState>,
    ) -> Self {
        let cors = Arc::new(self.origins.cors_layer(methods));
        let handlers = handlers.options(|| async { StatusCode::NO_CONTENT });
        self.add(pattern, handlers, Some(cors))
    }

    fn add(
        mut self,
        pattern: &'static str,
        handlers: MethodRouter<HttpState>,
        cors: Option<Arc<CorsLayer>>,
    ) -> Self {
        let own = RouteLayer {
            label: RouteLabel(pattern),
            cors,
        };
        let limit = DefaultBodyLimit::max(self.max_body_bytes);
        self.router = self.router.route(pattern, handlers.layer((own, limit)));
        self
    }

    /// The routes, as a router.
    pub fn into_router(self) -> Router<HttpState> {
        self.router
    }
}

/// A route's own layer (see the module documentation).
#[derive(Clone)]
struct RouteLayer {
    label: RouteLabel,
    cors: Option<Arc<CorsLayer>>,
}

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;

    fn layer(&self, inner: S) -> RouteService<S> {
        RouteService {
            own: self.clone(),
            inner,
        }
    }
}

/// A route's handlers behind its [`RouteLayer`].
#[derive(Clone)]
struct RouteService<S> {
    own: RouteLayer,
    inner: S,
}

impl<S, In, Out> Service<Request<In>> for RouteService<S>
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
        let label = self.own.label;
        let from_browser = request.headers().contains_key(header::ORIGIN);
        let (answer, vary) = match &self.own.cors {
            Some(cors) if from_browser => {
                // tower-http's CORS layer, around the service polled ready
                // (its clone stays for the next call).
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                (Either::Left(cors.layer(ready).call(request)), false)
            }
            // Not from a browser: the CORS work is skipped, its Vary kept.
            cors => (Either::Right(self.inner.call(request)), cors.is_some()),
        };
        Box::pin(async move {
            let mut response = answer.await?;
            if vary {
                vary_as_cors_would(&mut response);
            }
            response.extensions_mut().insert(label);
            Ok(response)
        })
    }
}

/// Adds to the answer of a browser route, given to a request without CORS,
/// the `Vary` a CORS answer would have had.
pub fn vary_as_cors_would<B>(response: &mut Response<B>) {
    response.headers_mut().append(header::VARY, VARY);
}
