//! The authorization front's routes ([`crate::front`]): `GET /authorize`, `GET /callback` and `POST /token`
//! (with CORS, for browser-based apps). Handlers extract, call
//! [`Front`](crate::front::Front),
//! and answer with a redirect, a page, or the provider's token response.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::HttpState;
use super::extract::CallerIp;
use super::routes::Routes;
use crate::front::authorize::Next;
use crate::front::error::{FrontError, Page, TokenFailure};
use crate::front::token::ProviderAnswer;
use crate::limiter::address_key;

/// Adds the front's routes when `front` is on.
pub fn routes(routes: Routes<'_>, front: bool) -> Routes<'_> {
    if !front {
        return routes;
    }
    routes
        .plain("/authorize", get(authorize))
        .plain("/callback", get(callback))
        .browser("/token", &[Method::POST], post(token))
}

async fn authorize(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = query.unwrap_or_default();
    match front.authorize(&address_key(ip), query.as_bytes()).await {
        Ok(Next::Redirect(location)) => redirect_or_page(Ok(location)),
        Ok(Next::Consent(page)) => page.into_response(),
        Err(error) => Page(error).into_response(),
    }
}

async fn callback(State(state): State<HttpState>, RawQuery(query): RawQuery) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = query.unwrap_or_default();
    redirect_or_page(front.callback(query.as_bytes()).await)
}

async fn token(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|mime| mime.trim() == "application/x-www-form-urlencoded")
        });
    let body = match body {
        Ok(body) if form => body,
        Ok(_) => {
            let error =
                FrontError::invalid_request("the body must be application/x-www-form-urlencoded");
            return TokenFailure(error).into_response();
        }
        Err(rejection) => {
            let error = FrontError::invalid_request(rejection.body_text());
            return TokenFailure(error).into_response();
        }
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match front.token(&address_key(ip), authorization, &body).await {
        Ok(answer) => answer.into_response(),
        Err(error) => TokenFailure(error).into_response(),
    }
}

/// A `302 Found` to `location`, or the failure as a page.
fn redirect_or_page(outcome: Result<String, FrontError>) -> Response {
    match outcome {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("no-referrer"),
                    ),
                ],
            )
                .into_response(),
            Err(error) => Page(FrontError::internal(&error.to_string())).into_response(),
        },
        Err(error) => Page(error).into_response(),
    }
}

impl IntoResponse for ProviderAnswer {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        if let Some(content_type) = self.content_type {
            headers.insert(header::CONTENT_TYPE, content_type);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}
