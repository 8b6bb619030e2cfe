//! Okta's rate budget for the clients API, as its answers announce it.

use std::sync::Mutex;

use reqwest::header::HeaderMap;

use crate::provider::ProviderError;
use crate::provider::rest::DEFAULT_RETRY_AFTER_SECS;

/// Okta's announced budget for the clients API: what remains and when it
/// refills (epoch seconds), as of the latest answer.
#[derive(Debug, Default)]
pub(super) struct RateBudget(Mutex<Option<(u64, i64)>>);

impl RateBudget {
    /// What remains and when it refills, as last announced.
    fn latest(&self) -> Option<(u64, i64)> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses a call while the budget is spent and not yet refilled.
    pub(super) fn admit(&self, now: i64) -> Result<(), ProviderError> {
        match self.latest() {
            Some((0, reset)) if now < reset => Err(ProviderError::Unavailable {
                reason: "Okta's rate limit for the clients API is spent".into(),
                retry_after_secs: u64::try_from(reset - now).unwrap_or(1).max(1),
            }),
            _ => Ok(()),
        }
    }

    /// Learns the budget from `X-Rate-Limit-Remaining` and `-Reset`.
    pub(super) fn observe(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        if let (Some(remaining), Some(reset)) = (
            number("x-rate-limit-remaining"),
            number("x-rate-limit-reset"),
        ) {
            *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((u64::try_from(remaining).unwrap_or(0), reset));
        }
    }

    /// Seconds until the budget refills (at least one).
    pub(super) fn seconds_to_reset(&self, now: i64) -> u64 {
        self.latest()
            .and_then(|(_, reset)| u64::try_from(reset - now).ok())
            .unwrap_or(DEFAULT_RETRY_AFTER_SECS)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(remaining: &str, reset: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit-remaining", remaining.parse().unwrap());
        headers.insert("x-rate-limit-reset", reset.parse().unwrap());
        headers
    }

    #[test]
    fn a_spent_budget_refuses_until_its_reset() {
        let budget = RateBudget::default();
        budget.observe(&headers("0", "1000"));
        match budget.admit(990) {
            Err(ProviderError::Unavailable {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 10),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(budget.admit(1000).is_ok());
        budget.observe(&headers("3", "2000"));
        assert!(budget.admit(1500).is_ok());
    }
}
