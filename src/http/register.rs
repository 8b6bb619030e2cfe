//! `POST /register`: RFC 7591 client registration.

use axum::extract::State;
use axum::http::StatusCode;

use super::HttpState;
use super::client_response::ClientInformationReply;
use super::error::ApiError;
use super::extract::{MetadataJson, RegistrationContext};
use crate::domain::RegistrationError;

/// Registers a client.
#[utoipa::path(
    post,
    path = "/register",
    tag = "registration",
    security((), ("initial_access_token" = [])),
    request_body(content = super::wire::MetadataDocument, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = super::client_response::ClientInformationResponse,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "`invalid_redirect_uri`, `invalid_client_metadata`, `invalid_software_statement` or `unapproved_software_statement`",
            body = super::error::ErrorBody),
        (status = 401, description = "Initial access token missing (when required), unknown, expired, revoked or used up",
            body = super::error::ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 413, description = "Body larger than `server.max_body_bytes`", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The provider is unavailable", body = super::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Gateway fault", body = super::error::ErrorBody),
    )
)]
pub async fn register(
    State(state): State<HttpState>,
    RegistrationContext(context): RegistrationContext,
    MetadataJson(document): MetadataJson,
) -> Result<ClientInformationReply, ApiError> {
    if let Some(ip) = context.ip {
        let token = context.initial_access_token.as_ref().map(|t| t.expose());
        state
            .limits
            .check_registration(ip, token, &document)
            .map_err(ApiError::RateLimited)?;
    }
    let info = match state.service.register(document, &context).await {
        Ok(info) => info,
        Err(error @ RegistrationError::InvalidInitialAccessToken(_)) => {
            if let Some(ip) = context.ip {
                state
                    .limits
                    .check_failed_authentication(ip)
                    .map_err(ApiError::RateLimited)?;
            }
            return Err(error.into());
        }
        Err(error) => return Err(error.into()),
    };
    Ok(ClientInformationReply::new(
        StatusCode::CREATED,
        info,
        &state,
    ))
}
