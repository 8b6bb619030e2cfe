//! A provider's answer, read in full, and what it means: success, a
//! refusal of the request, a refusal of the gateway's credential, an outage
//! with a time to retry after, or an outcome left unknown.

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error_text::redact_secrets;
use crate::provider::ProviderError;

/// Seconds to suggest when a provider gives no `Retry-After`.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

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

/// Whether a server that answered `status` may have done the work: every
/// 5xx except 503, which (like 429) says the request was not served.
#[must_use]
pub fn may_have_acted(status: StatusCode) -> bool {
    status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE
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
