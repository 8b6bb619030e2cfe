//! The Okta Client document the gateway writes, and how Okta classifies
//! a client: its app type and the grant types that type allows.

use serde::Serialize;
use serde_json::Value;

use crate::domain::ClientMetadata;
use crate::domain::metadata::ClientKeys;
use crate::domain::values::{ApplicationType, AuthMethod, GrantType};
use crate::provider::logout_members::LogoutMembers;

/// The Client members the gateway writes (all of them: PUT is a full replace).
#[derive(Debug, Serialize)]
pub(super) struct OktaClient<'a> {
    pub(super) client_name: &'a str,
    pub(super) application_type: &'static str,
    pub(super) redirect_uris: Vec<&'a str>,
    pub(super) response_types: Vec<&'static str>,
    pub(super) grant_types: Vec<&'static str>,
    pub(super) token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) jwks_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) jwks: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) logo_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) policy_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tos_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) initiate_login_uri: Option<&'a str>,
    #[serde(flatten)]
    pub(super) logout: LogoutMembers<'a>,
}

/// The Client document for `metadata`, named `client_name`.
pub(super) fn client_body<'a>(
    metadata: &'a ClientMetadata,
    client_name: &'a str,
) -> OktaClient<'a> {
    let (jwks_uri, jwks) = match &metadata.keys {
        Some(ClientKeys::Uri(uri)) => (Some(uri.as_str()), None),
        Some(ClientKeys::Set(set)) => (None, Some(set)),
        None => (None, None),
    };
    let mut response_types: Vec<&'static str> = Vec::new();
    for word in metadata.response_types.iter().flat_map(|r| r.words()) {
        if !response_types.contains(&word.as_str()) {
            response_types.push(word.as_str());
        }
    }
    OktaClient {
        client_name,
        application_type: application_type(metadata),
        redirect_uris: metadata.redirect_uris.iter().map(|u| u.as_str()).collect(),
        response_types,
        grant_types: metadata.grant_types.iter().map(|g| g.as_str()).collect(),
        token_endpoint_auth_method: metadata.token_endpoint_auth_method.as_str(),
        jwks_uri,
        jwks,
        logo_uri: metadata.logo_uri.plain.as_ref().map(|u| u.as_str()),
        policy_uri: metadata.policy_uri.plain.as_ref().map(|u| u.as_str()),
        tos_uri: metadata.tos_uri.plain.as_ref().map(|u| u.as_str()),
        initiate_login_uri: metadata.initiate_login_uri.as_ref().map(|u| u.as_str()),
        logout: (&metadata.registry_members).into(),
    }
}

/// Okta's app type: `browser` for a public web client, `service` for a
/// client that never sends a user to the authorization endpoint.
pub(super) fn application_type(metadata: &ClientMetadata) -> &'static str {
    let interactive = metadata
        .grant_types
        .iter()
        .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::Implicit));
    match metadata.application_type {
        ApplicationType::Native => "native",
        // Okta gives a public client refresh tokens only as a native app.
        ApplicationType::Web
            if metadata.token_endpoint_auth_method == AuthMethod::None
                && metadata.grant_types.contains(&GrantType::RefreshToken) =>
        {
            "native"
        }
        ApplicationType::Web if metadata.token_endpoint_auth_method == AuthMethod::None => {
            "browser"
        }
        ApplicationType::Web if !interactive => "service",
        ApplicationType::Web => "web",
    }
}

/// Whether `lifecycle/newSecret` applies: Okta documents it for
/// `client_secret_basic` and `client_secret_post` only.
pub(super) fn renewable(method: AuthMethod) -> bool {
    matches!(
        method,
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    )
}

/// The grant types Okta's `createClient` table allows per app type.
pub(super) fn grants_of(app_type: &str) -> &'static [GrantType] {
    match app_type {
        "browser" => &[
            GrantType::AuthorizationCode,
            GrantType::Implicit,
            GrantType::Saml2Bearer,
        ],
        "native" => &[
            GrantType::AuthorizationCode,
            GrantType::Implicit,
            GrantType::Password,
            GrantType::RefreshToken,
            GrantType::Saml2Bearer,
        ],
        "service" => &[GrantType::ClientCredentials, GrantType::Saml2Bearer],
        _ => &[
            GrantType::AuthorizationCode,
            GrantType::Implicit,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::Saml2Bearer,
        ],
    }
}
