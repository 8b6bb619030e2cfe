//! The gateway's signing keys (issue 30): keys of the configured algorithm
//! (`[front] signing_algorithm`: ES256, RS256 or EdDSA) made on the first
//! start, kept in the store with the private half sealed under the store
//! key, so every instance signs with the same one. Each key keeps its own
//! algorithm: a token's `alg` is its key's, and a token is checked with
//! that algorithm only.
//!
//! Rotation adds a key that is published at once and signs only after
//! [`PUBLISH_AHEAD`] (so resource servers that cached the key set find it),
//! and keeps the old ones published until their last token expired. The
//! operator rotates (`dcr-gateway keys rotate`), and so does the gateway
//! when the newest key is of another algorithm than the configured one, or
//! older than `[front] signing_key_rotation`. Each instance reads the keys
//! again every minute, and checks then whether they are due; the store
//! checks again under its lock, so that instances add one key between them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use ring::error::KeyRejected;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::super::error::FrontError;
use crate::audit::{self, AuditEvent};
use crate::clock::seconds;
use crate::store::front::{KeyDue, SigningKeyStore, StoredSigningKey};
use crate::store::sealing::Sealer;

/// How long before it signs a new key is published: the key set's
/// `Cache-Control` lifetime.
pub const PUBLISH_AHEAD: Duration = Duration::from_secs(300);

/// How long an instance uses the keys it read; as often, it checks
/// whether they are due for rotation.
pub const RELOAD: Duration = Duration::from_secs(60);

/// Binds sealed private keys to this use.
const SEAL_CONTEXT: &str = "dcr-gateway signing key";

/// The size of the RSA keys made for RS256.
const RSA_BITS: usize = 2048;

/// The algorithm the gateway's keys sign with: `[front] signing_algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// ECDSA with P-256 and SHA-256 (the default).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    Rs256,
    /// Ed25519.
    EdDsa,
}

/// A key pair just made.
struct NewPair {
    /// The private key as the signer reads it: PKCS#8 (ES256, EdDSA) or
    /// PKCS#1 (RS256) DER.
    private: Vec<u8>,
    /// The public key's bytes, which its `kid` digests.
    public: Vec<u8>,
    /// The public key's own JWK members (`kty`, `crv`, `x`, `y`, `n`, `e`).
    jwk: Value,
}

impl SigningAlgorithm {
    /// Every algorithm, in the order the settings name them.
    pub const ALL: [Self; 3] = [Self::Es256, Self::Rs256, Self::EdDsa];

    /// Its JWS name (`ES256`, `RS256`, `EdDSA`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of JWS name `name`, spelt exactly.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
    }

    /// As the JWT library names it.
    fn jws(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    /// The signing key of `private` ([`NewPair::private`]), read as the
    /// JWT library reads it.
    fn signing_pair(self, private: &[u8]) -> Result<SigningPair, KeyRejected> {
        match self {
            Self::Es256 => EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                private,
                &SystemRandom::new(),
            )
            .map(SigningPair::Es256),
            Self::Rs256 => RsaKeyPair::from_der(private).map(SigningPair::Rs256),
            Self::EdDsa => {
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(private).map(SigningPair::EdDsa)
            }
        }
    }

    /// A fresh key pair (an RSA one takes a while: run it off the async
    /// threads); the error says which step failed.
    fn generate(self) -> Result<NewPair, &'static str> {
        let random = SystemRandom::new();
        match self {
            Self::Es256 => {
                let algorithm = &ECDSA_P256_SHA256_FIXED_SIGNING;
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(algorithm, &random).map_err(|_| "generation")?;
                let pair = EcdsaKeyPair::from_pkcs8(algorithm, pkcs8.as_ref(), &random)
                    .map_err(|_| "reading it back")?;
                let point = pair.public_key().as_ref();
                let (x, y) = match point {
                    [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                    _ => return Err("an unexpected public key"),
                };
                Ok(NewPair {
                    private: pkcs8.as_ref().to_vec(),
                    public: point.to_vec(),
                    jwk: json!({
                        "kty": "EC", "crv": "P-256",
                        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                    }),
                })
            }
            Self::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random).map_err(|_| "generation")?;
                let pair =
                    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| "reading it back")?;
                let public = pair.public_key().as_ref();
                Ok(NewPair {
                    private: pkcs8.as_ref().to_vec(),
                    public: public.to_vec(),
                    jwk: json!({
                        "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public),
                    }),
                })
            }
            Self::Rs256 => {
                let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(|_| "generation")?;
                let public = private.to_public_key();
                Ok(NewPair {
                    private: private
                        .to_pkcs1_der()
                        .map_err(|_| "encoding the private key")?
                        .as_bytes()
                        .to_vec(),
                    public: public
                        .to_pkcs1_der()
                        .map_err(|_| "encoding the public key")?
                        .into_vec(),
                    jwk: json!({
                        "kty": "RSA",
                        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
                    }),
                })
            }
        }
    }
}

/// How the keys are made and replaced: from `[front]`.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// The algorithm new keys sign with.
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the gateway replaces it (`None`: until
    /// the operator does).
    pub rotation: Option<Duration>,
    /// How long the tokens live: a replaced key stays published that long
    /// after its successor signs.
    pub lifetime: Duration,
}

/// The key that signs now.
struct Signer {
    kid: String,
    algorithm: SigningAlgorithm,
    /// The key, read once when the keys are loaded (the JWT library reads
    /// it for every token it signs, which for ES256 and EdDSA computes
    /// the public key again). Why it does not read, if it does not: then
    /// every token fails to sign, and the key set is still published.
    pair: Result<SigningPair, KeyRejected>,
    random: SystemRandom,
}

/// A private key ready to sign.
enum SigningPair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Its header or claims did not serialize.
    #[error("the token does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The signing key did not read.
    #[error("the signing key is unreadable: {0}")]
    Key(KeyRejected),
    /// The signature could not be made.
    #[error("the signature failed")]
    Signature,
}

impl Signer {
    /// The signature of `message`.
    fn signature(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let failed = |_| SigningError::Signature;
        match self.pair.as_ref().map_err(|e| SigningError::Key(*e))? {
            SigningPair::Es256(pair) => Ok(pair
                .sign(&self.random, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            SigningPair::Rs256(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.random, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            SigningPair::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The keys as one instance uses them now. `Debug` leaves the private key
/// out.
pub struct Loaded {
    /// The key that signs.
    signer: Signer,
    /// The published key set (JWKS).
    pub published: Value,
    /// The published keys by `kid`, each with its one algorithm.
    verifying: HashMap<String, (SigningAlgorithm, DecodingKey)>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("signing_kid", &self.signer.kid)
            .field("signing_algorithm", &self.signer.algorithm)
            .field("signing_key", &"[redacted]")
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

impl Loaded {
    /// `claims` signed by the signing key, with its `kid` and algorithm in
    /// the header, and `typ` if given.
    pub fn sign(&self, typ: Option<&str>, claims: &impl Serialize) -> Result<String, SigningError> {
        let mut header = Header::new(self.signer.algorithm.jws());
        header.typ = typ.map(str::to_owned);
        header.kid = Some(self.signer.kid.clone());
        // As the JWT library encodes a token, with the key read once.
        let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);
        let signature = self.signer.signature(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// The published key `kid`, with the one algorithm it signs with.
    #[must_use]
    pub fn verifying_key(&self, kid: &str) -> Option<(Algorithm, &DecodingKey)> {
        self.verifying
            .get(kid)
            .map(|(algorithm, key)| (algorithm.jws(), key))
    }

    /// The algorithms of the published keys, each once: the signing
    /// key's first, the others in [`SigningAlgorithm::ALL`]'s order.
    #[must_use]
    pub fn algorithms(&self) -> Vec<&'static str> {
        let signing = self.signer.algorithm;
        let others = SigningAlgorithm::ALL.into_iter().filter(|algorithm| {
            *algorithm != signing && self.verifying.values().any(|(its, _)| its == algorithm)
        });
        std::iter::once(signing)
            .chain(others)
            .map(SigningAlgorithm::name)
            .collect()
    }
}

/// One key, as `dcr-gateway keys list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    /// Its `kid`.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: String,
    /// From when it signs.
    pub signs_from: i64,
    /// When it stopped being published, if it was rotated out.
    pub retired_at: Option<i64>,
}

/// The gateway's signing keys.
pub struct KeyRing {
    store: Arc<dyn SigningKeyStore>,
    sealer: Sealer,
    policy: KeyPolicy,
    /// The keys as loaded, by the minute of the gateway's clock they were
    /// loaded in: each instance reads them again every minute.
    loaded: moka::future::Cache<i64, Arc<Loaded>>,
}

impl KeyRing {
    /// The keys in `store`, sealed by `sealer`, made and replaced as
    /// `policy` says.
    #[must_use]
    pub fn new(store: Arc<dyn SigningKeyStore>, sealer: Sealer, policy: KeyPolicy) -> Self {
        Self {
            store,
            sealer,
            policy,
            loaded: moka::future::Cache::builder()
                .max_capacity(2)
                .time_to_live(RELOAD)
                .build(),
        }
    }

    /// The keys at `now`: the first one is made if there is none, and the
    /// newest is replaced if it is due (of another algorithm than the
    /// configured one, or older than the rotation period). A failed
    /// replacement is logged, and the keys there are used.
    pub async fn loaded(&self, now: i64) -> Result<Arc<Loaded>, FrontError> {
        self.loaded
            .try_get_with(now.div_euclid(seconds(RELOAD)), async {
                let mut keys = self.store.signing_keys().await?;
                let newest = keys.iter().max_by_key(|key| key.signs_from);
                let due = match newest {
                    None => KeyDue::First,
                    Some(_) => self.stale(now),
                };
                if let Some(reason) = due.reason(newest) {
                    match self.add(now, due, reason).await {
                        Ok(_) => keys = self.store.signing_keys().await?,
                        Err(error) if !keys.is_empty() => tracing::warn!(
                            error = %error.description,
                            reason,
                            "front: the signing key was not replaced; the old one signs on"
                        ),
                        Err(error) => return Err(error),
                    }
                }
                self.load(&keys, now).map(Arc::new)
            })
            .await
            .map_err(|error: Arc<FrontError>| FrontError::clone(&error))
    }

    /// When the newest key is stale at `now`.
    fn stale(&self, now: i64) -> KeyDue<'static> {
        KeyDue::Stale {
            algorithm: self.policy.algorithm.name(),
            aged: self
                .policy
                .rotation
                .map(|period| now.saturating_sub(seconds(period))),
        }
    }

    /// The signing key and the published set of `keys` at `now`. A
    /// published key whose algorithm or JWK cannot be read is left out.
    fn load(&self, keys: &[StoredSigningKey], now: i64) -> Result<Loaded, FrontError> {
        let published: Vec<&StoredSigningKey> = keys
            .iter()
            .filter(|key| key.retired_at.is_none_or(|at| at > now))
            .collect();
        let signing = published
            .iter()
            .filter(|key| key.signs_from <= now)
            .max_by_key(|key| key.signs_from)
            .ok_or_else(|| FrontError::internal("no signing key signs yet"))?;
        let algorithm = SigningAlgorithm::named(&signing.algorithm).ok_or_else(|| {
            FrontError::internal(&format!(
                "the signing key {} has an unknown algorithm {}",
                signing.kid, signing.algorithm
            ))
        })?;
        let private = self
            .sealer
            .open(&signing.sealed_private, SEAL_CONTEXT)
            .map_err(|e| FrontError::internal(&format!("a signing key does not open: {e}")))?;
        let mut jwks = Vec::new();
        let mut verifying = HashMap::new();
        for key in &published {
            let Some((algorithm, jwk, decoding)) = Self::public(key) else {
                tracing::warn!(kid = %key.kid, "front: a stored signing key is unreadable; not published");
                continue;
            };
            verifying.insert(key.kid.clone(), (algorithm, decoding));
            jwks.push(jwk);
        }
        Ok(Loaded {
            signer: Signer {
                kid: signing.kid.clone(),
                algorithm,
                pair: algorithm.signing_pair(&private),
                random: SystemRandom::new(),
            },
            published: json!({ "keys": jwks }),
            verifying,
        })
    }

    /// The algorithm, JWK and verifying key of `key`, if they read.
    fn public(key: &StoredSigningKey) -> Option<(SigningAlgorithm, Value, DecodingKey)> {
        let algorithm = SigningAlgorithm::named(&key.algorithm)?;
        let jwk: Value = serde_json::from_str(&key.public_jwk).ok()?;
        let parsed: Jwk = serde_json::from_value(jwk.clone()).ok()?;
        let decoding = DecodingKey::from_jwk(&parsed).ok()?;
        Some((algorithm, jwk, decoding))
    }

    /// Adds a key of the configured algorithm when `due` says so (the
    /// store checks again under its lock): signing at once if it is the
    /// first, else after [`PUBLISH_AHEAD`], the others retiring once the
    /// tokens they signed expired. Logs it, and audits and counts a
    /// rotation, for `reason` ([`KeyDue::reason`]). The new key's `kid`,
    /// or `None` when another instance added one first.
    async fn add(
        &self,
        now: i64,
        due: KeyDue<'_>,
        reason: &'static str,
    ) -> Result<Option<String>, FrontError> {
        let signs_from = match due {
            KeyDue::First => now,
            KeyDue::Always | KeyDue::Stale { .. } => now.saturating_add(seconds(PUBLISH_AHEAD)),
        };
        let key = self.generate(signs_from).await?;
        let retire_at = signs_from.saturating_add(seconds(self.policy.lifetime));
        if !self.store.add_signing_key(&key, retire_at, due).await? {
            return Ok(None);
        }
        tracing::info!(
            kid = %key.kid,
            algorithm = %key.algorithm,
            signs_from,
            reason,
            "front: added a signing key"
        );
        if due != KeyDue::First {
            metrics::counter!("dcr_front_signing_key_rotations_total", "reason" => reason)
                .increment(1);
            audit::record(&AuditEvent {
                action: "rotate_signing_key",
                outcome: "success",
                ..AuditEvent::default()
            });
        }
        Ok(Some(key.kid))
    }

    /// The operator's rotation (`dcr-gateway keys rotate`): adds a key of
    /// the configured algorithm that signs from `now` + [`PUBLISH_AHEAD`],
    /// and retires the others once the tokens they signed expired. The
    /// new key's `kid`.
    pub async fn rotate(&self, now: i64) -> Result<String, FrontError> {
        // The first key, if there is none yet, so that one signs meanwhile.
        self.loaded(now).await?;
        let kid = self
            .add(now, KeyDue::Always, "operator")
            .await?
            .ok_or_else(|| FrontError::internal("the store did not add the key"))?;
        self.loaded.invalidate_all();
        Ok(kid)
    }

    /// Every key, for the operator.
    pub async fn list(&self) -> Result<Vec<KeyView>, FrontError> {
        Ok(self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .map(|key| KeyView {
                kid: key.kid,
                algorithm: key.algorithm,
                signs_from: key.signs_from,
                retired_at: key.retired_at,
            })
            .collect())
    }

    /// A fresh key of the configured algorithm signing from `signs_from`,
    /// its private half sealed.
    async fn generate(&self, signs_from: i64) -> Result<StoredSigningKey, FrontError> {
        let failed = |what: &str| FrontError::internal(&format!("making a signing key: {what}"));
        let algorithm = self.policy.algorithm;
        let pair = tokio::task::spawn_blocking(move || algorithm.generate())
            .await
            .map_err(|e| failed(&e.to_string()))?
            .map_err(failed)?;
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&pair.public)[..12]);
        let mut jwk = pair.jwk;
        jwk["alg"] = Value::from(algorithm.name());
        jwk["use"] = Value::from("sig");
        jwk["kid"] = Value::from(kid.as_str());
        Ok(StoredSigningKey {
            kid,
            algorithm: algorithm.name().to_owned(),
            sealed_private: self
                .sealer
                .seal(&pair.private, SEAL_CONTEXT)
                .map_err(|e| failed(&e.to_string()))?,
            public_jwk: jwk.to_string(),
            signs_from,
            retired_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_signs_what_its_public_jwk_verifies() {
        // RS256 too, in tests/gateway/front/gateway_tokens.rs (its keys
        // take a while to make).
        for algorithm in [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa] {
            let pair = algorithm.generate().unwrap();
            let jwk: Jwk = serde_json::from_value(pair.jwk).unwrap();
            let loaded = Loaded {
                signer: Signer {
                    kid: "k1".into(),
                    algorithm,
                    pair: algorithm.signing_pair(&pair.private),
                    random: SystemRandom::new(),
                },
                published: json!({ "keys": [] }),
                verifying: HashMap::new(),
            };
            let token = loaded
                .sign(Some("at+jwt"), &json!({ "sub": "dana" }))
                .unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some("k1"));
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            let mut validation = jsonwebtoken::Validation::new(algorithm.jws());
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let decoding = DecodingKey::from_jwk(&jwk).unwrap();
            assert!(jsonwebtoken::decode::<Value>(&token, &decoding, &validation).is_ok());
        }
    }

    #[test]
    fn algorithms_are_named_as_jws_names_them() {
        for algorithm in SigningAlgorithm::ALL {
            assert_eq!(SigningAlgorithm::named(algorithm.name()), Some(algorithm));
        }
        assert_eq!(SigningAlgorithm::named("es256"), None);
        assert_eq!(SigningAlgorithm::named("none"), None);
    }
}
