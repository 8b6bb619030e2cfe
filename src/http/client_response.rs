//! The client information response (RFC 7591 §3.2.1, RFC 7592 §3): what
//! registration, read and update answer.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::HttpState;
use super::error::ApiError;
use super::wire::MetadataDocument;
use crate::domain::RegistrationError;
use crate::registration::ClientInformation;

/// Client information: all registered metadata plus the credentials.
#[derive(Serialize, ToSchema)]
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

impl ClientInformationReply {
    /// Builds the answer for `info`, with URIs under the public base URL.
    pub fn new(status: StatusCode, info: ClientInformation, state: &HttpState) -> Self {
        let client = info.client;
        let body = ClientInformationResponse {
            registration_client_uri: state.client_uri(client.client_id.as_str()),
            client_id_issued_at: client.issued_at,
            client_secret: info.client_secret.map(|s| s.expose().to_owned()),
            client_secret_expires_at: client
                .client_secret
                .is_some()
                .then_some(client.client_secret_expires_at),
            registration_access_token: info.registration_access_token.expose().to_owned(),
            metadata: client.metadata.to_document().into(),
            client_id: client.client_id.to_string(),
        };
        Self { status, body }
    }
}

impl IntoResponse for ClientInformationReply {
    fn into_response(self) -> Response {
        let headers = [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ];
        match crate::json::exact(&self.body) {
            Ok(json) => (
                self.status,
                headers,
                [(header::CONTENT_TYPE, "application/json")],
                json,
            )
                .into_response(),
            Err(error) => ApiError::Registration(RegistrationError::Internal(format!(
                "cannot serialize the client information: {error}"
            )))
            .into_response(),
        }
    }
}
