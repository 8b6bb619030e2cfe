//! The authorization front's routes ([`crate::front`]): `GET /authorize`,
//! `POST /consent` (the consent page's form), `GET /callback`, and `POST
//! /token` and `POST /revoke` (with CORS, for browser-based apps). Handlers extract, call
//! [`Front`](crate::front::Front),
//! and answer with a redirect, a page, or the provider's token response.

use crate::store::activity::Activity;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::HttpState;
use super::extract::CallerIp;
use super::routes::Routes;
use crate::front::authorize::Next;
use crate::front::error::{BearerFailure, FrontError, Page, TokenFailure};
use crate::front::provider_call::ProviderAnswer;

/// Adds the front's routes when `front` is on.
pub fn routes(routes: Routes<'_>, front: bool) -> Routes<'_> {
    if !front {
        return routes;
    }
    routes
        .plain("/authorize", get(authorize))
        .plain("/consent", post(consent))
        .plain("/callback", get(callback))
        .browser("/token", &[Method::POST], post(token))
        .browser("/revoke", &[Method::POST], post(revoke))
        .browser("/jwks", &[Method::GET], get(jwks))
        .plain("/introspect", post(introspect))
        .browser(
            "/userinfo",
            &[Method::GET, Method::POST],
            get(userinfo).post(userinfo),
        )
}

async fn authorize(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = query.unwrap_or_default();
    let next = front.authorize(ip, query.as_bytes(), &headers).await;
    if next.is_ok() {
        state.service.journal().count(Activity::Login);
    }
    match next {
        Ok(Next::Redirect(location)) => redirect_or_page(Ok(location)),
        Ok(Next::Consent { page, set_cookie }) => {
            let mut response = page.into_response();
            if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => Page(error).into_response(),
    }
}

/// The consent page's form. A `303` sends the browser on with a `GET`.
async fn consent(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let origin = headers
        .get(header::ORIGIN)
        .map(|origin| origin.to_str().unwrap_or("(not text)"));
    let outcome = match form_body(&headers, body) {
        Ok(form) => front.consent(ip, origin, &form, &headers).await,
        Err(error) => Err(error),
    };
    let set_cookie = outcome
        .as_ref()
        .ok()
        .and_then(|consented| consented.set_cookie.as_deref())
        .and_then(|cookie| HeaderValue::from_str(cookie).ok());
    let mut response = redirect_or_page(outcome.map(|consented| consented.location));
    if response.status() == StatusCode::FOUND {
        *response.status_mut() = StatusCode::SEE_OTHER;
        if let Some(cookie) = set_cookie {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
    }
    response
}

async fn callback(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = query.unwrap_or_default();
    let browser = front.browser_cookie().presented(&headers);
    redirect_or_page(front.callback(query.as_bytes(), browser).await)
}

async fn token(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let journal = state.service.journal().clone();
    let (front, form, authorization) = match client_post(state, &headers, body) {
        Ok(parts) => parts,
        Err(refused) => return refused.into_response(),
    };
    match front.token(ip, authorization, &form).await {
        Ok(answer) => {
            journal.count(Activity::TokenGrant);
            answer.into_response()
        }
        Err(error) => TokenFailure(error).into_response(),
    }
}

/// RFC 7009 revocation: `200` with an empty body, or an RFC 6749 §5.2
/// error.
async fn revoke(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let (front, form, authorization) = match client_post(state, &headers, body) {
        Ok(parts) => parts,
        Err(refused) => return refused.into_response(),
    };
    match front.revoke(ip, authorization, &form).await {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(error) => TokenFailure(error).into_response(),
    }
}

/// Why a client's POST to `/token` or `/revoke` goes no further.
enum Refused {
    /// The front is off.
    Off,
    /// The body is not a form.
    NotAForm(FrontError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::Off => StatusCode::NOT_FOUND.into_response(),
            Self::NotAForm(error) => TokenFailure(error).into_response(),
        }
    }
}

/// RFC 7662 introspection of the gateway's own access tokens.
async fn introspect(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let (front, form, authorization) = match client_post(state, &headers, body) {
        Ok(parts) => parts,
        Err(refused) => return refused.into_response(),
    };
    match front.introspect(ip, authorization, &form).await {
        Ok(answer) => no_store_json(answer),
        Err(error) => TokenFailure(error).into_response(),
    }
}

/// OpenID Connect userinfo for the gateway's own access tokens.
async fn userinfo(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match front.userinfo(ip, authorization(&headers)).await {
        Ok(answer) => no_store_json(answer),
        Err(error) => BearerFailure(error).into_response(),
    }
}

/// The gateway's key set (`[front] tokens = "gateway"`), cached by resource
/// servers for as long as a new key is published before it signs.
async fn jwks(State(state): State<HttpState>) -> Response {
    let Some(front) = state.front else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match front.published_keys().await {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Ok(set)) => {
            let max_age = crate::front::tokens::keys::PUBLISH_AHEAD.as_secs();
            let cache = format!("public, max-age={max_age}");
            let mut response = axum::Json(set).into_response();
            if let Ok(value) = HeaderValue::from_str(&cache) {
                response.headers_mut().insert(header::CACHE_CONTROL, value);
            }
            response
        }
        Some(Err(error)) => TokenFailure(error).into_response(),
    }
}

/// A JSON answer no cache may keep (introspection, userinfo).
fn no_store_json(answer: serde_json::Value) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(answer),
    )
        .into_response()
}

/// The request's `Authorization` header, if it is text.
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
}

/// What a client's POST to `/token`, `/revoke` or `/introspect` carries: the front, the
/// form and the `Authorization` header.
fn client_post(
    state: HttpState,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(std::sync::Arc<crate::front::Front>, Bytes, Option<&str>), Refused> {
    let front = state.front.ok_or(Refused::Off)?;
    let form = form_body(headers, body).map_err(Refused::NotAForm)?;
    let authorization = authorization(headers);
    Ok((front, form, authorization))
}

/// A form body (`application/x-www-form-urlencoded`), or why it is not one.
fn form_body(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Bytes, FrontError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|mime| mime.trim() == "application/x-www-form-urlencoded")
        });
    match body {
        Ok(body) if form => Ok(body),
        Ok(_) => Err(FrontError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )),
        Err(rejection) => Err(FrontError::invalid_request(rejection.body_text())),
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
