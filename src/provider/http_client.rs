//! HTTP plumbing shared by the provider backends: one rustls client with
//! connect and total timeouts, failure classification into [`ProviderError`],
//! and a bounded-lifetime cache of the provider's discovery document.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::error_text::with_causes;
use crate::http_body::read_capped;
use axum::body::Bytes;
use moka::future::Cache;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::ProviderError;

/// Largest provider answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Seconds to suggest when a provider gives no `Retry-After`.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 5;
/// How long a fetched discovery document is served before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// How a backend's calls are bounded, retried and cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resilience {
    /// Bound on every call.
    pub timeout: Duration,
    /// Extra attempts for idempotent calls that failed for want of an answer.
    pub retries: u32,
    /// Consecutive failures that open the circuit.
    pub circuit_failures: u32,
    /// How long an open circuit answers at once before it tries again.
    pub circuit_cooldown: Duration,
}

/// The HTTP client of one provider backend.
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    resilience: Resilience,
    breaker: Arc<Mutex<Breaker>>,
}

/// Circuit breaker state: closed (counting failures) or open until a time.
#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// Why a provider backend could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the provider HTTP client: {0}")]
pub struct ProviderSetupError(String);

/// A provider's answer, read in full.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Bytes,
}

impl ProviderHttp {
    /// A client whose calls follow `resilience`.
    pub fn new(resilience: Resilience) -> Result<Self, ProviderSetupError> {
        let client = reqwest::Client::builder()
            .timeout(resilience.timeout)
            .connect_timeout(resilience.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dcr-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderSetupError(e.to_string()))?;
        Ok(Self {
            client,
            resilience,
            breaker: Arc::new(Mutex::new(Breaker::default())),
        })
    }

    /// The underlying client, to build requests.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request: retried as [`ProviderHttp::send_idempotent`] when
    /// `idempotent`, else once as [`ProviderHttp::send`].
    pub async fn call(
        &self,
        request: RequestBuilder,
        idempotent: bool,
    ) -> Result<Answer, ProviderError> {
        if idempotent {
            self.send_idempotent(request).await
        } else {
            self.send(request).await
        }
    }

    /// Sends an idempotent request, retrying (with exponential backoff and
    /// jitter) when no usable answer came: connection failures, timeouts,
    /// server errors. Never past an open circuit.
    pub async fn send_idempotent(&self, request: RequestBuilder) -> Result<Answer, ProviderError> {
        let mut attempt = 0;
        let mut next = request;
        loop {
            // A spare copy for the next attempt (bodies here are buffered JSON).
            let spare = (attempt < self.resilience.retries)
                .then(|| next.try_clone())
                .flatten();
            let result = self.send(next).await;
            let retryable = match &result {
                Ok(answer) => answer.status.is_server_error(),
                Err(ProviderError::Indeterminate(_)) => true,
                Err(ProviderError::Unavailable { reason, .. }) => !reason.starts_with(CIRCUIT_OPEN),
                Err(ProviderError::Rejected(_) | ProviderError::NotFound(_)) => false,
            };
            match spare {
                Some(again) if retryable => {
                    attempt += 1;
                    let backoff = 100u64 << attempt.min(6);
                    let jitter = rand::rng().random_range(0..100);
                    tokio::time::sleep(Duration::from_millis(backoff + jitter)).await;
                    next = again;
                }
                _ => return result,
            }
        }
    }

    /// Sends a request once and reads the whole answer. A request that could
    /// not be delivered is [`ProviderError::Unavailable`]; one whose answer
    /// was lost is [`ProviderError::Indeterminate`]. While the circuit is
    /// open, nothing is sent and the answer is `Unavailable` at once.
    pub async fn send(&self, request: RequestBuilder) -> Result<Answer, ProviderError> {
        self.admit()?;
        let result = self.exchange(request).await;
        let failed = match &result {
            Ok(answer) => {
                answer.status.is_server_error() || answer.status == StatusCode::TOO_MANY_REQUESTS
            }
            Err(_) => true,
        };
        self.record(failed);
        result
    }

    fn admit(&self) -> Result<(), ProviderError> {
        let mut breaker = self
            .breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match breaker.open_until {
            Some(until) if Instant::now() < until => Err(ProviderError::Unavailable {
                reason: format!(
                    "{CIRCUIT_OPEN}: the provider failed {} times in a row",
                    self.resilience.circuit_failures
                ),
                retry_after_secs: until
                    .saturating_duration_since(Instant::now())
                    .as_secs()
                    .max(1),
            }),
            Some(_) => {
                // Half open: let this call through as the trial.
                breaker.open_until = None;
                breaker.failures = self.resilience.circuit_failures.saturating_sub(1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record(&self, failed: bool) {
        let mut breaker = self
            .breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !failed {
            *breaker = Breaker::default();
            return;
        }
        breaker.failures += 1;
        if breaker.failures >= self.resilience.circuit_failures {
            breaker.open_until = Some(Instant::now() + self.resilience.circuit_cooldown);
            tracing::warn!(failures = breaker.failures, "provider circuit opened");
        }
    }

    async fn exchange(&self, request: RequestBuilder) -> Result<Answer, ProviderError> {
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                ProviderError::Unavailable {
                    reason: with_causes(&e),
                    retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
                }
            } else {
                ProviderError::Indeterminate(with_causes(&e))
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| ProviderError::Indeterminate(e.to_string()))?;
        Ok(Answer {
            status,
            headers,
            body: body.into(),
        })
    }
}

impl Answer {
    /// Parses a JSON body. An unreadable answer to a request that may have
    /// taken effect is [`ProviderError::Indeterminate`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::Indeterminate(format!("unreadable answer (HTTP {}): {e}", self.status))
        })
    }

    /// Classifies a non-success answer: 429 and 503 say nothing was done and
    /// when to retry; 401 and 403 refuse the gateway's own credential, which
    /// no change by the app can mend, so they are an outage for the operator;
    /// other 4xx refuse the request (with the provider's reason); other 5xx
    /// leave the outcome unknown. Backends read the 401 or 404 that means
    /// "unknown client" before calling this.
    #[must_use]
    pub fn failure(&self) -> ProviderError {
        let status = self.status;
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            return ProviderError::Unavailable {
                reason: format!("HTTP {status}: {}", self.reason()),
                retry_after_secs: retry_after(&self.headers),
            };
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let reason = self.reason();
            tracing::error!(%status, %reason, "the provider refused the gateway's credential");
            return ProviderError::Unavailable {
                reason: format!("the provider refused the gateway's credential (HTTP {status})"),
                retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            };
        }
        if status.is_client_error() {
            return ProviderError::Rejected(self.reason());
        }
        ProviderError::Indeterminate(format!("HTTP {status}: {}", self.reason()))
    }

    /// Classifies a non-success answer to a call on one named client: a 404
    /// says the provider no longer holds it; the rest as [`Answer::failure`].
    #[must_use]
    pub fn client_failure(&self) -> ProviderError {
        if self.status == StatusCode::NOT_FOUND {
            ProviderError::NotFound(self.reason())
        } else {
            self.failure()
        }
    }

    /// The provider's own words for an error, from the common JSON error
    /// shapes, or the start of the body.
    #[must_use]
    pub fn reason(&self) -> String {
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&self.body) {
            let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
            let mut parts: Vec<String> = [
                "error_description",
                "error_hint",
                "errorMessage",
                "errorSummary",
                "description",
                "message",
            ]
            .iter()
            .filter_map(|k| text(k))
            .collect();
            // Okta's causes and Zendesk's per-field details say which member failed.
            let causes = body.get("errorCauses").and_then(Value::as_array);
            parts.extend(causes.into_iter().flatten().filter_map(|c| {
                c.get("errorSummary")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }));
            if let Some(Value::Object(details)) = body.get("details") {
                parts.extend(details.iter().map(|(field, v)| format!("{field}: {v}")));
            }
            if !parts.is_empty() {
                return parts.join(" ");
            }
            if let Some(error) = text("error") {
                return error;
            }
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            text.chars().take(200).collect()
        }
    }
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|link| link.contains("rel=\"next\""))
        .and_then(|link| {
            let start = link.find('<')? + 1;
            let end = link.find('>')?;
            link.get(start..end).map(str::to_owned)
        })
}

/// How an open circuit's refusals begin, so that they are not retried.
const CIRCUIT_OPEN: &str = "circuit open";

/// Seconds from a `Retry-After` header (delta-seconds form).
fn retry_after(headers: &HeaderMap) -> u64 {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_RETRY_AFTER_SECS)
}

/// A provider's discovery document, fetched on demand and kept for a while.
#[derive(Debug, Clone)]
pub struct DiscoveryCache {
    url: Url,
    cache: Cache<(), Value>,
}

impl DiscoveryCache {
    /// Caches `{issuer}/.well-known/openid-configuration`.
    pub fn new(issuer: &Url) -> Result<Self, ProviderSetupError> {
        let base = issuer.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .map_err(|e| ProviderSetupError(format!("issuer `{issuer}`: {e}")))?;
        Ok(Self {
            url,
            cache: Cache::builder()
                .max_capacity(1)
                .time_to_live(DISCOVERY_TTL)
                .build(),
        })
    }

    /// The document, from the cache or freshly fetched.
    pub async fn get(&self, http: &ProviderHttp) -> Result<Value, ProviderError> {
        self.cache
            .try_get_with((), async {
                let answer = http
                    .send_idempotent(http.client().get(self.url.clone()))
                    .await?;
                if !answer.status.is_success() {
                    return Err(answer.failure());
                }
                answer.json::<Value>()
            })
            .await
            .map_err(|e: Arc<ProviderError>| match &*e {
                ProviderError::Rejected(m)
                | ProviderError::Indeterminate(m)
                | ProviderError::NotFound(m) => ProviderError::Unavailable {
                    reason: format!("discovery document: {m}"),
                    retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
                },
                ProviderError::Unavailable {
                    reason,
                    retry_after_secs,
                } => ProviderError::Unavailable {
                    reason: reason.clone(),
                    retry_after_secs: *retry_after_secs,
                },
            })
    }
}
