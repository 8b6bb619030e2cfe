//! JOSE algorithms (OpenID Connect DCR 1.0 §2, JARM §3, RFC 9701 §6, CIBA
//! Core 1.0 §4, ETSI GS NFV-SEC 022): what signs and encrypts ID tokens,
//! UserInfo, authorization and introspection responses, request objects and
//! NFV access tokens, and what signs `*_jwt` client authentication and CIBA
//! requests.

use super::{MetadataDocument, MetadataError, Reading, invalid};
use crate::domain::values::{
    AuthMethod, JweAlgorithm, JweEncryption, JwsAlgorithm, ResponseType, ResponseTypeWord,
};

/// JWE settings of one kind of response; `enc` defaults to `A128CBC-HS256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encryption {
    /// Key management algorithm.
    pub alg: JweAlgorithm,
    /// Content encryption algorithm.
    pub enc: JweEncryption,
}

/// What a JWS algorithm member signs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Signed {
    /// ID tokens: `id_token_signed_response_alg`.
    IdToken,
    /// UserInfo responses: `userinfo_signed_response_alg`.
    UserInfo,
    /// Request objects: `request_object_signing_alg`.
    RequestObject,
    /// `*_jwt` client authentication: `token_endpoint_auth_signing_alg`.
    TokenEndpointAuth,
}

impl Signed {
    /// The member that names the algorithm.
    pub(super) fn member(self) -> &'static str {
        match self {
            Self::IdToken => "id_token_signed_response_alg",
            Self::UserInfo => "userinfo_signed_response_alg",
            Self::RequestObject => "request_object_signing_alg",
            Self::TokenEndpointAuth => "token_endpoint_auth_signing_alg",
        }
    }

    /// The member's text in `doc`.
    fn text(self, doc: &MetadataDocument) -> Option<&str> {
        match self {
            Self::IdToken => doc.id_token_signed_response_alg.as_deref(),
            Self::UserInfo => doc.userinfo_signed_response_alg.as_deref(),
            Self::RequestObject => doc.request_object_signing_alg.as_deref(),
            Self::TokenEndpointAuth => doc.token_endpoint_auth_signing_alg.as_deref(),
        }
    }
}

/// What a pair of JWE members (`…_alg`, `…_enc`) encrypts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Encrypted {
    /// ID tokens: `id_token_encrypted_response_*`.
    IdToken,
    /// UserInfo responses: `userinfo_encrypted_response_*`.
    UserInfo,
    /// Request objects: `request_object_encryption_*`.
    RequestObject,
    /// JARM authorization responses: `authorization_encrypted_response_*`.
    Authorization,
    /// JWT introspection responses: `introspection_encrypted_response_*`.
    Introspection,
    /// NFV access tokens (ETSI GS NFV-SEC 022): `nfv_token_encryption_*`.
    NfvToken,
}

/// Reads the JWS algorithm member of what is `signed`.
pub(super) fn alg(
    doc: &MetadataDocument,
    signed: Signed,
) -> Result<Option<JwsAlgorithm>, MetadataError> {
    signed
        .text(doc)
        .map(|text| parse_alg(text, signed.member()))
        .transpose()
}

/// Parses `text`, the value of the JWS algorithm member `member`.
pub(super) fn parse_alg(text: &str, member: &str) -> Result<JwsAlgorithm, MetadataError> {
    JwsAlgorithm::parse(text)
        .ok_or_else(|| invalid(format!("{member}: unsupported algorithm `{text}`")))
}

/// Reads `token_endpoint_auth_signing_alg`. A submitted one is not `none`,
/// and fits `method`: HMAC for `client_secret_jwt`, asymmetric for
/// `private_key_jwt`, and absent for every other method.
pub(super) fn auth_signing_alg(
    doc: &MetadataDocument,
    method: AuthMethod,
    reading: Reading<'_>,
) -> Result<Option<JwsAlgorithm>, MetadataError> {
    let alg = alg(doc, Signed::TokenEndpointAuth)?;
    reading.check(|| check_auth_signing_alg(method, alg))?;
    Ok(alg)
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

/// Reads `id_token_signed_response_alg`. A submitted one is not `none` when
/// ID tokens come from the authorization endpoint (an `id_token` response type).
pub(super) fn id_token_signing_alg(
    doc: &MetadataDocument,
    responses: &[ResponseType],
    reading: Reading<'_>,
) -> Result<Option<JwsAlgorithm>, MetadataError> {
    let alg = alg(doc, Signed::IdToken)?;
    reading.check(|| {
        if alg == Some(JwsAlgorithm::None)
            && responses
                .iter()
                .any(|r| r.contains(ResponseTypeWord::IdToken))
        {
            return Err(invalid(
                "id_token_signed_response_alg `none` is not allowed with an id_token response type",
            ));
        }
        Ok(())
    })?;
    Ok(alg)
}

/// Reads the `…_alg` and `…_enc` pair of what is `encrypted`: `enc` only
/// with `alg`.
pub(super) fn encryption(
    doc: &MetadataDocument,
    encrypted: Encrypted,
) -> Result<Option<Encryption>, MetadataError> {
    let (prefix, alg, enc) = match encrypted {
        Encrypted::IdToken => (
            "id_token_encrypted_response",
            &doc.id_token_encrypted_response_alg,
            &doc.id_token_encrypted_response_enc,
        ),
        Encrypted::UserInfo => (
            "userinfo_encrypted_response",
            &doc.userinfo_encrypted_response_alg,
            &doc.userinfo_encrypted_response_enc,
        ),
        Encrypted::RequestObject => (
            "request_object_encryption",
            &doc.request_object_encryption_alg,
            &doc.request_object_encryption_enc,
        ),
        Encrypted::Authorization => (
            "authorization_encrypted_response",
            &doc.authorization_encrypted_response_alg,
            &doc.authorization_encrypted_response_enc,
        ),
        Encrypted::Introspection => (
            "introspection_encrypted_response",
            &doc.introspection_encrypted_response_alg,
            &doc.introspection_encrypted_response_enc,
        ),
        Encrypted::NfvToken => (
            "nfv_token_encryption",
            &doc.nfv_token_encryption_alg,
            &doc.nfv_token_encryption_enc,
        ),
    };
    let (alg_field, enc_field) = (format!("{prefix}_alg"), format!("{prefix}_enc"));
    match (alg.as_deref(), enc.as_deref()) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid(format!("{enc_field} requires {alg_field}"))),
        (Some(alg), enc) => {
            let alg = JweAlgorithm::parse(alg)
                .ok_or_else(|| invalid(format!("{alg_field}: unsupported algorithm `{alg}`")))?;
            let enc = match enc {
                None => JweEncryption::A128CbcHs256,
                Some(text) => JweEncryption::parse(text).ok_or_else(|| {
                    invalid(format!("{enc_field}: unsupported encryption `{text}`"))
                })?,
            };
            Ok(Some(Encryption { alg, enc }))
        }
    }
}

/// The algorithm and encryption names of one kind of response.
pub(super) fn encryption_names(encryption: Option<Encryption>) -> (Option<String>, Option<String>) {
    match encryption {
        Some(e) => (Some(e.alg.to_string()), Some(e.enc.to_string())),
        None => (None, None),
    }
}
