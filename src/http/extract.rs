//! Request extractors with RFC-shaped rejections: a JSON metadata body and a
//! bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::HttpState;
use super::error::ApiError;
use crate::domain::{
    InitialAccessToken, MetadataDocument, RegistrationAccessToken, RegistrationError,
};
use crate::registration::RequestContext;

/// A client metadata document from a JSON request body.
///
/// A wrong content type, malformed JSON, a non-object, a member of the wrong
/// type or more JSON values than [`HttpState::max_json_values`] is `400
/// invalid_client_metadata` naming the member; a body over the limit is
/// `413`. The document is read straight from the body, with no JSON tree
/// built first.
#[derive(Debug)]
pub struct MetadataJson(pub MetadataDocument);

impl FromRequest<HttpState> for MetadataJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &HttpState) -> Result<Self, ApiError> {
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
        let not_json = |e: serde_json::Error| {
            ApiError::MalformedBody(format!("the body is not valid JSON: {e}"))
        };
        let mut left = state.max_json_values;
        ValueBudget { left: &mut left }
            .deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ApiError::MalformedBody(format!(
                    "the body has more than {} JSON values",
                    state.max_json_values
                )),
                _ => not_json(e),
            })?;
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::MalformedBody(
                "the body must be a JSON object".into(),
            ));
        }
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .map(Self)
            .map_err(|e| ApiError::MalformedBody(format!("`{}`: {}", e.path(), e.inner())))
    }
}

/// The most JSON values a metadata body of at most `max_body_bytes` may
/// hold: one per 256 bytes of the limit, and at least 1024, where an object
/// counts as [`OBJECT_WEIGHT`] values and each member name as one. Built,
/// a value costs far more memory than its few bytes of text (an object with
/// one member, several hundred bytes), so this, with the size limit, bounds
/// what one request makes the gateway hold.
#[must_use]
pub fn json_value_limit(max_body_bytes: usize) -> usize {
    (max_body_bytes / 256).max(1024)
}

/// What an object costs against [`json_value_limit`]: about the memory of
/// the smallest map, in 64-byte units.
pub const OBJECT_WEIGHT: usize = 16;

/// Walks a JSON document without building it, spending from `left` for each
/// value (see [`json_value_limit`]); fails when too little is left.
struct ValueBudget<'a> {
    left: &'a mut usize,
}

impl ValueBudget<'_> {
    fn spend<E: de::Error>(&mut self, values: usize) -> Result<(), E> {
        *self.left = self
            .left
            .checked_sub(values)
            .ok_or_else(|| E::custom("too many JSON values"))?;
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ValueBudget<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueBudget<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while items
            .next_element_seed(ValueBudget { left: self.left })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut members: A) -> Result<(), A::Error> {
        self.spend(OBJECT_WEIGHT)?;
        while members.next_key::<IgnoredAny>()?.is_some() {
            self.spend(1)?;
            members.next_value_seed(ValueBudget { left: self.left })?;
        }
        Ok(())
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
        Ok(Self::of(peer, &parts.headers, state))
    }
}

impl CallerIp {
    /// The address of a request that came from `peer` with `headers`.
    #[must_use]
    pub fn of(peer: IpAddr, headers: &HeaderMap, state: &HttpState) -> Self {
        Self(state.limits.client_ip(peer, headers))
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
pub(super) fn bearer(headers: &HeaderMap) -> Option<Result<String, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
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
        let token =
            bearer(&parts.headers).map(|t| InitialAccessToken::presented(t.unwrap_or_default()));
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
        match bearer(&parts.headers) {
            None => Err(ApiError::MissingToken),
            Some(Err(())) => Err(ApiError::Registration(RegistrationError::InvalidToken)),
            Some(Ok(token)) => Ok(Self(RegistrationAccessToken::presented(token))),
        }
    }
}
