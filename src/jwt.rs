//! Reading a JWT's claims before its signature is checked: only to learn
//! whose keys check it (a software statement's issuer, a client
//! assertion's client). Nothing read here is trusted until verified.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Why a token's claims could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// It has no payload part.
    #[error("is not a JWS")]
    NotJws,
    /// Its payload is not base64url.
    #[error("payload is not base64url")]
    NotBase64,
    /// Its payload is not a JSON object.
    #[error("payload is not a JSON object")]
    NotObject,
}

/// The claims of `token`, unverified.
pub fn unverified_claims(token: &str) -> Result<Map<String, Value>, Unreadable> {
    let payload = token.split('.').nth(1).ok_or(Unreadable::NotJws)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Unreadable::NotBase64)?;
    serde_json::from_slice(&bytes).map_err(|_| Unreadable::NotObject)
}
