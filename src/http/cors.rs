//! CORS for the routes a browser-based client calls (MCP Inspector in
//! direct mode, single-page apps): `/register`, the RFC 7592 routes and the
//! discovery documents. Origins come from `[server.cors]` (any by default);
//! no credentials mode (tokens travel in `Authorization`, never cookies); a
//! preflight is answered `204` (by [`super::edge`]) with the methods and
//! headers of its route.
//! Operational routes (`/metrics`, `/readyz`, …) get no CORS headers.

use axum::http::{HeaderName, HeaderValue, Method, header};
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
    /// tower-http's CORS layer for a route answering `methods` (applied by
    /// [`super::routes`] to requests from a browser).
    pub fn cors_layer(&self, methods: &[Method]) -> CorsLayer {
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
