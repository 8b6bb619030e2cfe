//! `POST /register`: RFC 7591 client registration.

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;

use super::HttpState;
use super::client_response::ClientInformationReply;
use super::error::ApiError;
use super::extract::{MetadataJson, RegistrationContext};
use crate::domain::RegistrationError;
use crate::registration::RequestContext;

/// Registers a client.
#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/register",
    tag = "registration",
    security((), ("initial_access_token" = [])),
    request_body(content = crate::domain::MetadataDocument, content_type = "application/json"),
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
))]
pub async fn register(
    State(state): State<HttpState>,
    RegistrationContext(context): RegistrationContext,
    request: Request,
) -> Result<ClientInformationReply, ApiError> {
    // The initial access token first: a request that will be refused holds
    // nothing while its body comes in.
    let admission = state
        .service
        .admit_registration(&context)
        .await
        .map_err(|error| refusal(&state, &context, error))?;
    let MetadataJson(document) = MetadataJson::from_request(request, &state).await?;
    if let Some(ip) = context.ip {
        let token = context.initial_access_token.as_ref().map(|t| t.expose());
        state
            .limits
            .check_registration(ip, token, &document)
            .map_err(ApiError::RateLimited)?;
    }
    let info = state
        .service
        .register(admission, document, &context)
        .await
        .map_err(|error| refusal(&state, &context, error))?;
    Ok(ClientInformationReply::new(
        StatusCode::CREATED,
        info,
        &state,
    ))
}

/// A registration refused as answered: a bad initial access token also
/// counts against the caller's failed authentications, and is answered 429
/// once the address has failed too often.
fn refusal(state: &HttpState, context: &RequestContext, error: RegistrationError) -> ApiError {
    if let (RegistrationError::InvalidInitialAccessToken(_), Some(ip)) = (&error, context.ip) {
        if let Err(retry_after) = state.limits.check_failed_authentication(ip) {
            return ApiError::RateLimited(retry_after);
        }
    }
    error.into()
}
