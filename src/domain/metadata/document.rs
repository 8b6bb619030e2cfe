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

use super::jose::{Encryption, encryption_names};
use super::keys::CertificateSubject;
use super::localized::{Localized, put_localized};
use super::redirects::logout_uri;
use super::table::{Alg, Text, Uri, any, metadata_members, not_blank, not_empty, not_none};
use super::{ClientKeys, ClientMetadata};
use crate::domain::uri::RegisteredUri;
use crate::domain::values::{RegistrationType, TokenDeliveryMode};

metadata_members! {
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
        redirect_uris: by_hand(Option<Vec<String>>),
        /// Token endpoint authentication method; `client_secret_basic` by default.
        token_endpoint_auth_method: by_hand(Option<String>),
        /// Grant types the client may use; `["authorization_code"]` by default.
        grant_types: by_hand(Option<Vec<String>>),
        /// Response types the client may use; `["code"]` by default.
        response_types: by_hand(Option<Vec<String>>),
        /// Human-readable name of the client.
        client_name: by_hand(Option<String>),
        /// Home page of the client.
        client_uri: by_hand(Option<String>),
        /// Logo of the client.
        logo_uri: by_hand(Option<String>),
        /// Space-separated scope values the client may request.
        scope: by_hand(Option<String>),
        /// Ways to contact the people responsible for the client.
        contacts: by_hand(Option<Vec<String>>),
        /// Terms of service of the client.
        tos_uri: by_hand(Option<String>),
        /// Privacy policy of the client.
        policy_uri: by_hand(Option<String>),
        /// URL of the client's JSON Web Key Set.
        jwks_uri: by_hand(Option<String>),
        /// The client's JSON Web Key Set, by value (public keys only).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        jwks: by_hand(Option<Value>),
        /// Identifier of the client software, stable across instances.
        software_id: by_hand(Option<String>),
        /// Version of the client software.
        software_version: by_hand(Option<String>),
        /// Signed JWT asserting metadata about the software (RFC 7591 §2.3).
        software_statement: by_hand(Option<String>),
        /// `web` (default) or `native`.
        application_type: by_hand(Option<String>),
        /// https URL of a JSON array of redirect URIs, for pairwise subjects.
        sector_identifier_uri: by_hand(Option<String>),
        /// `public` or `pairwise`.
        subject_type: by_hand(Option<String>),
        /// JWS algorithm for ID tokens.
        id_token_signed_response_alg: by_hand(Option<String>),
        /// JWE key algorithm for ID tokens.
        id_token_encrypted_response_alg: by_hand(Option<String>),
        /// JWE content encryption for ID tokens.
        id_token_encrypted_response_enc: by_hand(Option<String>),
        /// JWS algorithm for UserInfo responses.
        userinfo_signed_response_alg: by_hand(Option<String>),
        /// JWE key algorithm for UserInfo responses.
        userinfo_encrypted_response_alg: by_hand(Option<String>),
        /// JWE content encryption for UserInfo responses.
        userinfo_encrypted_response_enc: by_hand(Option<String>),
        /// JWS algorithm for request objects.
        request_object_signing_alg: by_hand(Option<String>),
        /// JWE key algorithm for request objects.
        request_object_encryption_alg: by_hand(Option<String>),
        /// JWE content encryption for request objects.
        request_object_encryption_enc: by_hand(Option<String>),
        /// JWS algorithm for `*_jwt` token endpoint authentication.
        token_endpoint_auth_signing_alg: by_hand(Option<String>),
        /// Default maximum authentication age, in seconds (a JSON integer; an
        /// integral float such as `600.0` is accepted too).
        #[serde(deserialize_with = "whole_seconds")]
        #[cfg_attr(feature = "openapi", schema(minimum = 0))]
        default_max_age: by_hand(Option<u64>),
        /// Whether the `auth_time` claim is required in ID tokens.
        require_auth_time: by_hand(Option<bool>),
        /// Default ACR values, in order of preference.
        default_acr_values: by_hand(Option<Vec<String>>),
        /// https URI a third party can use to start a login at the client.
        initiate_login_uri: by_hand(Option<String>),
        /// https URIs of pre-registered request objects.
        request_uris: by_hand(Option<Vec<String>>),
        /// URIs the client may be sent back to after logout (RP-Initiated Logout 1.0); no fragment.
        post_logout_redirect_uris: list(Uri(logout_uri)),
        /// URI rendered in an iframe to log the client out (Front-Channel Logout 1.0); same origin
        /// as a redirect URI, no fragment.
        frontchannel_logout_uri: one(Uri(logout_uri)),
        /// Whether `iss` and `sid` must be sent to `frontchannel_logout_uri`.
        frontchannel_logout_session_required: flag,
        /// URI that receives logout tokens (Back-Channel Logout 1.0); no fragment.
        backchannel_logout_uri: one(Uri(logout_uri)),
        /// Whether logout tokens must carry `sid`.
        backchannel_logout_session_required: flag,
        /// Whether access tokens are bound to the client certificate (RFC 8705).
        tls_client_certificate_bound_access_tokens: flag,
        /// Expected subject DN of the client certificate (RFC 8705); one `tls_client_auth_*` member
        /// at most.
        tls_client_auth_subject_dn: by_hand(Option<String>),
        /// Expected dNSName SAN of the client certificate (RFC 8705).
        tls_client_auth_san_dns: by_hand(Option<String>),
        /// Expected URI SAN of the client certificate (RFC 8705).
        tls_client_auth_san_uri: by_hand(Option<String>),
        /// Expected IP address SAN of the client certificate, IPv4 or IPv6 (RFC 8705).
        tls_client_auth_san_ip: by_hand(Option<String>),
        /// Expected email SAN of the client certificate (RFC 8705).
        tls_client_auth_san_email: by_hand(Option<String>),
        /// Whether the client always uses DPoP (RFC 9449).
        dpop_bound_access_tokens: flag,
        /// Whether the client must use pushed authorization requests (RFC 9126).
        require_pushed_authorization_requests: flag,
        /// Whether authorization requests must be signed request objects (RFC 9101).
        require_signed_request_object: flag,
        /// Authorization details types the client may use (RFC 9396).
        authorization_details_types: list(Text(not_empty)),
        /// JWS algorithm for JARM authorization responses; not `none`.
        authorization_signed_response_alg: one(Alg(not_none)),
        /// JWE key algorithm for JARM authorization responses.
        authorization_encrypted_response_alg: by_hand(Option<String>),
        /// JWE content encryption for JARM authorization responses; needs the `_alg`.
        authorization_encrypted_response_enc: by_hand(Option<String>),
        /// JWS algorithm for JWT introspection responses (RFC 9701); not `none`.
        introspection_signed_response_alg: one(Alg(not_none)),
        /// JWE key algorithm for JWT introspection responses (RFC 9701).
        introspection_encrypted_response_alg: by_hand(Option<String>),
        /// JWE content encryption for JWT introspection responses; needs the `_alg`.
        introspection_encrypted_response_enc: by_hand(Option<String>),
        /// CIBA token delivery: `poll`, `ping` or `push`.
        backchannel_token_delivery_mode: by_hand(Option<String>),
        /// https endpoint CIBA pings or pushes to; required for `ping` and `push`.
        backchannel_client_notification_endpoint: one(Uri(RegisteredUri::parse_https)),
        /// JWS algorithm for CIBA signed authentication requests; not `none`.
        backchannel_authentication_request_signing_alg: one(Alg(not_none)),
        /// Whether the client supports the CIBA `user_code` parameter.
        backchannel_user_code_parameter: flag,
        /// Registration types the relying party uses (OpenID Federation 1.0): `automatic` and/or
        /// `explicit`; not empty.
        client_registration_types: by_hand(Option<Vec<String>>),
        /// Human-readable name of the organization owning the client (OpenID Federation 1.0).
        organization_name: by_hand(Option<String>),
        /// https URL of a signed JWT holding the client's JSON Web Key Set (OpenID Federation 1.0).
        signed_jwks_uri: one(Uri(RegisteredUri::parse_https)),
        /// ACE profile the client uses with the resource server (RFC 9200), e.g. `coap_dtls`.
        ace_profile: one(Text(not_blank)),
        /// JWS algorithm for NFV access tokens (ETSI GS NFV-SEC 022).
        nfv_token_signing_alg: one(Alg(any)),
        /// JWE key algorithm for NFV access tokens (ETSI GS NFV-SEC 022).
        nfv_token_encryption_alg: by_hand(Option<String>),
        /// JWE content encryption for NFV access tokens; needs the `_alg`.
        nfv_token_encryption_enc: by_hand(Option<String>),
    }

    /// The registry members beyond RFC 7591 and OpenID Connect DCR 1.0, as
    /// registered: a member left out stays out (no default is written back).
    /// Besides the table's simple members, these, read by hand (registry.rs).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct RegistryMembers {
        /// The one expected certificate subject (RFC 8705 §2.1.2).
        tls_client_auth_subject: Option<CertificateSubject>,
        /// `authorization_encrypted_response_alg` and `_enc` (JARM §3).
        authorization_encryption: Option<Encryption>,
        /// `introspection_encrypted_response_alg` and `_enc` (RFC 9701 §6).
        introspection_encryption: Option<Encryption>,
        /// `backchannel_token_delivery_mode` (CIBA Core 1.0 §4).
        backchannel_token_delivery_mode: Option<TokenDeliveryMode>,
        /// `client_registration_types` (OpenID Federation 1.0 §5.1.2).
        client_registration_types: Vec<RegistrationType>,
        /// `organization_name` and its language-tagged variants (OpenID
        /// Federation 1.0 §5.2.2).
        organization_name: Localized<String>,
        /// `nfv_token_encryption_alg` and `_enc` (ETSI GS NFV-SEC 022).
        nfv_token_encryption: Option<Encryption>,
    }
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
fn name(value: Option<impl ToString>) -> Option<String> {
    value.map(|v| v.to_string())
}

/// A registered URI's text, as registered.
fn uri_text(uri: &RegisteredUri) -> String {
    uri.as_str().to_owned()
}

/// Registered URIs' text; absent when there are none.
fn uri_list(uris: &[RegisteredUri]) -> Option<Vec<String>> {
    (!uris.is_empty()).then(|| uris.iter().map(uri_text).collect())
}

/// A list of strings; absent when empty.
fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}
