//! `private_key_jwt` client authentication verified by the gateway itself
//! (RFC 7523 §2.2 and §3, OpenID Connect Core §9), for clients that
//! registered it with `jwks` or `jwks_uri`, or whose metadata document
//! declares it. Used in broker mode, where the provider only knows the
//! operator's client and so cannot check the app's assertion.
//!
//! The rules: the assertion is a JWT signed by one of the client's keys
//! with an asymmetric algorithm (the one it registered, if it did); `iss`
//! and `sub` are the client id; `aud` names the gateway's token endpoint
//! or its issuer; it expires, within an hour; its `jti` is used once
//! (across instances, through the store). Keys at a `jwks_uri` are fetched
//! through the outbound guard and cached, read again at most once per
//! [`REFETCH_INTERVAL`] for an unknown `kid`.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::error::{Code, FrontError};
use super::jwks::{ASYMMETRIC, find_for, signing_keys};
use crate::clock::seconds;
use crate::domain::metadata::ClientKeys;
use crate::domain::{RegisteredClient, SecretHash};
use crate::outbound::GuardedClient;
use crate::store::front::AssertionReplays;

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The shortest time between two reads of one client's key set.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// How long a client's key set is used before it is read again anyway.
const KEYS_TTL: Duration = Duration::from_secs(300);

/// The longest lifetime an assertion may claim.
const MAX_LIFETIME_SECONDS: i64 = 3600;

/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: u64 = 60;

/// Most clients' key sets kept.
const MAX_KEY_SETS: u64 = 10_000;

/// The claims checked here besides those `jsonwebtoken` checks.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    jti: String,
    exp: i64,
}

/// A client's key set as last read, and when (Unix seconds).
type Read = (Arc<JwkSet>, i64);

/// Verifies client assertions.
pub struct ClientAssertions {
    fetcher: GuardedClient,
    key_sets: moka::future::Cache<String, Read>,
    replays: Arc<dyn AssertionReplays>,
    /// The audiences an assertion may name: the token endpoint, the issuer.
    audiences: [String; 2],
}

impl ClientAssertions {
    /// A verifier for the gateway at `issuer`, fetching keys through
    /// `fetcher` and recording used assertions in `replays`.
    #[must_use]
    pub fn new(issuer: &str, fetcher: GuardedClient, replays: Arc<dyn AssertionReplays>) -> Self {
        Self {
            fetcher,
            key_sets: moka::future::Cache::builder()
                .max_capacity(MAX_KEY_SETS)
                .build(),
            replays,
            audiences: [format!("{issuer}/token"), issuer.to_owned()],
        }
    }

    /// Checks that `assertion` authenticates `client`, known to the app as
    /// `client_id`, at `now`; `invalid_client` when it does not.
    pub async fn verify(
        &self,
        client_id: &str,
        client: &RegisteredClient,
        assertion: &str,
        now: i64,
    ) -> Result<(), FrontError> {
        let refused = |why: &str| {
            tracing::info!(client_id, why, "front: a client assertion was refused");
            FrontError::new(
                Code::InvalidClient,
                format!("client authentication failed: {why}"),
            )
        };
        let header = decode_header(assertion).map_err(|_| refused("the assertion is not a JWT"))?;
        let registered = client.metadata.token_endpoint_auth_signing_alg;
        let allowed = ASYMMETRIC.contains(&header.alg)
            && registered.is_none_or(|alg| alg.as_str() == format!("{:?}", header.alg));
        if !allowed {
            return Err(refused("its algorithm is not one the client may use"));
        }
        let keys = client
            .metadata
            .keys
            .as_ref()
            .ok_or_else(|| refused("the client has no keys"))?;
        let kid = header.kid.as_deref();
        let mut set = self.key_set(client_id, keys, false, now).await?;
        if find_for(&set, kid, header.alg).is_none() {
            set = self.key_set(client_id, keys, true, now).await?;
        }
        let jwk = find_for(&set, kid, header.alg)
            .ok_or_else(|| refused("no key of the client has its kid"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| refused("its key cannot be used"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&self.audiences);
        validation.set_issuer(&[client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let claims = decode::<Claims>(assertion, &key, &validation)
            .map_err(|e| refused(&format!("{:?}", e.kind())))?
            .claims;
        if claims.sub != client_id {
            return Err(refused("its sub is not the client"));
        }
        if claims.exp > now.saturating_add(MAX_LIFETIME_SECONDS) {
            return Err(refused("it is valid for more than an hour"));
        }
        let jti = SecretHash::of(&format!("{client_id}\n{}", claims.jti));
        let keep_until = claims
            .exp
            .saturating_add(seconds(Duration::from_secs(LEEWAY_SECONDS)));
        if !self.replays.first_use(&jti, keep_until).await? {
            return Err(refused("it was used before"));
        }
        Ok(())
    }

    /// Forgets the assertions used before `now` that could no longer be
    /// presented.
    pub async fn sweep(&self, now: i64) -> Result<(), FrontError> {
        Ok(self.replays.sweep_assertions(now).await?)
    }

    /// The client's keys: given by value, or read from its `jwks_uri` (the
    /// cached copy, unless `again` and it is older than
    /// [`REFETCH_INTERVAL`], or stale).
    async fn key_set(
        &self,
        client_id: &str,
        keys: &ClientKeys,
        again: bool,
        now: i64,
    ) -> Result<Arc<JwkSet>, FrontError> {
        let uri = match keys {
            ClientKeys::Set(set) => return Ok(Arc::new(signing_keys(set))),
            ClientKeys::Uri(uri) => uri.url(),
        };
        let key = format!("{client_id}\n{uri}");
        if let Some((set, at)) = self.key_sets.get(&key).await {
            let age = now.saturating_sub(at);
            if age < seconds(KEYS_TTL) && (!again || age < seconds(REFETCH_INTERVAL)) {
                return Ok(set);
            }
        }
        let set = Arc::new(self.fetch(uri).await?);
        self.key_sets.insert(key, (set.clone(), now)).await;
        Ok(set)
    }

    /// Reads the key set at `uri` through the outbound guard.
    async fn fetch(&self, uri: &Url) -> Result<JwkSet, FrontError> {
        let unreadable = |why: String| {
            tracing::warn!(%uri, why, "front: a client's jwks_uri cannot be read");
            FrontError::new(
                Code::InvalidClient,
                "client authentication failed: the client's jwks_uri cannot be read",
            )
        };
        let body = self
            .fetcher
            .get(uri)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let set: Value = serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))?;
        Ok(signing_keys(&set))
    }
}
