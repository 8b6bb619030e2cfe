//! Request extractors with RFC-shaped rejections: a JSON metadata body and a
//! bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::HttpState;
use super::error::ApiError;
use crate::domain::{
    InitialAccessToken, MetadataDocument, RegistrationAccessToken, RegistrationError,
};
use crate::registration::RequestContext;

/// A client metadata document from a JSON request body.
///
/// A wrong content type, malformed JSON, a non-object or a member of the wrong
/// type is `400 invalid_client_metadata` naming the member; a body over the
/// limit is `413`.
#[derive(Debug)]
pub struct MetadataJson(pub MetadataDocument);

impl<S: Send + Sync> FromRequest<S> for MetadataJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::MalformedBody(
                "the body must be sent as Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::MalformedBody(rejection.body_text())
                }
            })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::MalformedBody(format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::MalformedBody(
                "the body must be a JSON object".into(),
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|e| ApiError::MalformedBody(format!("`{}`: {}", e.path(), e.inner())))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// The caller's address: the peer, or what a trusted proxy forwarded for.
#[derive(Debug, Clone, Copy)]
pub struct CallerIp(pub IpAddr);

impl FromRequestParts<HttpState> for CallerIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(Self(state.limits.client_ip(peer, &parts.headers)))
    }
}

/// The `{client_id}` of an RFC 7592 route. An id that does not decode (such
/// as `%ff`, which is not UTF-8) names no client, so it gets the answer an
/// unknown client gets: `401 invalid_token`, never a plain-text 400.
#[derive(Debug)]
pub struct ClientIdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|_| ApiError::Registration(RegistrationError::InvalidToken))
    }
}

/// The text of `Authorization: Bearer …` (RFC 6750 §2.1), if any.
fn bearer(parts: &Parts) -> Option<Result<String, ()>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let parsed = value.to_str().ok().and_then(|text| {
        let (scheme, token) = text.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
    });
    Some(parsed.ok_or(()))
}

/// What a registration request brings besides its body: the caller's
/// address and the initial access token, if one was presented.
#[derive(Debug)]
pub struct RegistrationContext(pub RequestContext);

impl FromRequestParts<HttpState> for RegistrationContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, ApiError> {
        let CallerIp(ip) = CallerIp::from_request_parts(parts, state).await?;
        // A malformed header is a token that matches nothing.
        let token = bearer(parts).map(|t| InitialAccessToken::presented(t.unwrap_or_default()));
        Ok(Self(RequestContext {
            ip: Some(ip),
            initial_access_token: token,
        }))
    }
}

/// The registration access token from `Authorization: Bearer …` (RFC 6750 §2.1).
#[derive(Debug)]
pub struct BearerToken(pub RegistrationAccessToken);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match bearer(parts) {
            None => Err(ApiError::MissingToken),
            Some(Err(())) => Err(ApiError::Registration(RegistrationError::InvalidToken)),
            Some(Ok(token)) => Ok(Self(RegistrationAccessToken::presented(token))),
        }
    }
}
