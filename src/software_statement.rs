//! Software statements (RFC 7591 §2.3): JWTs signed by a trusted issuer whose
//! claims vouch for the client. Verified with jsonwebtoken against the
//! issuer's keys, given in configuration or fetched from its `jwks_uri`
//! through the SSRF-guarded client and cached for a bounded time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use moka::future::Cache;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::config::{IssuerKeys, TrustedIssuer};
use crate::domain::RegistrationError;
use crate::outbound::GuardedClient;
use crate::registration::StatementVerifier;

/// How long fetched issuer keys are used before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(600);
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 60;

/// Verifies statements against the configured trusted issuers.
pub struct SoftwareStatements {
    issuers: Vec<TrustedIssuer>,
    fetcher: GuardedClient,
    fetched: Cache<String, Arc<JwkSet>>,
    clock: Arc<dyn Clock>,
}

impl SoftwareStatements {
    /// A verifier for `issuers`, fetching remote keys with `fetcher`;
    /// `clock` tells a statement issued in the future.
    #[must_use]
    pub fn new(issuers: Vec<TrustedIssuer>, fetcher: GuardedClient, clock: Arc<dyn Clock>) -> Self {
        Self {
            issuers,
            fetcher,
            clock,
            fetched: Cache::builder()
                .max_capacity(64)
                .time_to_live(KEYS_TTL)
                .build(),
        }
    }

    async fn keys(&self, issuer: &TrustedIssuer) -> Result<Arc<JwkSet>, RegistrationError> {
        match &issuer.keys {
            IssuerKeys::Set(set) => Ok(Arc::new(set.clone())),
            IssuerKeys::Uri(url) => self
                .fetched
                .try_get_with(url.to_string(), async {
                    let body = self.fetcher.get(url).await?;
                    serde_json::from_slice::<JwkSet>(&body)
                        .map(Arc::new)
                        .map_err(|e| crate::registration::FetchError(format!("not a JWK set: {e}")))
                })
                .await
                .map_err(|error| {
                    // The cause stays in the log: it describes the network.
                    tracing::warn!(issuer = %issuer.issuer, %url, %error, "issuer keys fetch failed");
                    RegistrationError::TemporarilyUnavailable {
                        reason: format!("the keys of `{}` cannot be fetched", issuer.issuer),
                        retry_after_secs: 30,
                    }
                }),
        }
    }
}

fn invalid(message: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidSoftwareStatement(message.into())
}

/// The claims, read without verification, only to find the issuer.
fn unverified_claims(statement: &str) -> Result<Map<String, Value>, RegistrationError> {
    let payload = statement
        .split('.')
        .nth(1)
        .ok_or_else(|| invalid("the software statement is not a JWS"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| invalid("the software statement's payload is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| invalid("the software statement's payload is not a JSON object"))
}

#[async_trait]
impl StatementVerifier for SoftwareStatements {
    async fn verify(&self, statement: &str) -> Result<Map<String, Value>, RegistrationError> {
        let header = jsonwebtoken::decode_header(statement)
            .map_err(|e| invalid(format!("the software statement is not a signed JWT: {e}")))?;
        let claims = unverified_claims(statement)?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the software statement has no `iss`"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or_else(|| {
                RegistrationError::UnapprovedSoftwareStatement(format!(
                    "`{iss}` is not a trusted software statement issuer"
                ))
            })?;
        if !issuer.allowed_algs.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} is not accepted from `{iss}`",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[iss]);
        validation.required_spec_claims = HashSet::new();
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;

        let keys = self.keys(issuer).await?;
        let candidates = keys
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.common.key_id == header.kid);
        let mut last_error = "no key of the issuer matches the statement".to_owned();
        for jwk in candidates {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match jsonwebtoken::decode::<Map<String, Value>>(statement, &key, &validation) {
                Ok(data) => {
                    let claims = data.claims;
                    let now = self.clock.now_unix();
                    let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
                    if claims
                        .get("iat")
                        .and_then(Value::as_i64)
                        .is_some_and(|iat| iat > now.saturating_add(leeway))
                    {
                        return Err(invalid(
                            "the software statement was issued in the future (`iat`)",
                        ));
                    }
                    if !issuer.software_ids.is_empty() {
                        let software_id = claims.get("software_id").and_then(Value::as_str);
                        if !software_id
                            .is_some_and(|id| issuer.software_ids.iter().any(|s| s == id))
                        {
                            return Err(RegistrationError::UnapprovedSoftwareStatement(format!(
                                "`{iss}` may not vouch for software {}",
                                software_id.unwrap_or("without a software_id")
                            )));
                        }
                    }
                    return Ok(claims);
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(invalid(format!(
            "the software statement does not verify: {last_error}"
        )))
    }
}
