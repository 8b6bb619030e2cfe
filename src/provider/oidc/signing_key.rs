//! The operator's key for `private_key_jwt`: read once from its PEM file,
//! with the algorithm its type implies.

use jsonwebtoken::{Algorithm, EncodingKey};
use sha2::{Digest, Sha256};

/// A private key that signs the gateway's client assertions. `Debug`
/// prints `[redacted]`.
#[derive(Clone)]
pub struct SigningKey {
    /// The key.
    pub key: EncodingKey,
    /// Its algorithm: `RS256` (or `PS256`) for an RSA key, `ES256` for a
    /// P-256 one, `EdDSA` for Ed25519.
    pub algorithm: Algorithm,
    /// Its id at the provider (`kid`).
    pub key_id: Option<String>,
    /// The base64url SHA-256 of its certificate (`x5t#S256`).
    pub certificate_thumbprint: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl SigningKey {
    /// Reads the key at `path` (PKCS#8 or PKCS#1 PEM) and, if given, the
    /// certificate at `certificate`; an RSA key signs with `PS256` when
    /// `pss`.
    pub fn read(
        path: &str,
        key_id: Option<String>,
        certificate: Option<&str>,
        pss: bool,
    ) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let rsa = if pss {
            Algorithm::PS256
        } else {
            Algorithm::RS256
        };
        let (key, algorithm) = EncodingKey::from_rsa_pem(&pem)
            .map(|key| (key, rsa))
            .or_else(|_| EncodingKey::from_ec_pem(&pem).map(|key| (key, Algorithm::ES256)))
            .or_else(|_| EncodingKey::from_ed_pem(&pem).map(|key| (key, Algorithm::EdDSA)))
            .map_err(|_| {
                format!(
                    "`{path}` holds no RSA, P-256 or Ed25519 private key in PEM (an EC key \
                     that begins `BEGIN EC PRIVATE KEY` must be converted to PKCS#8: \
                     openssl pkcs8 -topk8 -nocrypt)"
                )
            })?;
        // A public key or a certificate reads as a key, and an EC key of
        // another curve as a P-256 one: only signing tells them apart.
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(algorithm),
            &serde_json::json!({}),
            &key,
        )
        .map_err(|e| format!("`{path}` cannot sign {algorithm:?} client assertions: {e}"))?;
        let certificate_thumbprint = certificate.map(thumbprint).transpose()?;
        Ok(Self {
            key,
            algorithm,
            key_id,
            certificate_thumbprint,
        })
    }
}

/// The `x5t#S256` of the certificate in the PEM file at `path`.
fn thumbprint(path: &str) -> Result<String, String> {
    use base64::Engine;
    let text = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let certificate = pem::parse(text)
        .ok()
        .filter(|block| block.tag() == "CERTIFICATE")
        .ok_or_else(|| format!("`{path}` holds no PEM certificate"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(certificate.contents())))
}
