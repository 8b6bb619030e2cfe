//! The metadata document: every member of the IANA "OAuth Dynamic Client
//! Registration Metadata" registry (RFC 7591 §2, OpenID Connect DCR 1.0 §2
//! and the specs that extend them) with the JSON type the specifications
//! give it, not yet validated, and the document a validated value writes back.
//!
//! It is what a registration carries into the service, what software
//! statement claims merge into, what the store keeps and what providers are
//! sent. With the `openapi` feature (on by default) it is also the schema
//! the OpenAPI document gives API users: each member's doc comment below is
//! that member's description there, so it is written for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jose::encryption_names;
use super::localized::put_localized;
use super::{ClientKeys, ClientMetadata};
use crate::domain::uri::RegisteredUri;

/// Client metadata as JSON: every member of the IANA "OAuth Dynamic Client
/// Registration Metadata" registry (RFC 7591 §2, OpenID Connect DCR 1.0 §2
/// and the specs that extend them), with the wire types of the specifications.
///
/// Language-tagged variants of human-readable fields (`client_name#ja-Jpan-JP`)
/// and any other member land in `other`; other members are ignored, unless the
/// operator lists them in `[registration] extra_metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
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
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
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

/// Reads a non-negative whole number, written as an integer or an integral
/// float (JSON Schema counts `600.0` as an integer), as `default_max_age` is.
pub fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<serde_json::Number>::deserialize(d)?;
    let Some(number) = value else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked just before
        Some(f) if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) => {
            Ok(Some(f as u64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "`{number}` is not a non-negative whole number of seconds"
        ))),
    }
}

impl ClientMetadata {
    /// The metadata as a document: what was registered, defaults included.
    #[must_use]
    pub fn to_document(&self) -> MetadataDocument {
        let mut other = BTreeMap::new();
        let client_name = put_localized(&self.client_name, "client_name", &mut other, Clone::clone);
        let client_uri = put_localized(&self.client_uri, "client_uri", &mut other, uri_text);
        let logo_uri = put_localized(&self.logo_uri, "logo_uri", &mut other, uri_text);
        let tos_uri = put_localized(&self.tos_uri, "tos_uri", &mut other, uri_text);
        let policy_uri = put_localized(&self.policy_uri, "policy_uri", &mut other, uri_text);
        let (jwks_uri, jwks) = match &self.keys {
            Some(ClientKeys::Uri(uri)) => (Some(uri_text(uri)), None),
            Some(ClientKeys::Set(set)) => (None, Some(set.clone())),
            None => (None, None),
        };
        let (id_alg, id_enc) = encryption_names(self.id_token_encryption);
        let (ui_alg, ui_enc) = encryption_names(self.userinfo_encryption);
        let (ro_alg, ro_enc) = encryption_names(self.request_object_encryption);
        let mut document = MetadataDocument {
            redirect_uris: uri_list(&self.redirect_uris),
            token_endpoint_auth_method: Some(self.token_endpoint_auth_method.to_string()),
            grant_types: Some(self.grant_types.iter().map(ToString::to_string).collect()),
            response_types: Some(
                self.response_types
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            client_name,
            client_uri,
            logo_uri,
            scope: self.scope.clone(),
            contacts: non_empty(&self.contacts),
            tos_uri,
            policy_uri,
            jwks_uri,
            jwks,
            software_id: self.software_id.clone(),
            software_version: self.software_version.clone(),
            software_statement: None,
            application_type: Some(self.application_type.to_string()),
            sector_identifier_uri: self.sector_identifier_uri.as_ref().map(uri_text),
            subject_type: name(self.subject_type),
            id_token_signed_response_alg: name(self.id_token_signed_response_alg),
            id_token_encrypted_response_alg: id_alg,
            id_token_encrypted_response_enc: id_enc,
            userinfo_signed_response_alg: name(self.userinfo_signed_response_alg),
            userinfo_encrypted_response_alg: ui_alg,
            userinfo_encrypted_response_enc: ui_enc,
            request_object_signing_alg: name(self.request_object_signing_alg),
            request_object_encryption_alg: ro_alg,
            request_object_encryption_enc: ro_enc,
            token_endpoint_auth_signing_alg: name(self.token_endpoint_auth_signing_alg),
            default_max_age: self.default_max_age,
            require_auth_time: self.require_auth_time,
            default_acr_values: non_empty(&self.default_acr_values),
            initiate_login_uri: self.initiate_login_uri.as_ref().map(uri_text),
            request_uris: uri_list(&self.request_uris),
            other,
            ..MetadataDocument::default()
        };
        self.registry_members.write(&mut document);
        document.other.extend(self.extra_metadata.0.clone());
        document
    }
}

/// The registered name of a value, if there is one.
pub(super) fn name(value: Option<impl ToString>) -> Option<String> {
    value.map(|v| v.to_string())
}

/// A registered URI's text, as registered.
pub(super) fn uri_text(uri: &RegisteredUri) -> String {
    uri.as_str().to_owned()
}

/// Registered URIs' text; absent when there are none.
pub(super) fn uri_list(uris: &[RegisteredUri]) -> Option<Vec<String>> {
    (!uris.is_empty()).then(|| uris.iter().map(uri_text).collect())
}

/// A list of strings; absent when empty.
pub(super) fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}
