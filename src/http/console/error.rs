//! How the console answers what went wrong, in one place: a page without
//! a session leads to the sign-in page (a form post is answered `401`), a
//! post from elsewhere or without its CSRF token is refused `403`, and a
//! fault of the gateway is a `500` page whose cause goes to the log.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::page::{Page, text, with_page_headers};
use crate::domain::{ErrorCode, RegistrationError};
use crate::http::error::Fault;
use crate::store::StoreError;

/// Why a console request was not answered with its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (or an ended one) on a page: go and sign in.
    #[error("sign in first")]
    SignInFirst,
    /// No session (or an ended one) on a form post.
    #[error("no console session")]
    NoSession,
    /// A post from another origin, or without the session's CSRF token.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such client.
    #[error("no such client")]
    NotFound,
    /// What the request asked for makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registration service refused or failed.
    #[error(transparent)]
    Registration(#[from] RegistrationError),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if matches!(self, Self::SignInFirst) {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/console/login"));
            return with_page_headers(response);
        }
        let (status, message) = match &self {
            Self::SignInFirst | Self::NoSession => (
                StatusCode::UNAUTHORIZED,
                "Sign in to the console first.".to_owned(),
            ),
            Self::Forbidden(why) => (StatusCode::FORBIDDEN, format!("Refused: {why}.")),
            Self::NotFound => (StatusCode::NOT_FOUND, "No such client.".to_owned()),
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, why.clone()),
            Self::Registration(error) => match error.error_code() {
                ErrorCode::NotFound => (StatusCode::NOT_FOUND, "No such client.".to_owned()),
                ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The gateway failed; the cause is in its log.".to_owned(),
                ),
                _ => (StatusCode::BAD_REQUEST, error.to_string()),
            },
            Self::Store(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The gateway failed; the cause is in its log.".to_owned(),
            ),
        };
        let page = Page {
            title: "Console",
            operator: None,
            body: format!(
                "<p>{}</p><p><a href=\"/console/clients\">Back to the clients</a></p>",
                text(&message)
            ),
            status,
        };
        let mut response = page.into_response();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            response.extensions_mut().insert(Fault(
                Arc::new(self) as Arc<dyn std::error::Error + Send + Sync>
            ));
        }
        response
    }
}
