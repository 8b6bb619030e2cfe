//! Checking the provider's ID tokens (OpenID Connect Core §3.1.3.7): the
//! signature by a key of the provider's JWKS (asymmetric algorithms only),
//! the issuer (Entra's multi-tenant `{tenantid}` filled in from the
//! token's `tid`, within the allowed tenants), the audience (the
//! operator's client), the expiry and the nonce.
//!
//! The key set is cached; a token signed by a key it does not hold makes
//! it read again, at most once per [`REFETCH_INTERVAL`], so rotated keys
//! are found and a flood of made-up `kid`s costs nothing.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

use super::super::error::{Code, FrontError};
use super::super::jwks::{ASYMMETRIC, find_for};
use crate::clock::seconds;

/// The shortest time between two reads of the key set.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// How long a key set is used before it is read again anyway.
const KEYS_TTL: Duration = Duration::from_secs(3600);

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECONDS: u64 = 60;

/// What an ID token must be.
#[derive(Debug)]
pub struct IdTokenCheck<'a> {
    /// The provider's issuer, maybe with `{tenantid}`.
    pub issuer: &'a str,
    /// Other spellings of a fixed issuer the provider uses.
    pub issuer_aliases: &'a [String],
    /// The operator's client id.
    pub audience: &'a str,
    /// The nonce sent with the sign-in (none on a refresh).
    pub nonce: Option<&'a str>,
    /// Tenants allowed when the issuer holds `{tenantid}` (empty: any).
    pub allowed_tenants: &'a [String],
    /// The time, Unix seconds.
    pub now: i64,
}

/// The claims checked here besides those `jsonwebtoken` checks.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    auth_time: Option<i64>,
    acr: Option<String>,
    nonce: Option<String>,
    tid: Option<String>,
}

/// Who an ID token says signed in, and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// `auth_time`, if the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// `acr`, if the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Every claim of the ID token, of which the gateway's own tokens copy
    /// those the operator lists (`[front] claims`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, Value>,
}

/// The provider's keys, as last read.
struct Read {
    keys: Arc<JwkSet>,
    /// When, Unix seconds (the gateway's clock).
    at: i64,
}

/// The provider's key set, cached.
pub struct KeySet {
    http: reqwest::Client,
    read: Mutex<Option<Read>>,
}

impl KeySet {
    /// A key set read through `http`.
    #[must_use]
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            read: Mutex::new(None),
        }
    }

    /// Whether the key set at `uri` can be read at `now` (reading it if it
    /// is not cached).
    pub async fn ready(&self, uri: &str, now: i64) -> Result<(), FrontError> {
        self.keys(uri, false, now).await.map(|_| ())
    }

    /// Checks `token` as `check` says; the user it names.
    pub async fn check(
        &self,
        uri: &str,
        token: &str,
        check: &IdTokenCheck<'_>,
    ) -> Result<Identity, FrontError> {
        let refused = |why: &str| {
            tracing::warn!(why, "broker: an ID token was refused");
            FrontError::new(
                Code::AccessDenied,
                format!("the identity provider's ID token was refused: {why}"),
            )
        };
        let header = decode_header(token).map_err(|_| refused("it is not a JWT"))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(refused("its algorithm is not an asymmetric one"));
        }
        let kid = header.kid.as_deref();
        let mut keys = self.keys(uri, false, check.now).await?;
        if find_for(&keys, kid, header.alg).is_none() {
            keys = self.keys(uri, true, check.now).await?;
        }
        let jwk = find_for(&keys, kid, header.alg)
            .ok_or_else(|| refused("no signing key of the provider has its kid"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| refused("its key cannot be used"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[check.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let all = decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| refused(&format!("{:?}", e.kind())))?
            .claims;
        let claims: Claims = serde_json::from_value(Value::Object(all.clone()))
            .map_err(|_| refused("its claims are malformed"))?;
        if !issuer_matches(check, &claims) {
            return Err(refused("it comes from another issuer or tenant"));
        }
        if let Some(nonce) = check.nonce {
            let sent = claims.nonce.as_deref().unwrap_or_default();
            if !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) {
                return Err(refused("its nonce is missing or not the sign-in's"));
            }
        }
        Ok(Identity {
            subject: claims.sub,
            auth_time: claims.auth_time,
            acr: claims.acr,
            claims: all,
        })
    }

    /// The key set at `uri` at `now`: the cached one, or read again when
    /// `again` (at most once per [`REFETCH_INTERVAL`]) or when it is stale.
    async fn keys(&self, uri: &str, again: bool, now: i64) -> Result<Arc<JwkSet>, FrontError> {
        let mut read = self.read.lock().await;
        if let Some(current) = read.as_ref() {
            let age = now.saturating_sub(current.at);
            if age < seconds(KEYS_TTL) && (!again || age < seconds(REFETCH_INTERVAL)) {
                return Ok(current.keys.clone());
            }
        }
        let set: Value = super::fetch_json(&self.http, uri, "the provider's key set").await?;
        let keys = crate::front::jwks::signing_keys(&set);
        let keys = Arc::new(keys);
        *read = Some(Read {
            keys: keys.clone(),
            at: now,
        });
        Ok(keys)
    }
}

/// Whether the token's `iss` is the provider's: equal, or, for an issuer
/// with `{tenantid}`, equal once the token's `tid` (an allowed one) is put
/// in its place.
fn issuer_matches(check: &IdTokenCheck<'_>, claims: &Claims) -> bool {
    let trim = |text: &str| text.trim_end_matches('/').to_owned();
    if !check.issuer.contains("{tenantid}") {
        let iss = trim(&claims.iss);
        return iss == trim(check.issuer) || check.issuer_aliases.contains(&iss);
    }
    let Some(tenant) = claims.tid.as_deref().filter(|t| !t.is_empty()) else {
        return false;
    };
    let allowed = check.allowed_tenants.is_empty()
        || check
            .allowed_tenants
            .iter()
            .any(|allowed| allowed == tenant);
    allowed && trim(&claims.iss) == trim(&check.issuer.replace("{tenantid}", tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iss: &str, tid: Option<&str>) -> Claims {
        Claims {
            iss: iss.into(),
            sub: "s".into(),
            auth_time: None,
            acr: None,
            nonce: None,
            tid: tid.map(str::to_owned),
        }
    }

    #[test]
    fn a_tenant_issuer_is_filled_in_from_tid_within_the_allowed_tenants() {
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        let allowed = vec!["t1".to_owned()];
        let check = IdTokenCheck {
            issuer: template,
            issuer_aliases: &[],
            audience: "a",
            nonce: None,
            allowed_tenants: &allowed,
            now: 0,
        };
        let own = "https://login.microsoftonline.com/t1/v2.0";
        assert!(issuer_matches(&check, &claims(own, Some("t1"))));
        assert!(
            !issuer_matches(&check, &claims(own, Some("t2"))),
            "tid and iss differ"
        );
        let other = "https://login.microsoftonline.com/t2/v2.0";
        assert!(
            !issuer_matches(&check, &claims(other, Some("t2"))),
            "not allowed"
        );
        assert!(!issuer_matches(&check, &claims(own, None)));
        let fixed = IdTokenCheck {
            issuer: "https://op.example/",
            ..check
        };
        assert!(issuer_matches(&fixed, &claims("https://op.example", None)));
        assert!(!issuer_matches(
            &fixed,
            &claims("https://other.example", None)
        ));
    }
}
