//! One attempt at a provider call and what it can end in, and the rule
//! that reads a chain of attempts (a call and its retries) as one outcome.

use reqwest::RequestBuilder;

use super::{Answer, DEFAULT_RETRY_AFTER_SECS, may_have_acted};
use crate::error_text::with_causes;
use crate::outbound::read_capped;
use crate::provider::ProviderError;

/// Largest provider answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// How one attempt at a call failed, and so whether another can help.
#[derive(Debug)]
pub(super) enum AttemptFailure {
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
    pub(super) fn retry_helps(&self) -> bool {
        !matches!(self, Self::Shed { .. })
    }

    /// Whether the attempt may have taken effect at the provider.
    pub(super) fn unsettled(&self) -> bool {
        match self {
            Self::Shed { .. } | Self::NotDelivered(_) => false,
            Self::Lost(_) => true,
            Self::Failed(answer) => may_have_acted(answer.status),
        }
    }
}

/// The outcome of a whole chain of attempts, by the rule that the call is
/// as uncertain as its least certain attempt: once any attempt may have
/// taken effect, only a success settles the call; any other ending is
/// [`ProviderError::Indeterminate`] (or an answer marked
/// [`Answer::after_unsettled_attempt`], for the backend to read).
pub(super) fn chain_outcome(
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
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Shed { .. } => "was shed by the breaker".into(),
            Self::NotDelivered(reason) => format!("was not delivered: {reason}"),
            Self::Lost(reason) => format!("got no answer: {reason}"),
            Self::Failed(answer) => format!("got HTTP {}", answer.status),
        }
    }
}

/// Sends one attempt and reads its answer in full.
pub(super) async fn exchange(request: RequestBuilder) -> Result<Answer, AttemptFailure> {
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

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
}
