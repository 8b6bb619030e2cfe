//! The HTTP adapter: routes, extractors, the error mapping and the steps
//! every request goes through ([`edge`]). Handlers extract, call the
//! [`RegistrationService`], map the result.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{get, post};

use crate::registration::RegistrationService;

pub mod client_response;
pub mod configure;
pub mod connection;
pub mod cors;
pub mod discovery;
pub mod edge;
pub mod error;
pub mod extract;
pub mod front;
pub mod health;
pub mod observe;
pub mod openapi;
pub mod rate_limit;
pub mod register;
pub mod wire;

use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// The registration service.
    pub service: Arc<RegistrationService>,
    /// Base URL apps use to reach the gateway, without a trailing slash.
    pub public_url: Arc<str>,
    /// Rate limits and trusted proxies.
    pub limits: Arc<rate_limit::Limits>,
    /// Most JSON values a metadata body may hold
    /// ([`extract::json_value_limit`] of the body limit).
    pub max_json_values: usize,
    /// RFC 7592 read answers, serialized once per client revision.
    pub read_answers: Arc<client_response::ReadAnswers>,
    /// The authorization front, when `[front]` is on.
    pub front: Option<Arc<crate::front::Front>>,
}

impl HttpState {
    /// The RFC 7591 registration endpoint.
    #[must_use]
    pub fn registration_endpoint(&self) -> String {
        format!("{}/register", self.public_url)
    }

    /// A client's RFC 7592 `registration_client_uri`.
    #[must_use]
    pub fn client_uri(&self, client_id: &str) -> String {
        format!("{}/register/{client_id}", self.public_url)
    }
}

/// Builds the whole HTTP application with every route; binds nothing. The
/// routes a browser calls answer CORS for `origins`; `access_log` writes
/// one line per request.
pub fn router(
    state: HttpState,
    max_body_bytes: usize,
    origins: &cors::AllowedOrigins,
    access_log: bool,
) -> edge::Edge {
    let read = [Method::GET];
    // Each route answers OPTIONS, so that its CORS layer sees preflights.
    let preflight = || async { axum::http::StatusCode::NO_CONTENT };
    let browser_routes = Router::new()
        .route(
            "/register",
            post(register::register)
                .options(preflight)
                .layer(origins.layer(&[Method::POST])),
        )
        .route(
            "/register/{client_id}",
            get(configure::read)
                .put(configure::update)
                .delete(configure::delete)
                .options(preflight)
                .layer(origins.layer(&[Method::GET, Method::PUT, Method::DELETE])),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration)
                .options(preflight)
                .layer(origins.layer(&read)),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server_metadata)
                .options(preflight)
                .layer(origins.layer(&read)),
        )
        .route(
            "/.well-known/oauth-authorization-server/{*issuer_path}",
            get(discovery::authorization_server_metadata_at)
                .options(preflight)
                .layer(origins.layer(&read)),
        );
    let routes = Router::new()
        .merge(browser_routes)
        .merge(front::routes(state.front.as_ref(), origins))
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(health::metrics))
        // Per-route metrics (only matched routes have a route label), and
        // bodies over the limit refused by the extractors with 413.
        .route_layer((observe::LabelRoutes, DefaultBodyLimit::max(max_body_bytes)))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    edge::Edge::new(routes, access_log)
}
