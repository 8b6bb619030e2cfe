//! The client's public keys: `jwks_uri` or `jwks` (RFC 7591 §2), never
//! both, present when the authentication method proves a key, and never
//! private key material; and the certificate subject a mutual-TLS client
//! authenticates with (RFC 8705 §2.1.2).

use serde_json::Value;

use super::{ClientMetadata, MetadataError, Reading, invalid};
use crate::domain::uri::RegisteredUri;
use crate::domain::values::AuthMethod;

/// Where the client's public keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// Fetched from a URL (`jwks_uri`).
    Uri(RegisteredUri),
    /// Given by value (`jwks`), a JSON object with a `keys` array.
    Set(Value),
}

/// The certificate subject a `tls_client_auth` client authenticates with:
/// one of the five `tls_client_auth_*` members, its text as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSubject {
    /// `tls_client_auth_subject_dn`: an RFC 4514 distinguished name.
    SubjectDn(String),
    /// `tls_client_auth_san_dns`: a dNSName SAN entry.
    SanDns(String),
    /// `tls_client_auth_san_uri`: a uniformResourceIdentifier SAN entry.
    SanUri(RegisteredUri),
    /// `tls_client_auth_san_ip`: an iPAddress SAN entry, IPv4 or IPv6 text.
    SanIp(String),
    /// `tls_client_auth_san_email`: an rfc822Name SAN entry.
    SanEmail(String),
}

impl CertificateSubject {
    /// The member that carries this subject.
    #[must_use]
    pub fn member(&self) -> &'static str {
        match self {
            Self::SubjectDn(_) => "tls_client_auth_subject_dn",
            Self::SanDns(_) => "tls_client_auth_san_dns",
            Self::SanUri(_) => "tls_client_auth_san_uri",
            Self::SanIp(_) => "tls_client_auth_san_ip",
            Self::SanEmail(_) => "tls_client_auth_san_email",
        }
    }

    /// The subject's text, as registered.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::SanUri(uri) => uri.as_str(),
            Self::SubjectDn(text)
            | Self::SanDns(text)
            | Self::SanIp(text)
            | Self::SanEmail(text) => text,
        }
    }
}

/// Members of a JWK that belong to a private or symmetric key.
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Reads `jwks_uri` (https) or `jwks`. A submitted key set is a `keys`
/// array of JWK objects, and a method that proves a key (`auth`) has keys.
pub(super) fn read(
    jwks_uri: Option<&str>,
    jwks: Option<Value>,
    auth: AuthMethod,
    reading: Reading<'_>,
) -> Result<Option<ClientKeys>, MetadataError> {
    let keys = match (jwks_uri, jwks) {
        (Some(_), Some(_)) => {
            return Err(invalid("jwks_uri and jwks must not both be present"));
        }
        (uri @ Some(_), None) => reading.https_uri(uri, "jwks_uri")?.map(ClientKeys::Uri),
        (None, Some(set)) => {
            reading.check(|| check_jwks(&set))?;
            Some(ClientKeys::Set(set))
        }
        (None, None) => None,
    };
    reading.check(|| {
        if auth.needs_client_keys() && keys.is_none() {
            return Err(invalid(format!("{auth} needs jwks or jwks_uri")));
        }
        Ok(())
    })?;
    Ok(keys)
}

fn check_jwks(set: &Value) -> Result<(), MetadataError> {
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
    Ok(())
}

/// What a registration's key set meets besides what [`read`] checks: no
/// private key material anywhere in it, and a usable signing key for
/// `private_key_jwt`.
pub(super) fn check_registration(metadata: &ClientMetadata) -> Result<(), MetadataError> {
    let Some(ClientKeys::Set(set)) = &metadata.keys else {
        return Ok(());
    };
    if let Some(path) = private_member(set, "jwks") {
        return Err(invalid(format!(
            "`{path}` is private key material; register public keys only"
        )));
    }
    let keys = set.get("keys").and_then(Value::as_array);
    if metadata.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt
        && !keys.is_some_and(|keys| keys.iter().any(is_signing_key))
    {
        return Err(invalid(
            "private_key_jwt needs at least one public signing key (RSA, EC or OKP) in jwks",
        ));
    }
    Ok(())
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
