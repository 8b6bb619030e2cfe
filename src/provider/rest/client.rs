//! The HTTP client of one provider backend: connect and total timeouts,
//! the backend's credential on every call, retries with backoff for calls
//! that may be repeated, and the breaker in front of the provider.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{RequestBuilder, StatusCode};

use super::attempts::{AttemptFailure, chain_outcome, exchange};
use super::{Answer, ProviderSetupError};
use crate::provider::breaker::{Breaker, BreakerSettings};
use crate::provider::{Credential, ProviderError};

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

impl ProviderHttp {
    /// A client of the provider named `provider` (its label in metrics)
    /// whose calls follow `resilience` and carry `auth`.
    pub fn new(
        provider: &'static str,
        resilience: Resilience,
        auth: Option<ProviderAuth>,
    ) -> Result<Self, ProviderSetupError> {
        let client = crate::outbound::client_builder(resilience.timeout)
            .build()
            .map_err(|e| ProviderSetupError(e.to_string()))?;
        Ok(Self {
            client,
            resilience,
            auth,
            breaker: Arc::new(Breaker::new(resilience.breaker, provider)),
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
    /// the outcome of the chain follows the rule of `chain_outcome`.
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
        self.breaker.admit().map_err(|shed| AttemptFailure::Shed {
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

#[cfg(test)]
mod tests {
    use super::*;

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
