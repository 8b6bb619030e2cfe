//! JSON Web Key Sets as the front reads them: the provider's (broker mode,
//! for ID tokens) and the clients' (for `private_key_jwt` assertions). A
//! key this library cannot read (another curve, an encryption algorithm)
//! is left out rather than failing the whole set, and a key is chosen by
//! `kid` and by the key type the token's algorithm needs.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use serde_json::Value;

/// The asymmetric signing algorithms a token may use: never `none`, never
/// an HMAC (whose key a public key set would hand anyone).
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The signing keys of a key set: every key this library reads that is not
/// for encryption. A key it cannot read (another curve, an encryption
/// algorithm) is left out, not a reason to refuse the whole set.
pub fn signing_keys(set: &Value) -> JwkSet {
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    JwkSet {
        keys: keys
            .iter()
            .filter(|key| key.get("use").and_then(Value::as_str) != Some("enc"))
            .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
            .collect(),
    }
}

/// The key of `keys` for a token signed with `alg` by the key `kid`: one
/// with that `kid` (or, with no `kid`, the only one) of the algorithm's
/// key type (and, for an EC key, the algorithm's curve).
pub fn find_for<'k>(keys: &'k JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'k Jwk> {
    let fits = |key: &&Jwk| match &key.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    };
    let mut candidates = keys.keys.iter().filter(fits);
    match kid {
        Some(kid) => candidates.find(|key| key.common.key_id.as_deref() == Some(kid)),
        None => {
            let only = candidates.next();
            candidates.next().is_none().then_some(only).flatten()
        }
    }
}
