//! The metadata document as it travels over HTTP: what registration and
//! update bodies carry and what client information responses (RFC 7591
//! §3.2.1, RFC 7592 §3) include, described in the OpenAPI document.
//!
//! It moves member by member to and from the domain's
//! [`MetadataDocument`](domain::MetadataDocument), which the service
//! validates; the domain knows nothing of this type or of OpenAPI.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::metadata::{self as domain, whole_seconds};

/// Client metadata as JSON: every member of the IANA "OAuth Dynamic Client
/// Registration Metadata" registry (RFC 7591 §2, OpenID Connect DCR 1.0 §2
/// and the specs that extend them), with the wire types of the specifications.
///
/// Language-tagged variants of human-readable fields (`client_name#ja-Jpan-JP`)
/// and any other member land in `other`; other members are ignored, unless the
/// operator lists them in `[registration] extra_metadata`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct MetadataDocument {
    /// Redirection URIs for redirect-based flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// Token endpoint authentication method; `client_secret_basic` by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Grant types the client may use; `["authorization_code"]` by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// Response types the client may use; `["code"]` by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// Human-readable name of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Logo of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Space-separated scope values the client may request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Ways to contact the people responsible for the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    /// Terms of service of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Privacy policy of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// URL of the client's JSON Web Key Set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The client's JSON Web Key Set, by value (public keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Identifier of the client software, stable across instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// Version of the client software.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Signed JWT asserting metadata about the software (RFC 7591 §2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_statement: Option<String>,
    /// `web` (default) or `native`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// https URL of a JSON array of redirect URIs, for pairwise subjects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// `public` or `pairwise`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<String>,
    /// JWS algorithm for ID tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// JWE key algorithm for ID tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_encrypted_response_alg: Option<String>,
    /// JWE content encryption for ID tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_encrypted_response_enc: Option<String>,
    /// JWS algorithm for UserInfo responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<String>,
    /// JWE key algorithm for UserInfo responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_encrypted_response_alg: Option<String>,
    /// JWE content encryption for UserInfo responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_encrypted_response_enc: Option<String>,
    /// JWS algorithm for request objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
    /// JWE key algorithm for request objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_encryption_alg: Option<String>,
    /// JWE content encryption for request objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_encryption_enc: Option<String>,
    /// JWS algorithm for `*_jwt` token endpoint authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Default maximum authentication age, in seconds (a JSON integer; an
    /// integral float such as `600.0` is accepted too).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_seconds"
    )]
    #[schema(minimum = 0)]
    pub default_max_age: Option<u64>,
    /// Whether the `auth_time` claim is required in ID tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_auth_time: Option<bool>,
    /// Default ACR values, in order of preference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_acr_values: Option<Vec<String>>,
    /// https URI a third party can use to start a login at the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiate_login_uri: Option<String>,
    /// https URIs of pre-registered request objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uris: Option<Vec<String>>,
    /// URIs the client may be sent back to after logout (RP-Initiated Logout 1.0); no fragment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// URI rendered in an iframe to log the client out (Front-Channel Logout 1.0); same origin
    /// as a redirect URI, no fragment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// Whether `iss` and `sid` must be sent to `frontchannel_logout_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_session_required: Option<bool>,
    /// URI that receives logout tokens (Back-Channel Logout 1.0); no fragment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether logout tokens must carry `sid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_required: Option<bool>,
    /// Whether access tokens are bound to the client certificate (RFC 8705).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// Expected subject DN of the client certificate (RFC 8705); one `tls_client_auth_*` member
    /// at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// Expected dNSName SAN of the client certificate (RFC 8705).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    /// Expected URI SAN of the client certificate (RFC 8705).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    /// Expected IP address SAN of the client certificate, IPv4 or IPv6 (RFC 8705).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    /// Expected email SAN of the client certificate (RFC 8705).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    /// Whether the client always uses DPoP (RFC 9449).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    /// Whether the client must use pushed authorization requests (RFC 9126).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// Whether authorization requests must be signed request objects (RFC 9101).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_signed_request_object: Option<bool>,
    /// Authorization details types the client may use (RFC 9396).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details_types: Option<Vec<String>>,
    /// JWS algorithm for JARM authorization responses; not `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_signed_response_alg: Option<String>,
    /// JWE key algorithm for JARM authorization responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_encrypted_response_alg: Option<String>,
    /// JWE content encryption for JARM authorization responses; needs the `_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_encrypted_response_enc: Option<String>,
    /// JWS algorithm for JWT introspection responses (RFC 9701); not `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_signed_response_alg: Option<String>,
    /// JWE key algorithm for JWT introspection responses (RFC 9701).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_encrypted_response_alg: Option<String>,
    /// JWE content encryption for JWT introspection responses; needs the `_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_encrypted_response_enc: Option<String>,
    /// CIBA token delivery: `poll`, `ping` or `push`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_mode: Option<String>,
    /// https endpoint CIBA pings or pushes to; required for `ping` and `push`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_client_notification_endpoint: Option<String>,
    /// JWS algorithm for CIBA signed authentication requests; not `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_request_signing_alg: Option<String>,
    /// Whether the client supports the CIBA `user_code` parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_user_code_parameter: Option<bool>,
    /// Registration types the relying party uses (OpenID Federation 1.0): `automatic` and/or
    /// `explicit`; not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_registration_types: Option<Vec<String>>,
    /// Human-readable name of the organization owning the client (OpenID Federation 1.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// https URL of a signed JWT holding the client's JSON Web Key Set (OpenID Federation 1.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_jwks_uri: Option<String>,
    /// ACE profile the client uses with the resource server (RFC 9200), e.g. `coap_dtls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ace_profile: Option<String>,
    /// JWS algorithm for NFV access tokens (ETSI GS NFV-SEC 022).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfv_token_signing_alg: Option<String>,
    /// JWE key algorithm for NFV access tokens (ETSI GS NFV-SEC 022).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfv_token_encryption_alg: Option<String>,
    /// JWE content encryption for NFV access tokens; needs the `_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfv_token_encryption_enc: Option<String>,
    /// Language-tagged variants (`client_name#fr`) and any other member.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Moves every member between the wire and domain documents. Each side is
/// destructured whole, so a member that one of them lacks does not compile.
macro_rules! member_for_member {
    ($($member:ident),+ $(,)?) => {
        impl From<MetadataDocument> for domain::MetadataDocument {
            fn from(wire: MetadataDocument) -> Self {
                let MetadataDocument { $($member),+ } = wire;
                Self { $($member),+ }
            }
        }

        impl From<domain::MetadataDocument> for MetadataDocument {
            fn from(document: domain::MetadataDocument) -> Self {
                let domain::MetadataDocument { $($member),+ } = document;
                Self { $($member),+ }
            }
        }
    };
}

member_for_member!(
    redirect_uris,
    token_endpoint_auth_method,
    grant_types,
    response_types,
    client_name,
    client_uri,
    logo_uri,
    scope,
    contacts,
    tos_uri,
    policy_uri,
    jwks_uri,
    jwks,
    software_id,
    software_version,
    software_statement,
    application_type,
    sector_identifier_uri,
    subject_type,
    id_token_signed_response_alg,
    id_token_encrypted_response_alg,
    id_token_encrypted_response_enc,
    userinfo_signed_response_alg,
    userinfo_encrypted_response_alg,
    userinfo_encrypted_response_enc,
    request_object_signing_alg,
    request_object_encryption_alg,
    request_object_encryption_enc,
    token_endpoint_auth_signing_alg,
    default_max_age,
    require_auth_time,
    default_acr_values,
    initiate_login_uri,
    request_uris,
    post_logout_redirect_uris,
    frontchannel_logout_uri,
    frontchannel_logout_session_required,
    backchannel_logout_uri,
    backchannel_logout_session_required,
    tls_client_certificate_bound_access_tokens,
    tls_client_auth_subject_dn,
    tls_client_auth_san_dns,
    tls_client_auth_san_uri,
    tls_client_auth_san_ip,
    tls_client_auth_san_email,
    dpop_bound_access_tokens,
    require_pushed_authorization_requests,
    require_signed_request_object,
    authorization_details_types,
    authorization_signed_response_alg,
    authorization_encrypted_response_alg,
    authorization_encrypted_response_enc,
    introspection_signed_response_alg,
    introspection_encrypted_response_alg,
    introspection_encrypted_response_enc,
    backchannel_token_delivery_mode,
    backchannel_client_notification_endpoint,
    backchannel_authentication_request_signing_alg,
    backchannel_user_code_parameter,
    client_registration_types,
    organization_name,
    signed_jwks_uri,
    ace_profile,
    nfv_token_signing_alg,
    nfv_token_encryption_alg,
    nfv_token_encryption_enc,
    other,
);
