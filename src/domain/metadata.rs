//! Client metadata (RFC 7591 §2, OpenID Connect Dynamic Client Registration
//! 1.0 §2): the JSON document as it travels, and the validated value built from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::uri::{
    RedirectContext, RedirectRules, RegisteredUri, check_redirect_uri, parse_redirect_uri,
};
use super::values::{
    ApplicationType, AuthMethod, GrantType, JweAlgorithm, JweEncryption, JwsAlgorithm,
    ResponseType, ResponseTypeWord, SubjectType,
};

/// Client metadata as JSON: every field of RFC 7591 §2 and OpenID Connect
/// DCR 1.0 §2, with the wire types of the specifications.
///
/// Language-tagged variants of human-readable fields (`client_name#ja-Jpan-JP`)
/// and any other member land in `other`; unknown members are ignored when the
/// document is validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// Language-tagged variants (`client_name#fr`) and any other member.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Reads a non-negative whole number, written as an integer or an integral
/// float (JSON Schema counts `600.0` as an integer).
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
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

/// Why metadata was refused; each variant is one RFC 7591 §3.2.2 error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `invalid_redirect_uri`.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// `invalid_client_metadata`.
    #[error("{0}")]
    InvalidClientMetadata(String),
}

fn invalid(message: impl Into<String>) -> MetadataError {
    MetadataError::InvalidClientMetadata(message.into())
}

/// A human-readable value and its language-tagged variants (RFC 7591 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized<T> {
    /// The value without a language tag.
    pub plain: Option<T>,
    /// Values by BCP 47 language tag, as sent.
    pub tagged: BTreeMap<String, T>,
}

impl<T> Localized<T> {
    /// Heap bytes held, with `heap_size` of one value.
    fn heap_size(&self, heap_size: impl Fn(&T) -> usize) -> usize {
        let tagged: usize = self
            .tagged
            .iter()
            .map(|(tag, value)| UNIT_MAP_ENTRY + size_of::<T>() + tag.len() + heap_size(value))
            .sum();
        self.plain.as_ref().map_or(0, &heap_size) + tagged
    }
}

/// Heap bytes of one `String` in a collection, besides its text.
const UNIT_STRING: usize = size_of::<String>();
/// Heap bytes of one [`RegisteredUri`] in a collection, besides its texts.
const UNIT_URI: usize = size_of::<RegisteredUri>();
/// Heap bytes a map spends on one entry besides its key and value: the key's
/// `String` and a share of a B-tree node.
const UNIT_MAP_ENTRY: usize = size_of::<String>() + 16;

/// About how many heap bytes a JSON value holds (see [`ClientMetadata::heap_size`]).
#[must_use]
pub fn json_heap_size(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items
            .iter()
            .map(|item| size_of::<Value>() + json_heap_size(item))
            .sum(),
        // The smallest B-tree node, then each entry.
        Value::Object(members) => {
            192 + members
                .iter()
                .map(|(key, item)| {
                    UNIT_MAP_ENTRY + size_of::<Value>() + key.len() + json_heap_size(item)
                })
                .sum::<usize>()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

impl<T> Default for Localized<T> {
    fn default() -> Self {
        Self {
            plain: None,
            tagged: BTreeMap::new(),
        }
    }
}

/// JWE settings of one kind of response; `enc` defaults to `A128CBC-HS256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encryption {
    /// Key management algorithm.
    pub alg: JweAlgorithm,
    /// Content encryption algorithm.
    pub enc: JweEncryption,
}

/// Where the client's public keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// Fetched from a URL (`jwks_uri`).
    Uri(RegisteredUri),
    /// Given by value (`jwks`), a JSON object with a `keys` array.
    Set(Value),
}

/// Validated client metadata. Defaults are applied; URIs keep their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// Registered redirect URIs.
    pub redirect_uris: Vec<RegisteredUri>,
    /// Token endpoint authentication method.
    pub token_endpoint_auth_method: AuthMethod,
    /// Grant types.
    pub grant_types: Vec<GrantType>,
    /// Response types.
    pub response_types: Vec<ResponseType>,
    /// Client name, per language.
    pub client_name: Localized<String>,
    /// Client home page, per language.
    pub client_uri: Localized<RegisteredUri>,
    /// Logo, per language.
    pub logo_uri: Localized<RegisteredUri>,
    /// Terms of service, per language.
    pub tos_uri: Localized<RegisteredUri>,
    /// Privacy policy, per language.
    pub policy_uri: Localized<RegisteredUri>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Contacts.
    pub contacts: Vec<String>,
    /// Public keys, by URL or by value.
    pub keys: Option<ClientKeys>,
    /// Software identifier.
    pub software_id: Option<String>,
    /// Software version.
    pub software_version: Option<String>,
    /// Application type.
    pub application_type: ApplicationType,
    /// Sector identifier URI (pairwise subjects).
    pub sector_identifier_uri: Option<RegisteredUri>,
    /// Subject type.
    pub subject_type: Option<SubjectType>,
    /// ID token signature algorithm.
    pub id_token_signed_response_alg: Option<JwsAlgorithm>,
    /// ID token encryption.
    pub id_token_encryption: Option<Encryption>,
    /// UserInfo signature algorithm.
    pub userinfo_signed_response_alg: Option<JwsAlgorithm>,
    /// UserInfo encryption.
    pub userinfo_encryption: Option<Encryption>,
    /// Request object signature algorithm.
    pub request_object_signing_alg: Option<JwsAlgorithm>,
    /// Request object encryption.
    pub request_object_encryption: Option<Encryption>,
    /// Signature algorithm for `*_jwt` client authentication.
    pub token_endpoint_auth_signing_alg: Option<JwsAlgorithm>,
    /// Default maximum authentication age in seconds.
    pub default_max_age: Option<u64>,
    /// Whether `auth_time` is required.
    pub require_auth_time: Option<bool>,
    /// Default ACR values.
    pub default_acr_values: Vec<String>,
    /// Third-party login initiation URI.
    pub initiate_login_uri: Option<RegisteredUri>,
    /// Pre-registered request object URIs.
    pub request_uris: Vec<RegisteredUri>,
}

impl ClientMetadata {
    /// Validates a metadata document, applying the defaults of RFC 7591 and
    /// OpenID Connect DCR. Unknown members are ignored.
    ///
    /// When only one of `grant_types` and `response_types` is sent, the other
    /// is derived from it (`code` ⇔ `authorization_code`, `token`/`id_token`
    /// ⇔ `implicit`), so a `client_credentials`-only client needs no
    /// `response_types: []`.
    pub fn validate(doc: MetadataDocument, rules: RedirectRules) -> Result<Self, MetadataError> {
        let metadata = Self::read(doc, &rules)?;
        metadata.check_registration(&rules)?;
        Ok(metadata)
    }

    /// Reads metadata back from the store. It met the rules in force when it
    /// was registered; rules added since (on URI text, schemes and key
    /// material, see [`ClientMetadata::validate`]) are not applied again, so
    /// that no stored client becomes unreadable.
    pub fn from_stored(doc: MetadataDocument) -> Result<Self, MetadataError> {
        Self::read(doc, &RedirectRules::PERMISSIVE)
    }

    /// What a registration must meet besides what [`ClientMetadata::read`]
    /// checks: redirect URIs exactly as URL parsers read them and in the
    /// schemes RFC 8252 allows, no control characters or wildcard hosts in
    /// any URI, no private key material anywhere in `jwks`, and a usable
    /// signing key for `private_key_jwt`.
    fn check_registration(&self, rules: &RedirectRules) -> Result<(), MetadataError> {
        let context = RedirectContext {
            native: self.application_type == ApplicationType::Native,
            implicit: self.grant_types.contains(&GrantType::Implicit),
        };
        for uri in &self.redirect_uris {
            check_redirect_uri(uri, context, rules).map_err(MetadataError::InvalidRedirectUri)?;
        }
        for (field, uri) in self.other_uris() {
            uri.check_text()
                .map_err(|e| invalid(format!("{field}: {e}")))?;
        }
        if let Some(ClientKeys::Set(set)) = &self.keys {
            if let Some(path) = private_member(set, "jwks") {
                return Err(invalid(format!(
                    "`{path}` is private key material; register public keys only"
                )));
            }
            let keys = set.get("keys").and_then(Value::as_array);
            if self.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt
                && !keys.is_some_and(|keys| keys.iter().any(is_signing_key))
            {
                return Err(invalid(
                    "private_key_jwt needs at least one public signing key (RSA, EC or OKP) in jwks",
                ));
            }
        }
        Ok(())
    }

    /// Every registered URI other than the redirect URIs, with its member name.
    fn other_uris(&self) -> impl Iterator<Item = (String, &RegisteredUri)> {
        let localized = [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("tos_uri", &self.tos_uri),
            ("policy_uri", &self.policy_uri),
        ]
        .into_iter()
        .flat_map(|(field, value)| {
            let plain = value.plain.iter().map(move |uri| (field.to_owned(), uri));
            let tagged = value
                .tagged
                .iter()
                .map(move |(tag, uri)| (format!("{field}#{tag}"), uri));
            plain.chain(tagged)
        });
        let jwks_uri = match &self.keys {
            Some(ClientKeys::Uri(uri)) => Some(("jwks_uri".to_owned(), uri)),
            _ => None,
        };
        let sector = self.sector_identifier_uri.as_ref();
        let login = self.initiate_login_uri.as_ref();
        localized
            .chain(jwks_uri)
            .chain(sector.map(|uri| ("sector_identifier_uri".to_owned(), uri)))
            .chain(login.map(|uri| ("initiate_login_uri".to_owned(), uri)))
            .chain(
                self.request_uris
                    .iter()
                    .map(|uri| ("request_uris".to_owned(), uri)),
            )
    }

    /// Parses a metadata document under the rules every stored client met.
    fn read(doc: MetadataDocument, rules: &RedirectRules) -> Result<Self, MetadataError> {
        let token_endpoint_auth_method = match doc.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretBasic,
            Some(text) => AuthMethod::parse(text).ok_or_else(|| {
                invalid(format!("unsupported token_endpoint_auth_method `{text}`"))
            })?,
        };
        let application_type = match doc.application_type.as_deref() {
            None => ApplicationType::Web,
            Some(text) => ApplicationType::parse(text)
                .ok_or_else(|| invalid(format!("unsupported application_type `{text}`")))?,
        };
        let (grant_types, response_types) =
            grants_and_responses(doc.grant_types.as_deref(), doc.response_types.as_deref())?;
        check_consistency(&grant_types, &response_types, token_endpoint_auth_method)?;

        let implicit = grant_types.contains(&GrantType::Implicit);
        let context = RedirectContext {
            native: application_type == ApplicationType::Native,
            implicit,
        };
        let redirect_uris = doc
            .redirect_uris
            .unwrap_or_default()
            .iter()
            .map(|uri| parse_redirect_uri(uri, context, rules))
            .collect::<Result<Vec<_>, _>>()
            .map_err(MetadataError::InvalidRedirectUri)?;
        let redirects_needed = grant_types
            .iter()
            .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::Implicit));
        if redirects_needed && redirect_uris.is_empty() {
            return Err(MetadataError::InvalidRedirectUri(
                "redirect_uris is required for the authorization_code and implicit grants".into(),
            ));
        }

        let keys = match (doc.jwks_uri, doc.jwks) {
            (Some(_), Some(_)) => {
                return Err(invalid("jwks_uri and jwks must not both be present"));
            }
            (Some(uri), None) => Some(ClientKeys::Uri(
                RegisteredUri::parse_https(&uri).map_err(|e| invalid(format!("jwks_uri: {e}")))?,
            )),
            (None, Some(set)) => Some(ClientKeys::Set(check_jwks(set)?)),
            (None, None) => None,
        };
        if token_endpoint_auth_method.needs_client_keys() && keys.is_none() {
            return Err(invalid(format!(
                "{token_endpoint_auth_method} needs jwks or jwks_uri"
            )));
        }

        let token_endpoint_auth_signing_alg = alg(
            doc.token_endpoint_auth_signing_alg,
            "token_endpoint_auth_signing_alg",
        )?;
        check_auth_signing_alg(token_endpoint_auth_method, token_endpoint_auth_signing_alg)?;
        let id_token_signed_response_alg = alg(
            doc.id_token_signed_response_alg,
            "id_token_signed_response_alg",
        )?;
        if id_token_signed_response_alg == Some(JwsAlgorithm::None)
            && response_types
                .iter()
                .any(|r| r.contains(ResponseTypeWord::IdToken))
        {
            return Err(invalid(
                "id_token_signed_response_alg `none` is not allowed with an id_token response type",
            ));
        }

        let subject_type = match doc.subject_type.as_deref() {
            None => None,
            Some(text) => Some(
                SubjectType::parse(text)
                    .ok_or_else(|| invalid(format!("unsupported subject_type `{text}`")))?,
            ),
        };
        let sector_identifier_uri = doc
            .sector_identifier_uri
            .as_deref()
            .map(RegisteredUri::parse_https)
            .transpose()
            .map_err(|e| invalid(format!("sector_identifier_uri: {e}")))?;
        if subject_type == Some(SubjectType::Pairwise) && sector_identifier_uri.is_none() {
            check_single_host(&redirect_uris)?;
        }

        let other = doc.other;
        Ok(Self {
            redirect_uris,
            token_endpoint_auth_method,
            grant_types,
            response_types,
            // Names are moved, not copied: they may be most of a large body.
            client_name: localized(doc.client_name, &other, "client_name", Ok)?,
            client_uri: localized(doc.client_uri, &other, "client_uri", web_uri)?,
            logo_uri: localized(doc.logo_uri, &other, "logo_uri", web_uri)?,
            tos_uri: localized(doc.tos_uri, &other, "tos_uri", web_uri)?,
            policy_uri: localized(doc.policy_uri, &other, "policy_uri", web_uri)?,
            scope: doc.scope.map(check_scope).transpose()?,
            contacts: non_empty_strings(doc.contacts, "contacts")?,
            keys,
            software_id: doc.software_id,
            software_version: doc.software_version,
            application_type,
            sector_identifier_uri,
            subject_type,
            id_token_signed_response_alg,
            id_token_encryption: encryption(
                doc.id_token_encrypted_response_alg,
                doc.id_token_encrypted_response_enc,
                "id_token_encrypted_response",
            )?,
            userinfo_signed_response_alg: alg(
                doc.userinfo_signed_response_alg,
                "userinfo_signed_response_alg",
            )?,
            userinfo_encryption: encryption(
                doc.userinfo_encrypted_response_alg,
                doc.userinfo_encrypted_response_enc,
                "userinfo_encrypted_response",
            )?,
            request_object_signing_alg: alg(
                doc.request_object_signing_alg,
                "request_object_signing_alg",
            )?,
            request_object_encryption: encryption(
                doc.request_object_encryption_alg,
                doc.request_object_encryption_enc,
                "request_object_encryption",
            )?,
            token_endpoint_auth_signing_alg,
            default_max_age: doc.default_max_age,
            require_auth_time: doc.require_auth_time,
            default_acr_values: non_empty_strings(doc.default_acr_values, "default_acr_values")?,
            initiate_login_uri: doc
                .initiate_login_uri
                .as_deref()
                .map(RegisteredUri::parse_https)
                .transpose()
                .map_err(|e| invalid(format!("initiate_login_uri: {e}")))?,
            request_uris: doc
                .request_uris
                .unwrap_or_default()
                .iter()
                .map(|uri| https_allowing_fragment(uri))
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(format!("request_uris: {e}")))?,
        })
    }

    /// The metadata as a JSON document: what was registered, defaults included.
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
        MetadataDocument {
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
            subject_type: self.subject_type.map(|s| s.to_string()),
            id_token_signed_response_alg: self.id_token_signed_response_alg.map(|a| a.to_string()),
            id_token_encrypted_response_alg: id_alg,
            id_token_encrypted_response_enc: id_enc,
            userinfo_signed_response_alg: self.userinfo_signed_response_alg.map(|a| a.to_string()),
            userinfo_encrypted_response_alg: ui_alg,
            userinfo_encrypted_response_enc: ui_enc,
            request_object_signing_alg: self.request_object_signing_alg.map(|a| a.to_string()),
            request_object_encryption_alg: ro_alg,
            request_object_encryption_enc: ro_enc,
            token_endpoint_auth_signing_alg: self
                .token_endpoint_auth_signing_alg
                .map(|a| a.to_string()),
            default_max_age: self.default_max_age,
            require_auth_time: self.require_auth_time,
            default_acr_values: non_empty(&self.default_acr_values),
            initiate_login_uri: self.initiate_login_uri.as_ref().map(uri_text),
            request_uris: uri_list(&self.request_uris),
            other,
        }
    }

    /// About how many bytes of heap this metadata holds (strings, parsed
    /// URIs, key sets and the collections around them), for caches that
    /// weigh entries by size. An estimate, not an allocator's count.
    #[must_use]
    pub fn heap_size(&self) -> usize {
        let uri = RegisteredUri::heap_size;
        let uris = |list: &[RegisteredUri]| list.iter().map(|u| UNIT_URI + uri(u)).sum::<usize>();
        let texts = |list: &[String]| list.iter().map(|t| UNIT_STRING + t.len()).sum::<usize>();
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        let localized_uris = [
            &self.client_uri,
            &self.logo_uri,
            &self.tos_uri,
            &self.policy_uri,
        ]
        .iter()
        .map(|l| l.heap_size(uri))
        .sum::<usize>();
        let keys = match &self.keys {
            Some(ClientKeys::Uri(u)) => uri(u),
            Some(ClientKeys::Set(set)) => json_heap_size(set),
            None => 0,
        };
        uris(&self.redirect_uris)
            + self.client_name.heap_size(String::len)
            + localized_uris
            + text(&self.scope)
            + texts(&self.contacts)
            + keys
            + text(&self.software_id)
            + text(&self.software_version)
            + self.sector_identifier_uri.as_ref().map_or(0, uri)
            + texts(&self.default_acr_values)
            + self.initiate_login_uri.as_ref().map_or(0, uri)
            + uris(&self.request_uris)
            + size_of::<GrantType>() * self.grant_types.len()
            + size_of::<ResponseType>() * self.response_types.len()
    }

    /// Whether the gateway must issue a client secret for this client.
    #[must_use]
    pub fn needs_client_secret(&self) -> bool {
        self.token_endpoint_auth_method.uses_client_secret()
    }
}

fn grants_and_responses(
    grants: Option<&[String]>,
    responses: Option<&[String]>,
) -> Result<(Vec<GrantType>, Vec<ResponseType>), MetadataError> {
    let grants = grants
        .map(|list| {
            list.iter()
                .map(|g| {
                    GrantType::parse(g)
                        .ok_or_else(|| invalid(format!("unsupported grant type `{g}`")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let responses = responses
        .map(|list| {
            list.iter()
                .map(|r| ResponseType::parse(r).map_err(invalid))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(match (grants, responses) {
        (Some(g), Some(r)) => (g, r),
        (None, None) => (
            vec![GrantType::AuthorizationCode],
            vec![ResponseType::code()],
        ),
        (Some(g), None) => {
            let r = if g.contains(&GrantType::AuthorizationCode) {
                vec![ResponseType::code()]
            } else {
                Vec::new()
            };
            (g, r)
        }
        (None, Some(r)) => {
            let mut g = Vec::new();
            if r.iter().any(|t| t.contains(ResponseTypeWord::Code)) {
                g.push(GrantType::AuthorizationCode);
            }
            if r.iter().any(ResponseType::returns_token) {
                g.push(GrantType::Implicit);
            }
            (g, r)
        }
    })
}

/// OpenID Connect DCR §2: `code` needs `authorization_code`, `token` and
/// `id_token` need `implicit`, and each of those grants needs its response type.
fn check_consistency(
    grants: &[GrantType],
    responses: &[ResponseType],
    auth: AuthMethod,
) -> Result<(), MetadataError> {
    let has = |g| grants.contains(&g);
    let any_code = responses.iter().any(|r| r.contains(ResponseTypeWord::Code));
    let any_token = responses.iter().any(ResponseType::returns_token);
    if any_code && !has(GrantType::AuthorizationCode) {
        return Err(invalid(
            "response type `code` requires the authorization_code grant type",
        ));
    }
    if any_token && !has(GrantType::Implicit) {
        return Err(invalid(
            "response types with `token` or `id_token` require the implicit grant type",
        ));
    }
    if has(GrantType::AuthorizationCode) && !any_code {
        return Err(invalid(
            "the authorization_code grant type requires a response type with `code`",
        ));
    }
    if has(GrantType::Implicit) && !any_token {
        return Err(invalid(
            "the implicit grant type requires a response type with `token` or `id_token`",
        ));
    }
    if auth == AuthMethod::None && has(GrantType::ClientCredentials) {
        return Err(invalid(
            "the client_credentials grant type needs client authentication, not `none`",
        ));
    }
    Ok(())
}

fn check_auth_signing_alg(
    method: AuthMethod,
    alg: Option<JwsAlgorithm>,
) -> Result<(), MetadataError> {
    let Some(alg) = alg else { return Ok(()) };
    match method {
        _ if alg == JwsAlgorithm::None => Err(invalid(
            "token_endpoint_auth_signing_alg must not be `none`",
        )),
        AuthMethod::ClientSecretJwt if !alg.is_symmetric() => Err(invalid(format!(
            "client_secret_jwt needs an HMAC token_endpoint_auth_signing_alg, not `{alg}`"
        ))),
        AuthMethod::PrivateKeyJwt if alg.is_symmetric() => Err(invalid(format!(
            "private_key_jwt needs an asymmetric token_endpoint_auth_signing_alg, not `{alg}`"
        ))),
        AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt => Ok(()),
        _ => Err(invalid(format!(
            "token_endpoint_auth_signing_alg is only meaningful with client_secret_jwt or private_key_jwt, not {method}"
        ))),
    }
}

/// Pairwise subjects without a sector identifier need all redirect URIs on one host.
fn check_single_host(redirect_uris: &[RegisteredUri]) -> Result<(), MetadataError> {
    let mut hosts = redirect_uris.iter().map(|u| u.url().host_str());
    if let Some(first) = hosts.next() {
        if hosts.any(|h| h != first) {
            return Err(invalid(
                "pairwise subject_type with redirect URIs on several hosts needs a sector_identifier_uri",
            ));
        }
    }
    Ok(())
}

/// Members of a JWK that belong to a private or symmetric key.
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn check_jwks(set: Value) -> Result<Value, MetadataError> {
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("jwks must be an object with a `keys` array"))?;
    for (i, key) in keys.iter().enumerate() {
        let key = key
            .as_object()
            .ok_or_else(|| invalid(format!("jwks.keys[{i}] must be an object")))?;
        if !key.get("kty").is_some_and(Value::is_string) {
            return Err(invalid(format!("jwks.keys[{i}] needs a `kty` string")));
        }
    }
    Ok(set)
}

/// The path (`jwks.keys[0].d`) of the first member anywhere in `value` whose
/// name, in any case, is one of [`PRIVATE_JWK_MEMBERS`].
fn private_member(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Object(members) => members.iter().find_map(|(name, inner)| {
            let path = format!("{path}.{name}");
            if PRIVATE_JWK_MEMBERS
                .iter()
                .any(|private| name.eq_ignore_ascii_case(private))
            {
                Some(path)
            } else {
                private_member(inner, &path)
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| private_member(item, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// Whether a JWK is a public key that can verify signatures (RFC 7517 §4,
/// RFC 7518 §6): an RSA, EC or OKP key with its public members, not
/// reserved for encryption.
fn is_signing_key(key: &Value) -> bool {
    let text = |member: &str| key.get(member).is_some_and(Value::is_string);
    let public_members: &[&str] = match key.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["n", "e"],
        Some("EC") => &["crv", "x", "y"],
        Some("OKP") => &["crv", "x"],
        _ => return false,
    };
    let for_signatures = key.get("use").is_none_or(|u| u == "sig");
    let verifies = key.get("key_ops").is_none_or(|ops| {
        ops.as_array()
            .is_some_and(|ops| ops.iter().any(|o| o == "verify"))
    });
    public_members.iter().all(|m| text(m)) && for_signatures && verifies
}

fn alg(value: Option<String>, field: &str) -> Result<Option<JwsAlgorithm>, MetadataError> {
    value
        .map(|text| {
            JwsAlgorithm::parse(&text)
                .ok_or_else(|| invalid(format!("{field}: unsupported algorithm `{text}`")))
        })
        .transpose()
}

fn encryption(
    alg: Option<String>,
    enc: Option<String>,
    prefix: &str,
) -> Result<Option<Encryption>, MetadataError> {
    let (alg_field, enc_field) = (format!("{prefix}_alg"), format!("{prefix}_enc"));
    match (alg, enc) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid(format!("{enc_field} requires {alg_field}"))),
        (Some(alg), enc) => {
            let alg = JweAlgorithm::parse(&alg)
                .ok_or_else(|| invalid(format!("{alg_field}: unsupported algorithm `{alg}`")))?;
            let enc = match enc {
                None => JweEncryption::A128CbcHs256,
                Some(text) => JweEncryption::parse(&text).ok_or_else(|| {
                    invalid(format!("{enc_field}: unsupported encryption `{text}`"))
                })?,
            };
            Ok(Some(Encryption { alg, enc }))
        }
    }
}

fn encryption_names(encryption: Option<Encryption>) -> (Option<String>, Option<String>) {
    match encryption {
        Some(e) => (Some(e.alg.to_string()), Some(e.enc.to_string())),
        None => (None, None),
    }
}

/// RFC 6749 §3.3: whether `token` is one scope token, printable ASCII
/// without space, `"` or `\\`.
#[must_use]
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// RFC 6749 §3.3: scope tokens separated by single spaces.
fn check_scope(scope: String) -> Result<String, MetadataError> {
    if scope.split(' ').all(is_scope_token) {
        Ok(scope)
    } else {
        Err(invalid(format!(
            "scope `{}` must be scope tokens separated by single spaces",
            scope.escape_debug()
        )))
    }
}

fn non_empty_strings(list: Option<Vec<String>>, field: &str) -> Result<Vec<String>, MetadataError> {
    let list = list.unwrap_or_default();
    if list.iter().any(|s| s.trim().is_empty()) {
        return Err(invalid(format!("{field} must not contain empty strings")));
    }
    Ok(list)
}

fn web_uri(text: String) -> Result<RegisteredUri, String> {
    RegisteredUri::parse_web(&text)
}

fn https_allowing_fragment(text: &str) -> Result<RegisteredUri, String> {
    let uri = RegisteredUri::parse(text)?;
    if uri.url().scheme() != "https" {
        return Err(format!("`{text}` must use https"));
    }
    Ok(uri)
}

/// BCP 47 language tag, loosely: alphanumeric subtags of 1 to 8 separated by `-`.
fn is_language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()))
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn localized<T>(
    plain: Option<String>,
    other: &BTreeMap<String, Value>,
    field: &str,
    parse: impl Fn(String) -> Result<T, String>,
) -> Result<Localized<T>, MetadataError> {
    let plain = plain
        .map(&parse)
        .transpose()
        .map_err(|e| invalid(format!("{field}: {e}")))?;
    let mut tagged = BTreeMap::new();
    for (key, value) in other {
        let Some((base, tag)) = key.split_once('#') else {
            continue;
        };
        if base != field {
            continue;
        }
        if !is_language_tag(tag) {
            return Err(invalid(format!("`{key}`: `{tag}` is not a language tag")));
        }
        let text = value
            .as_str()
            .ok_or_else(|| invalid(format!("`{key}` must be a string")))?;
        tagged.insert(
            tag.to_owned(),
            parse(text.to_owned()).map_err(|e| invalid(format!("{key}: {e}")))?,
        );
    }
    Ok(Localized { plain, tagged })
}

fn put_localized<T>(
    value: &Localized<T>,
    field: &str,
    other: &mut BTreeMap<String, Value>,
    text: impl Fn(&T) -> String,
) -> Option<String> {
    for (tag, v) in &value.tagged {
        other.insert(format!("{field}#{tag}"), Value::String(text(v)));
    }
    value.plain.as_ref().map(text)
}

fn uri_text(uri: &RegisteredUri) -> String {
    uri.as_str().to_owned()
}

fn uri_list(uris: &[RegisteredUri]) -> Option<Vec<String>> {
    (!uris.is_empty()).then(|| uris.iter().map(uri_text).collect())
}

fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}
