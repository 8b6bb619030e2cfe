//! The one place where failures become HTTP answers: status, RFC error body
//! `{error, error_description}`, and `WWW-Authenticate` / `Retry-After`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::RegistrationError;

/// An RFC 6749 §5.2-style error body.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Error code, e.g. `invalid_client_metadata`, `invalid_redirect_uri`,
    /// `invalid_software_statement`, `unapproved_software_statement`,
    /// `invalid_token`, `invalid_request`, `conflict`, `rate_limited`,
    /// `temporarily_unavailable`, `server_error`.
    #[cfg_attr(feature = "openapi", schema(example = "invalid_client_metadata"))]
    pub error: &'static str,
    /// What went wrong, in words.
    pub error_description: String,
}

/// Every way an HTTP request can fail.
#[derive(Debug)]
pub enum ApiError {
    /// A failure of the registration service.
    Registration(RegistrationError),
    /// No `Authorization: Bearer` header was sent.
    MissingToken,
    /// The body is not a JSON object of the right shape.
    MalformedBody(String),
    /// The body exceeds `server.max_body_bytes`.
    PayloadTooLarge,
    /// No route has this path.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// A rate limit refused the request; retry after this many seconds.
    RateLimited(u64),
    /// The request's body did not arrive, or the request could not be
    /// answered, in time (as this text says); the connection closes with
    /// the answer.
    Timeout(&'static str),
    /// The caller's address holds as many waiting connections as the
    /// gateway allows one address; retry in a second.
    TooManyConnections,
}

impl From<RegistrationError> for ApiError {
    fn from(error: RegistrationError) -> Self {
        Self::Registration(error)
    }
}

fn body(status: StatusCode, error: &'static str, description: String) -> Response {
    let body = ErrorBody {
        error,
        error_description: description,
    };
    (status, Json(body)).into_response()
}

fn with_header(mut response: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use RegistrationError as E;
        match self {
            Self::Registration(E::InvalidRedirectUri(m)) => {
                body(StatusCode::BAD_REQUEST, "invalid_redirect_uri", m)
            }
            Self::Registration(E::InvalidClientMetadata(m)) | Self::MalformedBody(m) => {
                body(StatusCode::BAD_REQUEST, "invalid_client_metadata", m)
            }
            Self::Registration(E::UnapprovedSoftwareStatement(m)) => {
                body(StatusCode::BAD_REQUEST, "unapproved_software_statement", m)
            }
            Self::Registration(E::InvalidSoftwareStatement(m)) => {
                body(StatusCode::BAD_REQUEST, "invalid_software_statement", m)
            }
            Self::Registration(E::InvalidInitialAccessToken(m)) => with_header(
                body(StatusCode::UNAUTHORIZED, "invalid_token", m),
                header::WWW_AUTHENTICATE,
                "Bearer error=\"invalid_token\"",
            ),
            Self::RateLimited(retry_after_secs) => with_header(
                body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests; retry in {retry_after_secs} s"),
                ),
                header::RETRY_AFTER,
                &retry_after_secs.to_string(),
            ),
            Self::Registration(error @ E::InvalidToken) => with_header(
                body(StatusCode::UNAUTHORIZED, "invalid_token", error.to_string()),
                header::WWW_AUTHENTICATE,
                "Bearer error=\"invalid_token\"",
            ),
            Self::MissingToken => with_header(
                body(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "a registration access token is required (Authorization: Bearer)".into(),
                ),
                header::WWW_AUTHENTICATE,
                "Bearer",
            ),
            Self::Registration(error @ E::UnknownClient(_)) => {
                body(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            Self::Registration(E::Conflict(m)) => body(StatusCode::CONFLICT, "conflict", m),
            Self::NotFound => body(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".into(),
            ),
            Self::MethodNotAllowed => body(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "this endpoint does not accept that method".into(),
            ),
            Self::Timeout(what) => {
                body(StatusCode::REQUEST_TIMEOUT, "invalid_request", what.into())
            }
            Self::TooManyConnections => with_header(
                body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "too many connections from this address are waiting; retry in 1 s".into(),
                ),
                header::RETRY_AFTER,
                "1",
            ),
            Self::PayloadTooLarge => body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is larger than the gateway accepts".into(),
            ),
            Self::Registration(E::TemporarilyUnavailable {
                reason,
                retry_after_secs,
            }) => with_header(
                body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    reason,
                ),
                header::RETRY_AFTER,
                &retry_after_secs.to_string(),
            ),
            Self::Registration(E::Internal(cause)) => {
                tracing::error!(%cause, "internal error");
                body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the gateway failed to handle the request; it has been logged".into(),
                )
            }
        }
    }
}
