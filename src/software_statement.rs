//! Software statements (RFC 7591 §2.3): JWTs signed by a trusted issuer whose
//! claims vouch for the client. Verified with jsonwebtoken against the
//! issuer's keys, given in configuration or fetched from its `jwks_uri`
//! through the SSRF-guarded client and cached for a bounded time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moka::future::Cache;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::clock::Clock;
use crate::domain::RegistrationError;
use crate::jwt::Unreadable;
use crate::outbound::{GuardedClient, names_private_host};
use crate::registration::StatementVerifier;
use crate::settings::Report;

/// `[software_statement]`.
#[derive(Debug, Clone, Default)]
pub struct SoftwareStatementSettings {
    /// Every registration must carry a statement.
    pub required: bool,
    /// Issuers whose statements are trusted.
    pub issuers: Vec<TrustedIssuer>,
}

/// One `[[software_statement.issuers]]`.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The `iss` claim.
    pub issuer: String,
    /// Where its verification keys are.
    pub keys: IssuerKeys,
    /// Signature algorithms accepted from it.
    pub allowed_algs: Vec<Algorithm>,
    /// `software_id`s it may vouch for; empty allows any.
    pub software_ids: Vec<String>,
}

/// Where a trusted issuer's keys come from.
#[derive(Debug, Clone)]
pub enum IssuerKeys {
    /// Fetched (and cached) from a JWKS URL.
    Uri(Url),
    /// Given in the configuration.
    Set(JwkSet),
}

/// `[software_statement]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawSoftwareStatement {
    required: bool,
    issuers: Vec<RawIssuer>,
}

/// One `[[software_statement.issuers]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawIssuer {
    issuer: String,
    jwks_uri: Option<String>,
    jwks: Option<String>,
    allowed_algs: Vec<String>,
    software_ids: Vec<String>,
}

/// Asymmetric algorithms accepted for software statements: never `none`,
/// never an HMAC (which a public key would turn into a forgery).
const STATEMENT_ALGS: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

impl SoftwareStatementSettings {
    /// Reads `[software_statement]`, reporting every problem.
    /// `allow_private_networks` is `outbound.allow_private_networks`:
    /// without it, a `jwks_uri` on a private host could never be fetched.
    pub fn read(keys: toml::Table, allow_private_networks: bool, report: &mut Report) -> Self {
        let raw: RawSoftwareStatement = report.section("software_statement", keys);
        let issuers: Vec<TrustedIssuer> = raw
            .issuers
            .into_iter()
            .enumerate()
            .filter_map(|(i, raw)| raw.validate(i, allow_private_networks, report))
            .collect();
        if raw.required && issuers.is_empty() {
            report.error("software_statement.required needs at least one trusted issuer");
        }
        Self {
            required: raw.required,
            issuers,
        }
    }
}

impl RawIssuer {
    fn validate(
        self,
        index: usize,
        allow_private_networks: bool,
        report: &mut Report,
    ) -> Option<TrustedIssuer> {
        let key = |k: &str| format!("software_statement.issuers[{index}].{k}");
        if self.issuer.is_empty() {
            report.error(format!("{} is required", key("issuer")));
        }
        let keys = match (self.jwks_uri, self.jwks) {
            (Some(uri), None) => jwks_uri(&uri, &key("jwks_uri"), allow_private_networks, report),
            (None, Some(text)) => match serde_json::from_str(&text) {
                Ok(set) => Some(IssuerKeys::Set(set)),
                Err(e) => {
                    report.error(format!("{} is not a JWK set: {e}", key("jwks")));
                    None
                }
            },
            _ => {
                report.error(format!(
                    "{}: exactly one of jwks_uri and jwks is required",
                    key("issuer")
                ));
                None
            }
        };
        let allowed_algs = allowed_algs(&self.allowed_algs, &key("allowed_algs"), report);
        Some(TrustedIssuer {
            issuer: self.issuer,
            keys: keys?,
            allowed_algs,
            software_ids: self.software_ids,
        })
    }
}

fn jwks_uri(
    uri: &str,
    key: &str,
    allow_private_networks: bool,
    report: &mut Report,
) -> Option<IssuerKeys> {
    match Url::parse(uri) {
        Ok(url) if !allow_private_networks && names_private_host(&url) => {
            report.error(format!(
                "{key} `{uri}` is on a private or loopback address, which the outbound \
                 client refuses (set outbound.allow_private_networks = true to allow it)"
            ));
            None
        }
        Ok(url) if url.scheme() == "https" || url.scheme() == "http" => Some(IssuerKeys::Uri(url)),
        _ => {
            report.error(format!("{key} `{uri}` must be an http(s) URL"));
            None
        }
    }
}

fn allowed_algs(names: &[String], key: &str, report: &mut Report) -> Vec<Algorithm> {
    let mut algs = Vec::new();
    for alg in names {
        match STATEMENT_ALGS.iter().find(|(name, _)| name == alg) {
            Some((_, algorithm)) => algs.push(*algorithm),
            None => report.error(format!(
                "{key} `{alg}` is not allowed (asymmetric only: {})",
                STATEMENT_ALGS.map(|(n, _)| n).join(", ")
            )),
        }
    }
    if names.is_empty() {
        report.error(format!("{key} must name at least one algorithm"));
    }
    algs
}

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
                        .map_err(|e| crate::outbound::FetchError(format!("not a JWK set: {e}")))
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
    crate::jwt::unverified_claims(statement).map_err(|why| {
        invalid(match why {
            Unreadable::NotJws => "the software statement is not a JWS",
            Unreadable::NotBase64 => "the software statement's payload is not base64url",
            Unreadable::NotObject => "the software statement's payload is not a JSON object",
        })
    })
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
