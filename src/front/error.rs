//! The front's failures and the one place they become HTTP answers: a page
//! (before the app's redirect URI is known good, and at `/callback` when
//! the transaction is not), a redirect back to the app (built by
//! [`super::authorize::AppRedirect`]), an RFC 6749 §5.2 JSON body at
//! `/token`, or an RFC 6750 challenge at `/userinfo`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An RFC 6749 (§4.1.2.1, §5.2) error code, and the gateway's own
/// `rate_limited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`.
    InvalidClient,
    /// `invalid_grant`.
    InvalidGrant,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `invalid_scope`.
    InvalidScope,
    /// `invalid_target` (RFC 8707).
    InvalidTarget,
    /// `access_denied`: the user declined.
    AccessDenied,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `rate_limited` (with `Retry-After`).
    RateLimited,
    /// `invalid_token` (RFC 6750 §3.1), at `/userinfo`.
    InvalidToken,
    /// `insufficient_scope` (RFC 6750 §3.1), at `/userinfo`.
    InsufficientScope,
    /// No bearer token at all (RFC 6750 §3.1: no error code is sent).
    MissingToken,
    /// A code the provider sent in its authorization response, passed on to
    /// the app (one of [`super::callback::PROVIDER_ERRORS`]).
    Provider(&'static str),
}

impl Code {
    /// The code as sent.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::RateLimited => "rate_limited",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::MissingToken => "invalid_request",
            Self::Provider(code) => code,
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken | Self::MissingToken => {
                StatusCode::UNAUTHORIZED
            }
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A failure of the front: the code and what the caller is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct FrontError {
    /// The RFC error code.
    pub code: Code,
    /// What went wrong, in words fit for the caller.
    pub description: String,
    /// Seconds to wait, for `rate_limited` and `temporarily_unavailable`.
    pub retry_after: Option<u64>,
    /// Why the provider could not be reached, for the operator (logged,
    /// and printed by `check-config`; never told to the caller).
    pub cause: Option<String>,
}

impl FrontError {
    /// A failure with `code`, told as `description`.
    #[must_use]
    pub fn new(code: Code, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
            cause: None,
        }
    }

    /// `invalid_request`.
    #[must_use]
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(Code::InvalidRequest, description)
    }

    /// `invalid_grant`.
    #[must_use]
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(Code::InvalidGrant, description)
    }

    /// `rate_limited`, to retry after `seconds`.
    #[must_use]
    pub fn rate_limited(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(Code::RateLimited, "too many requests; retry later")
        }
    }

    /// `temporarily_unavailable`, told as `description`: retrying in a few
    /// seconds may help.
    #[must_use]
    pub fn busy(description: impl Into<String>) -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(Code::TemporarilyUnavailable, description)
        }
    }

    /// `temporarily_unavailable`: the provider cannot be reached now. The
    /// cause is logged, not told.
    #[must_use]
    pub fn unavailable(cause: &str) -> Self {
        tracing::warn!(%cause, "front: the provider is unavailable");
        Self {
            cause: Some(cause.to_owned()),
            ..Self::busy("the identity provider cannot be reached; retry later")
        }
    }

    /// `server_error`: a fault of the gateway. The cause is logged, not told.
    #[must_use]
    pub fn internal(cause: &str) -> Self {
        tracing::error!(%cause, "front: internal error");
        Self::new(
            Code::ServerError,
            "the gateway failed to handle the request; it has been logged",
        )
    }
}

impl From<StoreError> for FrontError {
    fn from(error: StoreError) -> Self {
        Self::internal(&error.to_string())
    }
}

/// A failure shown to the user as a page: never redirected anywhere.
#[derive(Debug)]
pub struct Page(pub FrontError);

impl From<FrontError> for Page {
    fn from(error: FrontError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let error = self.0;
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Authorization failed</title></head><body><h1>Authorization failed</h1>\
             <p><code>{}</code>: {}</p><p>Nothing was sent back to the application.</p>\
             </body></html>",
            error.code.as_str(),
            escape_html(&error.description)
        );
        finish((error.code.status(), Html(html)).into_response(), &error)
    }
}

/// A failure at `/token`: an RFC 6749 §5.2 JSON body.
#[derive(Debug)]
pub struct TokenFailure(pub FrontError);

impl From<FrontError> for TokenFailure {
    fn from(error: FrontError) -> Self {
        Self(error)
    }
}

impl IntoResponse for TokenFailure {
    fn into_response(self) -> Response {
        let error = self.0;
        let body = json!({ "error": error.code.as_str(), "error_description": error.description });
        let mut response = finish((error.code.status(), Json(body)).into_response(), &error);
        if error.code == Code::InvalidClient {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"token\""),
            );
        }
        response
    }
}

/// A failure at a resource the gateway serves itself (`/userinfo`): RFC
/// 6750 §3, the code in `WWW-Authenticate` and in a JSON body.
#[derive(Debug)]
pub struct BearerFailure(pub FrontError);

impl IntoResponse for BearerFailure {
    fn into_response(self) -> Response {
        let error = self.0;
        let challenge = match error.code {
            Code::InvalidToken | Code::InsufficientScope => format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                error.code.as_str(),
                error.description
            ),
            _ => "Bearer".to_owned(),
        };
        let mut response = TokenFailure(error).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Headers every failure carries: `Cache-Control: no-store`, and
/// `Retry-After` when there is a time to wait.
fn finish(mut response: Response, error: &FrontError) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `text` safe inside HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_the_caller_sent() {
        assert_eq!(
            escape_html("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
