//! Prometheus metrics: one recorder per process, installed on first use, and
//! rendered by `GET /metrics`. The gateway records:
//!
//! - `dcr_http_requests_total{route,method,status}` and
//!   `dcr_http_request_duration_seconds{route,method}`;
//! - `dcr_provider_calls_total{provider,operation,outcome}` and
//!   `dcr_provider_call_duration_seconds{provider,operation}`;
//! - `dcr_cache_hits_total`, `dcr_cache_misses_total`;
//! - `dcr_rate_limited_total{limit}`;
//! - `dcr_connections_refused_total{reason}` (over the per-address cap) and
//!   `dcr_connections_closed_idle_total` (closed for idling or silence);
//! - `dcr_reconcile_drift{kind}` after each reconcile;
//! - `dcr_log_lines_dropped_total`: log lines the background writer
//!   dropped because its queue was full.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process); `None` if another recorder was
/// installed first, in which case `/metrics` is empty.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// The metrics in Prometheus text format.
#[must_use]
pub fn render() -> String {
    let Some(handle) = install() else {
        return String::new();
    };
    metrics::counter!("dcr_log_lines_dropped_total").absolute(crate::logging::dropped_lines());
    handle.render()
}
