//! `GET|PUT|DELETE /register/{client_id}`: RFC 7592 client management.

use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use super::client_response::ClientInformationReply;
use super::error::ApiError;
use super::extract::{BearerToken, CallerIp, ClientIdPath, MetadataJson, bearer};
use super::observe::RouteLabel;
use super::routes;
use crate::domain::{RegistrationAccessToken, RegistrationError};
use crate::registration::{Authenticated, ManageAction, RequestContext};

/// The path of a client's RFC 7592 routes.
pub const CLIENT_ROUTE: &str = "/register/{client_id}";

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
    read_client(&state, &client_id, ip, &token).await
}

async fn read_client(
    state: &HttpState,
    client_id: &str,
    ip: CallerIp,
    token: &RegistrationAccessToken,
) -> Result<Response, ApiError> {
    let (client, context) = admit(state, ManageAction::Read, ip, client_id, token).await?;
    let info = state.service.read(client, &context);
    Ok(state.read_answers.reply(info, state))
}

/// The RFC 7592 read, answered ahead of the router.
///
/// Reads are most of the traffic, and under load the router's own work
/// (matching, the route's boxed and cloned services, the extension maps
/// it fills) was a tenth of a read. A `GET` whose path is
/// `/register/` and one segment with nothing to decode, sent without an
/// `Origin`, needs none of it: it is answered here by [`read`]'s own steps
/// with the `Vary` the route adds, and counted under the route's label
/// ([`ReadShortcut::ROUTE`]). Anything else (a browser's
/// request, which needs CORS, a percent-encoded id, `HEAD`) goes to the
/// router.
///
/// Most such reads are of a client and an answer held in memory, by its
/// owner, within its budget, and log nothing: [`ReadShortcut::from_memory`]
/// answers those before the request's span is even made (a tenth of the
/// read again). Every other read, and any that has something to log, is
/// answered by [`ReadShortcut::answer`], inside the span.
pub struct ReadShortcut {
    state: HttpState,
}

impl ReadShortcut {
    /// Reads with `state`.
    #[must_use]
    pub fn new(state: HttpState) -> Self {
        Self { state }
    }

    /// The label of the answers, the route's.
    pub const ROUTE: RouteLabel = RouteLabel(CLIENT_ROUTE);

    /// The client id and the token of `request`, when it is a read the
    /// shortcut takes and presents a well-formed token.
    #[must_use]
    pub fn plain_read(request: &Request) -> Option<(&str, RegistrationAccessToken)> {
        let client_id = Self::client_id(request)?;
        let Some(Ok(token)) = bearer(request.headers()) else {
            return None;
        };
        Some((client_id, RegistrationAccessToken::presented(token)))
    }

    /// The answer to a [`Self::plain_read`] of `client_id` with `token`
    /// from memory, without logging anything, when everything it needs is
    /// held; `None` leaves the read to [`Self::answer`].
    pub async fn from_memory(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
    ) -> Option<Response> {
        let state = &self.state;
        let client = state.service.read_from_memory(client_id, token).await?;
        let mut response = state.read_answers.held_reply(&client, token)?;
        // The budget last: a read it admits is answered here, so the full
        // way never counts the same read a second time.
        if !state.limits.admits_management(client_id) {
            return None;
        }
        routes::vary_as_cors_would(&mut response);
        Some(response)
    }

    /// The answer to `request`, from `peer`, if it is a read the shortcut
    /// takes; otherwise `request`, untouched.
    pub async fn answer(&self, request: Request, peer: IpAddr) -> Result<Response, Request> {
        let Some(client_id) = Self::client_id(&request).map(str::to_owned) else {
            return Err(request);
        };
        let (mut parts, _) = request.into_parts();
        let answer = async {
            let ip = CallerIp::of(peer, &parts.headers, &self.state);
            let BearerToken(token) =
                BearerToken::from_request_parts(&mut parts, &self.state).await?;
            read_client(&self.state, &client_id, ip, &token).await
        };
        let mut response = answer.await.into_response();
        routes::vary_as_cors_would(&mut response);
        Ok(response)
    }

    fn client_id(request: &Request) -> Option<&str> {
        if request.method() != Method::GET || request.headers().contains_key(header::ORIGIN) {
            return None;
        }
        let id = request.uri().path().strip_prefix("/register/")?;
        let plain = !id.is_empty() && !id.contains(['/', '%']);
        plain.then_some(id)
    }
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
