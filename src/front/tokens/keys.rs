//! The gateway's signing keys (issue 30): P-256 keys made on the first
//! start, kept in the store with the private half sealed under the store
//! key, so every instance signs with the same one. Rotation adds a key that
//! is published at once and signs only after [`PUBLISH_AHEAD`] (so resource
//! servers that cached the key set find it), and keeps the old ones
//! published until their last token expired. Each instance reads the keys
//! again every minute.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::super::error::FrontError;
use crate::clock::seconds;
use crate::store::front::{SigningKeyStore, StoredSigningKey};
use crate::store::sealing::Sealer;

/// How long before it signs a new key is published: the key set's
/// `Cache-Control` lifetime.
pub const PUBLISH_AHEAD: Duration = Duration::from_secs(300);

/// How long an instance uses the keys it read.
const RELOAD: Duration = Duration::from_secs(60);

/// Binds sealed private keys to this use.
const SEAL_CONTEXT: &str = "dcr-gateway signing key";

/// The keys as one instance uses them now.
pub struct Loaded {
    /// The key that signs: its `kid` and the key.
    pub signing: (String, EncodingKey),
    /// The published key set (JWKS).
    pub published: Value,
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
    /// The keys as loaded, by the minute of the gateway's clock they were
    /// loaded in: each instance reads them again every minute.
    loaded: moka::future::Cache<i64, Arc<Loaded>>,
}

impl KeyRing {
    /// The keys in `store`, sealed by `sealer`.
    #[must_use]
    pub fn new(store: Arc<dyn SigningKeyStore>, sealer: Sealer) -> Self {
        Self {
            store,
            sealer,
            loaded: moka::future::Cache::builder()
                .max_capacity(2)
                .time_to_live(RELOAD)
                .build(),
        }
    }

    /// The keys at `now`, making the first one if there is none.
    pub async fn loaded(&self, now: i64) -> Result<Arc<Loaded>, FrontError> {
        self.loaded
            .try_get_with(now.div_euclid(seconds(RELOAD)), async {
                let mut keys = self.store.signing_keys().await?;
                if keys.is_empty() {
                    self.store
                        .add_signing_key(&self.generate(now)?, true)
                        .await?;
                    keys = self.store.signing_keys().await?;
                }
                self.load(&keys, now).map(Arc::new)
            })
            .await
            .map_err(|error: Arc<FrontError>| FrontError::clone(&error))
    }

    /// The signing key and the published set of `keys` at `now`.
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
        let private = self
            .sealer
            .open(&signing.sealed_private, SEAL_CONTEXT)
            .map_err(|e| FrontError::internal(&format!("a signing key does not open: {e}")))?;
        let jwks: Vec<Value> = published
            .iter()
            .filter_map(|key| serde_json::from_str(&key.public_jwk).ok())
            .collect();
        Ok(Loaded {
            signing: (signing.kid.clone(), EncodingKey::from_ec_der(&private)),
            published: json!({ "keys": jwks }),
        })
    }

    /// Adds a key that signs from `now` + [`PUBLISH_AHEAD`], and retires
    /// the others once the tokens they signed (living `lifetime`) expired.
    /// The new key's `kid`.
    pub async fn rotate(&self, now: i64, lifetime: Duration) -> Result<String, FrontError> {
        let key = self.generate(now.saturating_add(seconds(PUBLISH_AHEAD)))?;
        self.store.add_signing_key(&key, false).await?;
        let retire_at = key.signs_from.saturating_add(seconds(lifetime));
        self.store.retire_signing_keys(&key.kid, retire_at).await?;
        self.loaded.invalidate_all();
        Ok(key.kid)
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

    /// A fresh P-256 key signing from `signs_from`.
    fn generate(&self, signs_from: i64) -> Result<StoredSigningKey, FrontError> {
        let failed = |what: &str| FrontError::internal(&format!("making a signing key: {what}"));
        let random = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
            .map_err(|_| failed("generation"))?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                .map_err(|_| failed("reading it back"))?;
        let point = pair.public_key().as_ref();
        let (x, y) = match point {
            [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(failed("an unexpected public key")),
        };
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(point)[..12]);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        Ok(StoredSigningKey {
            kid,
            algorithm: "ES256".into(),
            sealed_private: self
                .sealer
                .seal(pkcs8.as_ref(), SEAL_CONTEXT)
                .map_err(|e| failed(&e.to_string()))?,
            public_jwk: jwk.to_string(),
            signs_from,
            retired_at: None,
        })
    }
}
