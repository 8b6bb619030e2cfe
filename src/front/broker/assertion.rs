//! The gateway's client assertion for `private_key_jwt` (RFC 7523 §3,
//! OpenID Connect Core §9): a JWT the operator's key signs, naming the
//! operator's client as issuer and subject and the provider's token
//! endpoint as audience, valid for a minute, with a fresh `jti`.

use jsonwebtoken::{Header, encode};
use serde::Serialize;

use super::super::error::FrontError;
use super::super::transactions::FrontSecret;
use crate::provider::oidc::SigningKey;

/// How long an assertion is valid.
const LIFETIME_SECONDS: i64 = 60;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// An assertion for `client_id`, signed with `key`, for `audience`.
pub fn sign(
    key: &SigningKey,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<String, FrontError> {
    let mut header = Header::new(key.algorithm);
    header.kid.clone_from(&key.key_id);
    header.x5t_s256.clone_from(&key.certificate_thumbprint);
    let claims = Claims {
        iss: client_id,
        sub: client_id,
        aud: audience,
        jti: FrontSecret::generate().expose().to_owned(),
        iat: now,
        nbf: now,
        exp: now.saturating_add(LIFETIME_SECONDS),
    };
    encode(&header, &claims, &key.key)
        .map_err(|e| FrontError::internal(&format!("signing the client assertion: {e}")))
}
