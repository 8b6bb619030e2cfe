//! The client information response (RFC 7591 §3.2.1, RFC 7592 §3): what
//! registration, read and update answer.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::HttpState;
use super::error::ApiError;
use crate::domain::{
    ClientId, ClientSecret, MetadataDocument, RegisteredClient, RegistrationAccessToken,
    RegistrationError,
};
use crate::registration::ClientInformation;

/// Client information: all registered metadata plus the credentials.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientInformationResponse {
    /// The identifier the gateway issued.
    pub client_id: String,
    /// When `client_id` was issued, in seconds since the Unix epoch.
    pub client_id_issued_at: i64,
    /// The client secret; present only in the answer that issued or changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the secret expires (seconds since the epoch; 0 = never); present
    /// for clients that have a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// Bearer token for `registration_client_uri`.
    pub registration_access_token: String,
    /// The client's management endpoint (RFC 7592).
    pub registration_client_uri: String,
    /// The registered metadata, defaults included.
    #[serde(flatten)]
    pub metadata: MetadataDocument,
}

/// A client information response with its status. Every one carries
/// credentials, so every one is sent with `Cache-Control: no-store`.
pub struct ClientInformationReply {
    status: StatusCode,
    body: ClientInformationResponse,
}

impl ClientInformationResponse {
    /// The response for `client`, with URIs under the public base URL.
    fn of(
        client: &RegisteredClient,
        token: &str,
        secret: Option<&ClientSecret>,
        state: &HttpState,
    ) -> Self {
        Self {
            registration_client_uri: state.client_uri(client.client_id.as_str()),
            client_id_issued_at: client.issued_at,
            client_secret: secret.map(|s| s.expose().to_owned()),
            client_secret_expires_at: client
                .client_secret
                .is_some()
                .then_some(client.client_secret_expires_at),
            registration_access_token: token.to_owned(),
            metadata: client.metadata.to_document(),
            client_id: client.client_id.to_string(),
        }
    }
}

impl ClientInformationReply {
    /// Builds the answer for `info`, with URIs under the public base URL.
    pub fn new(status: StatusCode, info: ClientInformation, state: &HttpState) -> Self {
        let body = ClientInformationResponse::of(
            &info.client,
            info.registration_access_token.expose(),
            info.client_secret.as_ref(),
            state,
        );
        Self { status, body }
    }
}

impl IntoResponse for ClientInformationReply {
    fn into_response(self) -> Response {
        match crate::json::exact(&self.body) {
            Ok(json) => json_reply(self.status, json),
            Err(error) => unserializable(error).into_response(),
        }
    }
}

/// A client information answer: JSON that carries credentials, so never
/// stored by a cache.
fn json_reply(status: StatusCode, json: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(json));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn unserializable(error: impl std::fmt::Display) -> ApiError {
    ApiError::Registration(RegistrationError::Internal(format!(
        "cannot serialize the client information: {error}"
    )))
}

/// RFC 7592 read answers, serialized once per revision of each client.
///
/// A read answers the registered document plus the token the app
/// presented, and the document only changes with the client's revision, so
/// it is kept as JSON with a gap where the token goes: a read writes the
/// two halves around the token instead of serializing the document again.
/// Bounded by bytes; an entry for an older revision is replaced, never
/// served.
pub struct ReadAnswers {
    cache: Option<AnswerCache>,
}

/// One client's read answer, split where its token goes.
struct ReadAnswer {
    /// The revision (and issue time, which tells a re-created id apart)
    /// this answer was made from.
    made_from: (i64, i64),
    before_token: Bytes,
    after_token: Bytes,
}

/// The member whose value is spliced in per request.
const TOKEN_MEMBER: &[u8] = br#""registration_access_token":""#;

impl ReadAnswers {
    /// Keeps answers taking at most `max_bytes` between them (none when 0).
    #[must_use]
    pub fn new(max_bytes: u64) -> Self {
        let cache = (max_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, answer: &Arc<ReadAnswer>| {
                    let size = answer.before_token.len() + answer.after_token.len();
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .build()
        });
        Self { cache }
    }

    /// The answer to a read of `info` (which carries no new secret).
    pub fn reply(&self, info: ClientInformation, state: &HttpState) -> Response {
        let Some(cache) = self.cache_for(&info) else {
            return ClientInformationReply::new(StatusCode::OK, info, state).into_response();
        };
        let answer = match held(cache, &info.client) {
            Some(answer) => answer,
            None => match ReadAnswer::of(&info, state) {
                Ok(answer) => {
                    let answer = Arc::new(answer);
                    cache.insert(info.client.client_id.clone(), answer.clone());
                    answer
                }
                Err(error) => return error.into_response(),
            },
        };
        answer.with_token(info.registration_access_token.expose())
    }

    /// The answer to a read of `client` by `token` if it is held: nothing
    /// is made.
    #[must_use]
    pub fn held_reply(
        &self,
        client: &RegisteredClient,
        token: &RegistrationAccessToken,
    ) -> Option<Response> {
        let cache = self.cache.as_ref().filter(|_| splicable(token))?;
        let answer = held(cache, client)?;
        Some(answer.with_token(token.expose()))
    }

    /// The cache, for an answer that can be kept: no new secret in it, and
    /// a token that can be spliced in.
    fn cache_for(&self, info: &ClientInformation) -> Option<&AnswerCache> {
        let keepable = info.client_secret.is_none() && splicable(&info.registration_access_token);
        self.cache.as_ref().filter(|_| keepable)
    }
}

/// Whether `token` can be written into JSON as it is, with no escaping.
fn splicable(token: &RegistrationAccessToken) -> bool {
    token
        .expose()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The read answers kept, by client.
type AnswerCache = moka::sync::Cache<ClientId, Arc<ReadAnswer>>;

/// The answer held for `client`, if it was made from this revision.
fn held(cache: &AnswerCache, client: &RegisteredClient) -> Option<Arc<ReadAnswer>> {
    cache
        .get(&client.client_id)
        .filter(|answer| answer.made_from == (client.revision, client.issued_at))
}

impl ReadAnswer {
    /// Serializes `info` with an empty token and splits it there. The token
    /// member comes before the metadata (field order), so its first
    /// occurrence is the top-level one.
    fn of(info: &ClientInformation, state: &HttpState) -> Result<Self, ApiError> {
        let client = &info.client;
        let body = ClientInformationResponse::of(client, "", None, state);
        let json = Bytes::from(crate::json::exact(&body).map_err(unserializable)?);
        let gap = json
            .windows(TOKEN_MEMBER.len())
            .position(|window| window == TOKEN_MEMBER)
            .map(|at| at + TOKEN_MEMBER.len())
            .ok_or_else(|| unserializable("no token member"))?;
        Ok(Self {
            made_from: (client.revision, client.issued_at),
            before_token: json.slice(..gap),
            after_token: json.slice(gap..),
        })
    }

    /// The answer, with `token` spliced in.
    fn with_token(&self, token: &str) -> Response {
        let mut body =
            Vec::with_capacity(self.before_token.len() + token.len() + self.after_token.len());
        body.extend_from_slice(&self.before_token);
        body.extend_from_slice(token.as_bytes());
        body.extend_from_slice(&self.after_token);
        json_reply(StatusCode::OK, body)
    }
}
