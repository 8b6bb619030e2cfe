//! The one place where failures become HTTP answers: status (one table, by
//! error code), RFC error body `{error, error_description}`, and
//! `WWW-Authenticate` / `Retry-After`. A fault of the gateway is not logged
//! here: its cause rides on the answer ([`Fault`]) to the edge, which logs
//! it once, with the request's id, and takes it off.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use std::sync::Arc;

use crate::domain::{ErrorCode, RegistrationError};

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

/// The status of each code: the one table (`invalid_request` answers with
/// the status of what was wrong with the request).
fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InvalidRedirectUri
        | ErrorCode::InvalidClientMetadata
        | ErrorCode::InvalidSoftwareStatement
        | ErrorCode::UnapprovedSoftwareStatement
        | ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
    }
}

/// A fault of the gateway behind an answer, for the edge to log once with
/// the request's id: the answer itself says only that it was logged.
#[derive(Clone, Debug)]
pub struct Fault(pub Arc<dyn std::error::Error + Send + Sync>);

/// What an answer says: its code, its words, the status when it is not the
/// code's, and the header it carries.
struct Answer {
    code: ErrorCode,
    description: String,
    status: Option<StatusCode>,
    header: Option<(header::HeaderName, String)>,
}

impl Answer {
    fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status: None,
            header: None,
        }
    }

    fn with_status(self, status: StatusCode) -> Self {
        Self {
            status: Some(status),
            ..self
        }
    }

    fn with_header(self, name: header::HeaderName, value: impl Into<String>) -> Self {
        Self {
            header: Some((name, value.into())),
            ..self
        }
    }
}

impl ApiError {
    /// The answer to this failure, and the fault behind it if there is one.
    fn answer(self) -> (Answer, Option<Fault>) {
        use RegistrationError as E;
        let answer = match self {
            Self::Registration(E::Internal(cause)) => {
                let answer = Answer::new(
                    ErrorCode::ServerError,
                    "the gateway failed to handle the request; it has been logged",
                );
                return (answer, Some(Fault(Arc::from(cause))));
            }
            Self::Registration(error @ (E::InvalidToken | E::InvalidInitialAccessToken(_))) => {
                Answer::new(error.error_code(), error.to_string())
                    .with_header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
            }
            Self::Registration(E::TemporarilyUnavailable {
                reason,
                retry_after_secs,
            }) => Answer::new(ErrorCode::TemporarilyUnavailable, reason)
                .with_header(header::RETRY_AFTER, retry_after_secs.to_string()),
            Self::Registration(error) => Answer::new(error.error_code(), error.to_string()),
            Self::MalformedBody(message) => Answer::new(ErrorCode::InvalidClientMetadata, message),
            Self::MissingToken => Answer::new(
                ErrorCode::InvalidToken,
                "a registration access token is required (Authorization: Bearer)",
            )
            .with_header(header::WWW_AUTHENTICATE, "Bearer"),
            Self::RateLimited(retry_after_secs) => Answer::new(
                ErrorCode::RateLimited,
                format!("too many requests; retry in {retry_after_secs} s"),
            )
            .with_header(header::RETRY_AFTER, retry_after_secs.to_string()),
            Self::NotFound => Answer::new(ErrorCode::NotFound, "no such endpoint"),
            Self::MethodNotAllowed => Answer::new(
                ErrorCode::InvalidRequest,
                "this endpoint does not accept that method",
            )
            .with_status(StatusCode::METHOD_NOT_ALLOWED),
            Self::PayloadTooLarge => Answer::new(
                ErrorCode::InvalidRequest,
                "the request body is larger than the gateway accepts",
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE),
            Self::Timeout(what) => Answer::new(ErrorCode::InvalidRequest, what)
                .with_status(StatusCode::REQUEST_TIMEOUT),
            Self::TooManyConnections => Answer::new(
                ErrorCode::TemporarilyUnavailable,
                "too many connections from this address are waiting; retry in 1 s",
            )
            .with_header(header::RETRY_AFTER, "1"),
        };
        (answer, None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (answer, fault) = self.answer();
        let body = ErrorBody {
            error: answer.code.as_str(),
            error_description: answer.description,
        };
        let status = answer.status.unwrap_or_else(|| status(answer.code));
        let mut response = (status, Json(body)).into_response();
        if let Some((name, value)) = answer.header {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        if let Some(fault) = fault {
            response.extensions_mut().insert(fault);
        }
        response
    }
}
