//! `GET|PUT|DELETE /register/{client_id}`: RFC 7592 client management. A
//! read's answer is left to the edge's memory ([`super::reads`]), which
//! answers the next reads of the client ahead of the router.

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::HttpState;
use super::client_response::ClientInformationReply;
use super::error::ApiError;
use super::extract::{BearerToken, CallerIp, ClientIdPath, MetadataJson};
use crate::domain::{RegistrationAccessToken, RegistrationError};
use crate::registration::{Authenticated, ManageAction, RequestContext};

/// Verifies the token, then applies the client's own budget: a wrong token
/// counts against the caller's address (and is answered 429 once that has
/// failed too often), never against the client, so nobody can lock an app
/// out of its registration.
async fn admit(
    state: &HttpState,
    action: ManageAction,
    ip: CallerIp,
    client_id: &str,
    token: &RegistrationAccessToken,
) -> Result<(Authenticated, RequestContext), ApiError> {
    let context = RequestContext {
        ip: Some(ip.0),
        initial_access_token: None,
    };
    let client = match state
        .service
        .authenticate(action, client_id, token, &context)
        .await
    {
        Ok(client) => client,
        Err(error @ RegistrationError::InvalidToken) => {
            state
                .limits
                .check_failed_authentication(ip.0)
                .map_err(ApiError::RateLimited)?;
            return Err(error.into());
        }
        Err(error) => return Err(error.into()),
    };
    state
        .limits
        .check_management(ip.0, client.client_id().as_str())
        .map_err(ApiError::RateLimited)?;
    state.service.usage().used(client.client_id().as_str());
    Ok((client, context))
}

/// Reads a client's current registration.
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/register/{client_id}",
    tag = "management",
    params(("client_id" = String, Path, description = "The client's identifier")),
    security(("registration_access_token" = [])),
    responses(
        (status = 200, description = "Current registration", body = super::client_response::ClientInformationResponse),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
        (status = 401, description = "Missing or invalid token, or unknown client (indistinguishable)",
            body = super::error::ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 500, description = "Gateway fault", body = super::error::ErrorBody),
    )
))]
pub async fn read(
    State(state): State<HttpState>,
    ClientIdPath(client_id): ClientIdPath,
    ip: CallerIp,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    let mark = state.read_answers.mark();
    let (client, context) = admit(&state, ManageAction::Read, ip, &client_id, &token).await?;
    let info = state.service.read(client, &context);
    Ok(state.read_answers.answer_and_keep(info, &state, mark))
}

/// Replaces a client's whole registration.
#[cfg_attr(feature = "openapi", utoipa::path(
    put,
    path = "/register/{client_id}",
    tag = "management",
    params(("client_id" = String, Path, description = "The client's identifier")),
    security(("registration_access_token" = [])),
    request_body(content = crate::domain::MetadataDocument, content_type = "application/json",
        description = "The full new metadata, with `client_id` (and `client_secret` if sent, equal to the current one)"),
    responses(
        (status = 200, description = "Updated registration", body = super::client_response::ClientInformationResponse),
        (status = 400, description = "`invalid_redirect_uri` or `invalid_client_metadata`; the old registration is kept",
            body = super::error::ErrorBody),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
        (status = 401, description = "Missing or invalid token, or unknown client",
            body = super::error::ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 413, description = "Body larger than `server.max_body_bytes`", body = super::error::ErrorBody),
        (status = 503, description = "The provider is unavailable", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
        (status = 500, description = "Gateway fault", body = super::error::ErrorBody),
    )
))]
pub async fn update(
    State(state): State<HttpState>,
    ClientIdPath(client_id): ClientIdPath,
    ip: CallerIp,
    BearerToken(token): BearerToken,
    request: Request,
) -> Result<ClientInformationReply, ApiError> {
    // The token first: a request that will be refused holds nothing while
    // its body comes in.
    let (client, context) = admit(&state, ManageAction::Replace, ip, &client_id, &token).await?;
    let MetadataJson(document) = MetadataJson::from_request(request, &state).await?;
    let info = state.service.update(client, document, &context).await?;
    Ok(ClientInformationReply::new(StatusCode::OK, info, &state))
}

/// Deletes a client; its registration access token stops working.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete,
    path = "/register/{client_id}",
    tag = "management",
    params(("client_id" = String, Path, description = "The client's identifier")),
    security(("registration_access_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
        (status = 401, description = "Missing or invalid token, or unknown client",
            body = super::error::ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 503, description = "The provider is unavailable", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
        (status = 500, description = "Gateway fault", body = super::error::ErrorBody),
    )
))]
pub async fn delete(
    State(state): State<HttpState>,
    ClientIdPath(client_id): ClientIdPath,
    ip: CallerIp,
    BearerToken(token): BearerToken,
) -> Result<StatusCode, ApiError> {
    let (client, context) = admit(&state, ManageAction::Delete, ip, &client_id, &token).await?;
    state.service.delete(client, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}
