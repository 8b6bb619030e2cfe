//! `GET /healthz` (the process is alive) and `GET /readyz` (the store answers).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::HttpState;
use super::error::ApiError;

/// A health answer.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `ok` when the answer is 200.
    #[cfg_attr(feature = "openapi", schema(example = "ok"))]
    pub status: &'static str,
}

/// Liveness: answers as long as the process serves HTTP.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health))))]
pub async fn alive() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Prometheus metrics (text exposition format).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Metrics in Prometheus text format", content_type = "text/plain"))))]
pub async fn metrics() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(),
    )
}

/// Readiness: answers 200 when the store answers, 503 otherwise.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The store does not answer, or (broker mode) the provider's discovery document or keys cannot be read", body = super::error::ErrorBody),
    )))]
pub async fn ready(State(state): State<HttpState>) -> Result<Json<Health>, ApiError> {
    let unavailable = |reason: &str| {
        ApiError::Registration(crate::domain::RegistrationError::TemporarilyUnavailable {
            reason: reason.into(),
            retry_after_secs: 5,
        })
    };
    state.service.ready().await.map_err(|e| {
        tracing::warn!(error = %e, "store not ready");
        unavailable("the store does not answer")
    })?;
    if let Some(front) = &state.front {
        front.ready().await.map_err(|e| {
            tracing::warn!(error = %e, "identity provider not ready");
            unavailable("the identity provider's discovery document or keys cannot be read")
        })?;
    }
    Ok(Json(Health { status: "ok" }))
}
