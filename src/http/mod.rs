//! The HTTP adapter: routes, extractors, the error mapping and the steps
//! every request goes through ([`edge`]). Handlers extract, call the
//! [`RegistrationService`], map the result.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{get, post};

use crate::registration::RegistrationService;

pub mod client_response;
pub mod configure;
pub mod console;
pub mod cors;
pub mod discovery;
pub mod edge;
pub mod error;
pub mod extract;
pub mod front;
pub mod health;
pub mod observe;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod rate_limit;
pub mod reads;
pub mod register;
pub mod request_body;
pub mod routes;

use error::ApiError;
use routes::Routes;

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
    /// RFC 7592 read answers held in memory for the edge.
    pub read_answers: Arc<reads::HeldReads>,
    /// The authorization front, when `[front]` is on.
    pub front: Option<Arc<crate::front::Front>>,
    /// The operator console, when `[console]` is on.
    pub console: Option<Arc<console::Console>>,
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

/// How the HTTP application treats every request.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Bodies over this many bytes are refused with 413.
    pub max_body_bytes: usize,
    /// Whether one access line is written per request.
    pub access_log: bool,
    /// Longest a request may take to be answered before it is answered 408.
    pub request_timeout: std::time::Duration,
}

/// Builds the whole HTTP application with every route; binds nothing. The
/// routes a browser calls answer CORS for `origins`.
pub fn router(
    state: HttpState,
    settings: &EdgeSettings,
    origins: &cors::AllowedOrigins,
) -> edge::Edge {
    let max_body_bytes = settings.max_body_bytes;
    let read = [Method::GET];
    let routes = Routes::new(origins, max_body_bytes)
        .browser("/register", &[Method::POST], post(register::register))
        .browser(
            reads::CLIENT_ROUTE,
            &[Method::GET, Method::PUT, Method::DELETE],
            get(configure::read)
                .put(configure::update)
                .delete(configure::delete),
        )
        .browser(
            "/.well-known/openid-configuration",
            &read,
            get(discovery::openid_configuration),
        )
        .browser(
            "/.well-known/oauth-authorization-server",
            &read,
            get(discovery::authorization_server_metadata),
        )
        .browser(
            "/.well-known/oauth-authorization-server/{*issuer_path}",
            &read,
            get(discovery::authorization_server_metadata_at),
        )
        .plain("/healthz", get(health::alive))
        .plain("/readyz", get(health::ready))
        .plain("/metrics", get(health::metrics));
    #[cfg(feature = "openapi")]
    let routes = routes.plain("/openapi.json", get(openapi::openapi_json));
    let reads = reads::ReadLane::new(
        state.read_answers.clone(),
        state.limits.clone(),
        state.service.usage().clone(),
    );
    let journal = state.service.journal().clone();
    let routes = front::routes(routes, state.front.is_some());
    let routes = console::routes(routes, state.console.is_some())
        .into_router()
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    edge::Edge::new(
        routes,
        Some(reads),
        settings.access_log,
        settings.request_timeout,
        Some(journal),
    )
}
