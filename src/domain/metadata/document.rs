//! The metadata document: every member of the IANA "OAuth Dynamic Client
//! Registration Metadata" registry (RFC 7591 §2, OpenID Connect DCR 1.0 §2
//! and the specs that extend them) with the JSON type the specifications
//! give it, not yet validated, and the document a validated value writes back.
//!
//! It is what a registration carries into the service, what software
//! statement claims merge into, what the store keeps and what providers are
//! sent. The HTTP edge describes it to API users with its own wire type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jose::encryption_names;
use super::localized::put_localized;
use super::{ClientKeys, ClientMetadata};
use crate::domain::uri::RegisteredUri;

/// Client metadata as JSON, unvalidated: each member as sent.
///
/// Language-tagged variants of human-readable members (`client_name#ja-Jpan-JP`)
/// and any other member land in `other`; unknown members are ignored when the
/// document is validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetadataDocument {
    /// `redirect_uris`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// `token_endpoint_auth_method`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// `grant_types`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// `response_types`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// `client_name`, without a language tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `client_uri`, without a language tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// `logo_uri`, without a language tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// `scope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `contacts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    /// `tos_uri`, without a language tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// `policy_uri`, without a language tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `jwks_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `jwks`, any JSON value until validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// `software_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// `software_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// `software_statement`, the signed JWT (RFC 7591 §2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_statement: Option<String>,
    /// `application_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// `sector_identifier_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// `subject_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<String>,
    /// `id_token_signed_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// `id_token_encrypted_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_encrypted_response_alg: Option<String>,
    /// `id_token_encrypted_response_enc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_encrypted_response_enc: Option<String>,
    /// `userinfo_signed_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<String>,
    /// `userinfo_encrypted_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_encrypted_response_alg: Option<String>,
    /// `userinfo_encrypted_response_enc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_encrypted_response_enc: Option<String>,
    /// `request_object_signing_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
    /// `request_object_encryption_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_encryption_alg: Option<String>,
    /// `request_object_encryption_enc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_encryption_enc: Option<String>,
    /// `token_endpoint_auth_signing_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// `default_max_age` in seconds, read by [`whole_seconds`].
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_seconds"
    )]
    pub default_max_age: Option<u64>,
    /// `require_auth_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_auth_time: Option<bool>,
    /// `default_acr_values`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_acr_values: Option<Vec<String>>,
    /// `initiate_login_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiate_login_uri: Option<String>,
    /// `request_uris`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uris: Option<Vec<String>>,
    /// `post_logout_redirect_uris`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `frontchannel_logout_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// `frontchannel_logout_session_required`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_session_required: Option<bool>,
    /// `backchannel_logout_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// `backchannel_logout_session_required`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_required: Option<bool>,
    /// `tls_client_certificate_bound_access_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// `tls_client_auth_subject_dn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// `tls_client_auth_san_dns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    /// `tls_client_auth_san_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    /// `tls_client_auth_san_ip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    /// `tls_client_auth_san_email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    /// `dpop_bound_access_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    /// `require_pushed_authorization_requests`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// `require_signed_request_object`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_signed_request_object: Option<bool>,
    /// `authorization_details_types`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details_types: Option<Vec<String>>,
    /// `authorization_signed_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_signed_response_alg: Option<String>,
    /// `authorization_encrypted_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_encrypted_response_alg: Option<String>,
    /// `authorization_encrypted_response_enc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_encrypted_response_enc: Option<String>,
    /// `introspection_signed_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_signed_response_alg: Option<String>,
    /// `introspection_encrypted_response_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_encrypted_response_alg: Option<String>,
    /// `introspection_encrypted_response_enc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_encrypted_response_enc: Option<String>,
    /// `backchannel_token_delivery_mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_mode: Option<String>,
    /// `backchannel_client_notification_endpoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_client_notification_endpoint: Option<String>,
    /// `backchannel_authentication_request_signing_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_request_signing_alg: Option<String>,
    /// `backchannel_user_code_parameter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_user_code_parameter: Option<bool>,
    /// `client_registration_types`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_registration_types: Option<Vec<String>>,
    /// `organization_name`, without a language tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// `signed_jwks_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_jwks_uri: Option<String>,
    /// `ace_profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ace_profile: Option<String>,
    /// `nfv_token_signing_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfv_token_signing_alg: Option<String>,
    /// `nfv_token_encryption_alg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfv_token_encryption_alg: Option<String>,
    /// `nfv_token_encryption_enc`.
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
