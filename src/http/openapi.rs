//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers
//! and the types they read and answer (the metadata document is the
//! domain's) so it cannot drift from them. Built with the `openapi` feature.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The gateway's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dcr-gateway",
        description = "OAuth 2.0 Dynamic Client Registration (RFC 7591) and management (RFC 7592)."
    ),
    paths(
        super::register::register,
        super::configure::read,
        super::configure::update,
        super::configure::delete,
        super::discovery::openid_configuration,
        super::discovery::authorization_server_metadata,
        super::discovery::authorization_server_metadata_at,
        super::health::alive,
        super::health::ready,
        super::health::metrics,
        openapi_json,
    ),
    components(schemas(
        crate::domain::MetadataDocument,
        super::client_response::ClientInformationResponse,
        super::error::ErrorBody,
        super::discovery::DiscoveryDocument,
        super::health::Health,
    )),
    modifiers(&RegistrationToken),
)]
pub struct ApiDoc;

/// Declares the bearer schemes: registration access tokens (RFC 7592) and
/// initial access tokens (RFC 7591 §3).
struct RegistrationToken;

impl Modify for RegistrationToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["registration_access_token", "initial_access_token"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
