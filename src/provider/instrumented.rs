//! The `dcr_provider_*` metrics: the latency and outcome of every provider
//! call, recorded around the call's future rather than by a wrapper
//! provider, so that no [`super::Provider`] method is forwarded for them.
//! When spans are exported, each call is also a span of its own
//! ([`crate::logging::traces::provider_call`]).

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;

use super::ProviderError;
use crate::logging::traces;

/// Runs `call`, the operation `operation` of the provider named `provider`,
/// and records its outcome and latency. A call dropped before it ends (cut
/// off at its deadline) records nothing, and its span has no outcome.
pub async fn measured<T>(
    provider: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let started = Instant::now();
    let span = traces::provider_call(provider, operation);
    let result = call.instrument(span.clone()).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ProviderError::Rejected(_)) => "rejected",
        Err(ProviderError::Refused { .. }) => "refused",
        Err(ProviderError::Unavailable { .. }) => "unavailable",
        Err(ProviderError::Indeterminate(_)) => "indeterminate",
        Err(ProviderError::NotFound(_)) => "not_found",
    };
    let failed = matches!(
        result,
        Err(ProviderError::Unavailable { .. } | ProviderError::Indeterminate(_))
    );
    traces::provider_call_ended(&span, outcome, failed);
    metrics::counter!("dcr_provider_calls_total", "provider" => provider, "operation" => operation, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("dcr_provider_call_duration_seconds", "provider" => provider, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    result
}
