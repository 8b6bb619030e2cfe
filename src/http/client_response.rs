//! The client information response (RFC 7591 §3.2.1, RFC 7592 §3): what
//! registration, read and update answer.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::HttpState;
use super::error::ApiError;
use crate::domain::{ClientSecret, MetadataDocument, RegisteredClient, RegistrationError};
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
    pub(super) fn of(
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
pub(super) fn json_reply(status: StatusCode, json: Vec<u8>) -> Response {
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

/// A client information answer that could not be serialized.
pub(super) fn unserializable(
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ApiError {
    ApiError::Registration(RegistrationError::internal(error))
}
