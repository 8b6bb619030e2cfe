//! HTTP plumbing shared by the provider backends: one rustls client with
//! connect and total timeouts and the backend's credential, retries with
//! backoff for calls that may be repeated, the breaker in front of the
//! provider, the rule that reads a chain of attempts as one outcome, failure
//! classification into [`ProviderError`], and a bounded-lifetime cache of the
//! provider's discovery document.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use moka::future::Cache;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::breaker::{Breaker, BreakerSettings};
use super::{Credential, ProviderError};
use crate::error_text::{redact_secrets, with_causes};
use crate::http_body::read_capped;

/// Largest provider answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Seconds to suggest when a provider gives no `Retry-After`.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 5;
/// How long a fetched discovery document is served before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// The first wait before a retry; each further one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts, before jitter.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Provider calls one backend operation makes in sequence at most (a
/// create whose answer was lost: the create, a search, a new secret, a
/// delete of a duplicate), which bounds how long an operation may run.
const CALLS_PER_OPERATION: u32 = 4;

/// How a backend's calls are bounded, retried and shed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resilience {
    /// Bound on every attempt.
    pub timeout: Duration,
    /// Extra attempts for calls that may be repeated, after failures a
    /// retry can help with.
    pub retries: u32,
    /// When the breaker sheds calls.
    pub breaker: BreakerSettings,
}

impl Resilience {
    /// The longest one call can take: every attempt timing out, with the
    /// longest waits between them (jitter at most doubles a wait).
    #[must_use]
    pub fn longest_call(&self) -> Duration {
        let waits: Duration = (0..self.retries)
            .map(|n| (FIRST_BACKOFF * 2u32.saturating_pow(n)).min(MAX_BACKOFF) * 2)
            .sum();
        self.timeout * (self.retries + 1) + waits
    }

    /// The longest one provider operation (create, replace, delete, or the
    /// discard of a lost create) may run; the registration service cuts it
    /// off there and treats the outcome as unknown.
    #[must_use]
    pub fn operation_deadline(&self) -> Duration {
        self.longest_call() * CALLS_PER_OPERATION
    }
}

/// Whether a call may be sent again after a failure a retry can help with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Sent once: a repeat could do the work twice (a create where the
    /// provider picks the id).
    Never,
    /// Repeating it does no harm (reads, deletes, full replaces, creates
    /// under an id the gateway chose).
    Safe,
}

/// How the gateway proves itself to a provider, added to every call.
#[derive(Debug, Clone)]
pub enum ProviderAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Credential),
    /// `Authorization: Basic` with a user and a password.
    Basic {
        /// The user name.
        user: String,
        /// The password or API token.
        password: Credential,
    },
    /// Okta's `Authorization: SSWS <API token>`.
    Ssws(Credential),
}

impl ProviderAuth {
    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::Bearer(token) => request.bearer_auth(token.expose()),
            Self::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
            Self::Ssws(token) => request.header(
                reqwest::header::AUTHORIZATION,
                format!("SSWS {}", token.expose()),
            ),
        }
    }
}

/// The HTTP client of one provider backend.
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    resilience: Resilience,
    auth: Option<ProviderAuth>,
    breaker: Arc<Breaker>,
}

/// Why a provider backend could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the provider HTTP client: {0}")]
pub struct ProviderSetupError(pub String);

/// A provider's answer, read in full.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Bytes,
    /// Whether an earlier attempt of the same call may have taken effect
    /// (its answer was lost, or it met a server error): then a refusal in
    /// this answer does not mean that nothing was done.
    pub after_unsettled_attempt: bool,
}

/// How one attempt at a call failed, and so whether another can help.
#[derive(Debug)]
enum AttemptFailure {
    /// The breaker shed it: nothing was sent.
    Shed { retry_after_secs: u64 },
    /// No connection could be made: nothing reached the provider.
    NotDelivered(String),
    /// Sent, but no usable answer came (timeout, dropped connection, an
    /// unreadable body): it may have taken effect.
    Lost(String),
    /// The provider answered with a server error or a rate limit.
    Failed(Box<Answer>),
}

impl AttemptFailure {
    /// Whether a retry of a repeatable call can help.
    fn retry_helps(&self) -> bool {
        !matches!(self, Self::Shed { .. })
    }

    /// Whether the attempt may have taken effect at the provider.
    fn unsettled(&self) -> bool {
        match self {
            Self::Shed { .. } | Self::NotDelivered(_) => false,
            Self::Lost(_) => true,
            Self::Failed(answer) => may_have_acted(answer.status),
        }
    }
}

/// Whether a server that answered `status` may have done the work: every
/// 5xx except 503, which (like 429) says the request was not served.
#[must_use]
pub fn may_have_acted(status: StatusCode) -> bool {
    status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE
}

/// The outcome of a whole chain of attempts, by the rule that the call is
/// as uncertain as its least certain attempt: once any attempt may have
/// taken effect, only a success settles the call; any other ending is
/// [`ProviderError::Indeterminate`] (or an answer marked
/// [`Answer::after_unsettled_attempt`], for the backend to read).
fn chain_outcome(
    last: Result<Answer, AttemptFailure>,
    earlier_unsettled: bool,
) -> Result<Answer, ProviderError> {
    match last {
        Ok(answer) => Ok(Answer {
            after_unsettled_attempt: earlier_unsettled && !answer.status.is_success(),
            ..answer
        }),
        Err(AttemptFailure::Failed(answer)) => Ok(Answer {
            after_unsettled_attempt: earlier_unsettled,
            ..*answer
        }),
        Err(AttemptFailure::Lost(reason)) => Err(ProviderError::Indeterminate(reason)),
        Err(failure) if earlier_unsettled => Err(ProviderError::Indeterminate(format!(
            "an earlier attempt may have taken effect; the last one {}",
            failure.describe()
        ))),
        Err(AttemptFailure::Shed { retry_after_secs }) => Err(ProviderError::Unavailable {
            reason: "the provider is failing most calls; this one was not sent".into(),
            retry_after_secs,
        }),
        Err(AttemptFailure::NotDelivered(reason)) => Err(ProviderError::Unavailable {
            reason,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
        }),
    }
}

impl AttemptFailure {
    fn describe(&self) -> String {
        match self {
            Self::Shed { .. } => "was shed by the breaker".into(),
            Self::NotDelivered(reason) => format!("was not delivered: {reason}"),
            Self::Lost(reason) => format!("got no answer: {reason}"),
            Self::Failed(answer) => format!("got HTTP {}", answer.status),
        }
    }
}

impl ProviderHttp {
    /// A client whose calls follow `resilience` and carry `auth`.
    pub fn new(
        resilience: Resilience,
        auth: Option<ProviderAuth>,
    ) -> Result<Self, ProviderSetupError> {
        let client = reqwest::Client::builder()
            .timeout(resilience.timeout)
            .connect_timeout(resilience.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Only the provider is ever called: no proxy from the environment.
            .no_proxy()
            .user_agent(concat!("dcr-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderSetupError(e.to_string()))?;
        Ok(Self {
            client,
            resilience,
            auth,
            breaker: Arc::new(Breaker::new(resilience.breaker)),
        })
    }

    /// The underlying client, to build requests.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// How this client's calls are bounded.
    #[must_use]
    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }

    /// Sends a request with the backend's credential. A [`Repeat::Safe`]
    /// call is retried, with exponential backoff and jitter, after failures
    /// a retry can help with (no connection, a lost answer, a server error);
    /// the outcome of the chain follows [`chain_outcome`]'s rule.
    pub async fn call(
        &self,
        request: RequestBuilder,
        repeat: Repeat,
    ) -> Result<Answer, ProviderError> {
        let request = match &self.auth {
            Some(auth) => auth.apply(request),
            None => request,
        };
        let retries = match repeat {
            Repeat::Never => 0,
            Repeat::Safe => self.resilience.retries,
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(FIRST_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(retries as usize)
            .with_jitter();
        // Whether an attempt before the one running may have taken effect.
        let unsettled = AtomicBool::new(false);
        let last_unsettled = AtomicBool::new(false);
        let last = (|| async {
            if last_unsettled.swap(false, Ordering::Relaxed) {
                unsettled.store(true, Ordering::Relaxed);
            }
            let attempt = request.try_clone().ok_or_else(|| {
                AttemptFailure::NotDelivered("the request body cannot be sent twice".into())
            })?;
            let result = self.attempt(attempt).await;
            if let Err(failure) = &result {
                last_unsettled.store(failure.unsettled(), Ordering::Relaxed);
            }
            result
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(AttemptFailure::retry_helps)
        .notify(|failure, wait| {
            tracing::debug!(failure = %failure.describe(), ?wait, "retrying a provider call");
        })
        .await;
        chain_outcome(last, unsettled.load(Ordering::Relaxed))
    }

    /// One attempt: past the breaker, sent, and read in full. Server
    /// errors and rate limits come back as [`AttemptFailure::Failed`].
    async fn attempt(&self, request: RequestBuilder) -> Result<Answer, AttemptFailure> {
        self.breaker
            .admit(rand::random::<f64>())
            .map_err(|shed| AttemptFailure::Shed {
                retry_after_secs: shed.retry_after_secs,
            })?;
        let result = exchange(request).await;
        let failed = match &result {
            Ok(answer) => {
                answer.status.is_server_error() || answer.status == StatusCode::TOO_MANY_REQUESTS
            }
            Err(_) => true,
        };
        self.breaker.record(failed);
        match result {
            Ok(answer) if failed => Err(AttemptFailure::Failed(Box::new(answer))),
            other => other,
        }
    }
}

async fn exchange(request: RequestBuilder) -> Result<Answer, AttemptFailure> {
    let response = request.send().await.map_err(|e| {
        if e.is_connect() || e.is_builder() {
            AttemptFailure::NotDelivered(with_causes(&e))
        } else {
            AttemptFailure::Lost(with_causes(&e))
        }
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| AttemptFailure::Lost(e.to_string()))?;
    Ok(Answer {
        status,
        headers,
        body: body.into(),
        after_unsettled_attempt: false,
    })
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
        if self.after_unsettled_attempt {
            return ProviderError::Indeterminate(format!(
                "an earlier attempt may have taken effect; then HTTP {status}: {}",
                self.reason()
            ));
        }
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
            return ProviderError::Refused {
                status: status.as_u16(),
                detail: self.reason(),
            };
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
    /// shapes, or the start of the body, with anything that looks like a
    /// secret redacted: for the log, never for the app.
    #[must_use]
    pub fn reason(&self) -> String {
        redact_secrets(&self.raw_reason())
    }

    fn raw_reason(&self) -> String {
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
                    .call(http.client().get(self.url.clone()), Repeat::Safe)
                    .await?;
                if !answer.status.is_success() {
                    return Err(answer.failure());
                }
                answer.json::<Value>()
            })
            .await
            .map_err(|e: Arc<ProviderError>| match &*e {
                ProviderError::Rejected(m)
                | ProviderError::Refused { detail: m, .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            after_unsettled_attempt: false,
        }
    }

    fn failed(status: u16) -> Result<Answer, AttemptFailure> {
        Err(AttemptFailure::Failed(Box::new(answer(status))))
    }

    fn timeout() -> Result<Answer, AttemptFailure> {
        Err(AttemptFailure::Lost("operation timed out".into()))
    }

    fn dropped() -> Result<Answer, AttemptFailure> {
        Err(AttemptFailure::Lost(
            "connection closed before message completed".into(),
        ))
    }

    fn refused() -> Result<Answer, AttemptFailure> {
        Err(AttemptFailure::NotDelivered("connection refused".into()))
    }

    fn shed() -> Result<Answer, AttemptFailure> {
        Err(AttemptFailure::Shed {
            retry_after_secs: 30,
        })
    }

    /// The outcome of a chain of attempts, as `ProviderHttp::call` reads it:
    /// what each earlier attempt left unsettled, and the last one.
    fn chain(mut attempts: Vec<Result<Answer, AttemptFailure>>) -> Result<Answer, ProviderError> {
        let last = attempts.pop().unwrap();
        let earlier = attempts
            .iter()
            .any(|a| a.as_ref().err().is_some_and(AttemptFailure::unsettled));
        chain_outcome(last, earlier)
    }

    /// What a backend makes of the chain's end, when it has no reading of
    /// its own for the status.
    fn read(outcome: Result<Answer, ProviderError>) -> Result<StatusCode, ProviderError> {
        let answer = outcome?;
        if answer.status.is_success() {
            Ok(answer.status)
        } else {
            Err(answer.failure())
        }
    }

    #[test]
    fn a_chain_is_as_uncertain_as_its_least_certain_attempt() {
        assert!(matches!(
            read(chain(vec![timeout(), shed()])),
            Err(ProviderError::Indeterminate(_))
        ));
        assert!(matches!(
            read(chain(vec![dropped(), failed(500), Ok(answer(409))])),
            Err(ProviderError::Indeterminate(_))
        ));
        assert!(matches!(
            read(chain(vec![timeout(), refused()])),
            Err(ProviderError::Indeterminate(_))
        ));
        assert!(matches!(
            read(chain(vec![failed(502), Ok(answer(400))])),
            Err(ProviderError::Indeterminate(_))
        ));
        assert!(matches!(
            read(chain(vec![timeout()])),
            Err(ProviderError::Indeterminate(_))
        ));
    }

    #[test]
    fn a_success_settles_the_chain() {
        assert_eq!(
            read(chain(vec![failed(500), Ok(answer(201))])).unwrap(),
            StatusCode::CREATED
        );
        assert_eq!(
            read(chain(vec![dropped(), timeout(), Ok(answer(200))])).unwrap(),
            StatusCode::OK
        );
    }

    #[test]
    fn attempts_that_did_nothing_leave_nothing_uncertain() {
        assert!(matches!(
            read(chain(vec![refused(), refused()])),
            Err(ProviderError::Unavailable { .. })
        ));
        assert!(matches!(
            read(chain(vec![failed(503), failed(429), shed()])),
            Err(ProviderError::Unavailable { .. })
        ));
        assert!(matches!(
            read(chain(vec![failed(503), Ok(answer(400))])),
            Err(ProviderError::Refused { status: 400, .. })
        ));
        assert!(matches!(
            read(chain(vec![Ok(answer(404))])),
            Err(ProviderError::Refused { status: 404, .. })
        ));
    }

    #[test]
    fn only_failures_a_retry_can_help_are_retried() {
        assert!(timeout().unwrap_err().retry_helps());
        assert!(refused().unwrap_err().retry_helps());
        assert!(failed(500).unwrap_err().retry_helps());
        assert!(!shed().unwrap_err().retry_helps());
    }

    #[test]
    fn the_longest_call_counts_every_attempt_and_wait() {
        let resilience = Resilience {
            timeout: Duration::from_secs(10),
            retries: 2,
            breaker: BreakerSettings::DEFAULT,
        };
        // 3 attempts of 10 s, waits of at most 2 × 100 ms and 2 × 200 ms.
        assert_eq!(resilience.longest_call(), Duration::from_millis(30_600));
        assert_eq!(
            resilience.operation_deadline(),
            Duration::from_millis(122_400)
        );
    }
}
