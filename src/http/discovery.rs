//! `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`
//! (also in RFC 8414's path-insertion form, when `public_url` has a path):
//! the gateway's registration endpoint and what it accepts. MCP clients
//! refuse to go on without `code_challenge_methods_supported`, so it is
//! always there: the provider's, or `["S256"]`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;

use super::HttpState;
use super::error::ApiError;
use crate::domain::values::{AuthMethod, GrantType};

/// Authorization server metadata (RFC 8414) as far as registration goes.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveryDocument {
    /// The issuer identifier.
    pub issuer: String,
    /// Where apps register (this gateway).
    pub registration_endpoint: String,
    /// Grant types a client may register.
    pub grant_types_supported: Vec<&'static str>,
    /// Response types a client may register.
    pub response_types_supported: Vec<&'static str>,
    /// Token endpoint authentication methods a client may register.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// PKCE methods (RFC 7636): `S256`.
    pub code_challenge_methods_supported: Vec<&'static str>,
}

/// What PKCE method to announce when the provider announces none: the one
/// MCP requires.
const CODE_CHALLENGE_METHODS: [&str; 1] = ["S256"];

/// Response type combinations in common use (OAuth 2.0 Multiple Response Types).
const RESPONSE_TYPES: [&str; 8] = [
    "code",
    "id_token",
    "token",
    "code id_token",
    "code token",
    "id_token token",
    "code id_token token",
    "none",
];

/// The provider's own document with the gateway's registration endpoint, or
/// the gateway's document for the built-in registry.
async fn document(state: &HttpState) -> Result<Json<Value>, ApiError> {
    if let Some(front) = &state.front {
        let unavailable = |error: crate::front::error::FrontError| {
            ApiError::Registration(crate::domain::RegistrationError::TemporarilyUnavailable {
                reason: error.description,
                retry_after_secs: 5,
            })
        };
        let provider = front.provider_document().await.map_err(unavailable)?;
        let registration_endpoint = state.registration_endpoint();
        return front
            .metadata(provider.as_ref(), &registration_endpoint)
            .await
            .map(Json)
            .map_err(unavailable);
    }
    let provider = state.service.provider_discovery().await?;
    let mut document = match provider {
        Some(document) => document,
        None => serde_json::to_value(own_document(state)).unwrap_or_default(),
    };
    if let Some(members) = document.as_object_mut() {
        members.insert(
            "registration_endpoint".into(),
            Value::String(state.registration_endpoint()),
        );
        members
            .entry("code_challenge_methods_supported")
            .or_insert_with(|| Value::from(CODE_CHALLENGE_METHODS.to_vec()));
    }
    Ok(Json(document))
}

fn own_document(state: &HttpState) -> DiscoveryDocument {
    DiscoveryDocument {
        issuer: state.public_url.to_string(),
        registration_endpoint: state.registration_endpoint(),
        grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
        response_types_supported: RESPONSE_TYPES.to_vec(),
        token_endpoint_auth_methods_supported: AuthMethod::ALL.iter().map(|m| m.as_str()).collect(),
        code_challenge_methods_supported: CODE_CHALLENGE_METHODS.to_vec(),
    }
}

/// OpenID Provider metadata: the provider's, with the gateway's registration endpoint.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses(
        (status = 200, description = "Discovery document (the provider's members, when it has an issuer)", body = DiscoveryDocument),
        (status = 503, description = "The provider's document cannot be fetched", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
    )))]
pub async fn openid_configuration(State(state): State<HttpState>) -> Result<Json<Value>, ApiError> {
    document(&state).await
}

/// OAuth 2.0 authorization server metadata (RFC 8414).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses(
        (status = 200, description = "Discovery document (the provider's members, when it has an issuer)", body = DiscoveryDocument),
        (status = 503, description = "The provider's document cannot be fetched", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
    )))]
pub async fn authorization_server_metadata(
    State(state): State<HttpState>,
) -> Result<Json<Value>, ApiError> {
    document(&state).await
}

/// RFC 8414 §3.1's path-insertion form: with `public_url` at
/// `https://host/dcr`, the metadata is at
/// `https://host/.well-known/oauth-authorization-server/dcr`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/.well-known/oauth-authorization-server/{issuer_path}", tag = "discovery",
    params(("issuer_path" = String, Path, description = "The path of the gateway's public URL")),
    responses(
        (status = 200, description = "Discovery document", body = DiscoveryDocument),
        (status = 404, description = "Not the gateway's path", body = super::error::ErrorBody),
        (status = 503, description = "The provider's document cannot be fetched", body = super::error::ErrorBody,
            headers(("Retry-After" = u64))),
    )))]
pub async fn authorization_server_metadata_at(
    State(state): State<HttpState>,
    Path(issuer_path): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let public_path = url::Url::parse(&state.public_url)
        .map(|url| url.path().trim_matches('/').to_owned())
        .unwrap_or_default();
    if public_path.is_empty() || issuer_path.trim_end_matches('/') != public_path {
        return Err(ApiError::NotFound);
    }
    document(&state).await
}
