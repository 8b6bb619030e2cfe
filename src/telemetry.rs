//! Prometheus metrics: one recorder per process, installed on first use, and
//! rendered by `GET /metrics`. The gateway records:
//!
//! - `dcr_http_requests_total{route,method,status}` and
//!   `dcr_http_request_duration_seconds{route,method}`;
//! - `dcr_provider_calls_total{provider,operation,outcome}` and
//!   `dcr_provider_call_duration_seconds{provider,operation}`;
//! - `dcr_provider_breaker_shed_share{provider}`: the share of calls to
//!   the provider's API its circuit breaker sheds (0 when it sheds none);
//! - `dcr_cache_hits_total`, `dcr_cache_misses_total`,
//!   `dcr_reads_from_memory_total`;
//! - `dcr_rate_limited_total{limit}`;
//! - `dcr_connections_refused_total{reason}` (over the per-address cap),
//!   `dcr_connections_closed_total{reason}` (closed to make room) and
//!   `dcr_connections_closed_idle_total` (closed for idling or silence);
//! - `dcr_front_upstream_logins_total{outcome}`,
//!   `dcr_front_consents_total{decision}`,
//!   `dcr_front_refresh_rotations_total`, `dcr_front_refresh_reuse_total`
//!   and `dcr_front_signing_key_rotations_total{reason}`;
//! - `dcr_reconcile_drift{kind}` after each reconcile;
//! - `dcr_log_lines_dropped_total`: log lines the background writer
//!   dropped because its queue was full.
//!
//! Every metric is described when the recorder is installed, and every
//! series whose labels are known before any traffic (`KNOWN_SERIES`) is
//! registered at zero then, so that a dashboard shows 0 rather than no
//! data. Series labelled by route, status or provider operation appear with
//! the first request or call, and `dcr_reconcile_drift` with the first
//! reconcile (a 0 before it would claim there is no drift).

use std::sync::OnceLock;

use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The counters, with their help text.
const COUNTERS: [(&str, &str); 15] = [
    (
        "dcr_http_requests_total",
        "Requests answered, by route pattern, method and status.",
    ),
    (
        "dcr_provider_calls_total",
        "Provider operations, by provider, operation and outcome.",
    ),
    (
        "dcr_cache_hits_total",
        "Client reads the client cache answered.",
    ),
    (
        "dcr_cache_misses_total",
        "Client reads that missed the client cache.",
    ),
    (
        "dcr_reads_from_memory_total",
        "RFC 7592 reads answered from the answers held at the HTTP edge.",
    ),
    (
        "dcr_rate_limited_total",
        "Requests refused by a rate limit, by limit.",
    ),
    (
        "dcr_connections_refused_total",
        "Connections refused, by reason (per_ip: over the per-address cap).",
    ),
    (
        "dcr_connections_closed_total",
        "Waiting connections closed, by reason (room: to make room for another).",
    ),
    (
        "dcr_connections_closed_idle_total",
        "Connections closed for idling or silence.",
    ),
    (
        "dcr_front_upstream_logins_total",
        "Logins at the provider completed at /callback, by outcome.",
    ),
    (
        "dcr_front_consents_total",
        "Decisions taken on the gateway's consent page.",
    ),
    (
        "dcr_front_refresh_rotations_total",
        "Refresh tokens of the gateway's rotated.",
    ),
    (
        "dcr_front_refresh_reuse_total",
        "Used refresh tokens presented again (each revokes its family).",
    ),
    (
        "dcr_front_signing_key_rotations_total",
        "Signing keys added by a rotation, by reason.",
    ),
    (
        "dcr_log_lines_dropped_total",
        "Log lines dropped because the log writer's queue was full.",
    ),
];

/// The histograms (in seconds), with their help text.
const HISTOGRAMS: [(&str, &str); 2] = [
    (
        "dcr_http_request_duration_seconds",
        "Time to answer a request, by route pattern and method.",
    ),
    (
        "dcr_provider_call_duration_seconds",
        "Time a provider operation took, by provider and operation.",
    ),
];

/// The gauges, with their help text.
const GAUGES: [(&str, &str); 2] = [
    (
        "dcr_provider_breaker_shed_share",
        "Share of calls to the provider's API the circuit breaker sheds (0 to 1).",
    ),
    (
        "dcr_reconcile_drift",
        "Clients out of step with the provider at the last reconcile, by kind.",
    ),
];

/// The counters whose label values are all known before any traffic: each
/// (name, label, values) is registered at zero on start. The values are the
/// ones the counting sites pass.
const KNOWN_SERIES: [(&str, &str, &[&str]); 6] = [
    (
        "dcr_rate_limited_total",
        "limit",
        &["register", "auth_failures", "manage", "authorize", "token"],
    ),
    ("dcr_connections_refused_total", "reason", &["per_ip"]),
    ("dcr_connections_closed_total", "reason", &["room"]),
    (
        "dcr_front_upstream_logins_total",
        "outcome",
        &["success", "failure"],
    ),
    (
        "dcr_front_consents_total",
        "decision",
        &["consent_given", "consent_refused"],
    ),
    (
        "dcr_front_signing_key_rotations_total",
        "reason",
        &["operator", "algorithm", "schedule"],
    ),
];

/// The counters without labels, registered at zero on start.
const UNLABELLED_COUNTERS: [&str; 7] = [
    "dcr_cache_hits_total",
    "dcr_cache_misses_total",
    "dcr_reads_from_memory_total",
    "dcr_connections_closed_idle_total",
    "dcr_front_refresh_rotations_total",
    "dcr_front_refresh_reuse_total",
    "dcr_log_lines_dropped_total",
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process), describes every metric and
/// registers the series known up front; `None` if another recorder was
/// installed first, in which case `/metrics` is empty.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            register_known_series();
            Some(handle)
        })
        .as_ref()
}

/// Gives every metric its `# HELP` and `# TYPE` lines.
fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(name, Unit::Count, help);
    }
    for (name, help) in HISTOGRAMS {
        metrics::describe_histogram!(name, Unit::Seconds, help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(name, help);
    }
}

/// Registers, at zero, every series whose labels are known before any
/// traffic. Incrementing by zero creates a series without changing one.
fn register_known_series() {
    for name in UNLABELLED_COUNTERS {
        metrics::counter!(name).increment(0);
    }
    for (name, label, values) in KNOWN_SERIES {
        for value in values {
            metrics::counter!(name, label => *value).increment(0);
        }
    }
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

/// One sample of the metrics as `/metrics` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' name (`dcr_provider_calls_total`, `…_bucket`).
    pub name: String,
    /// Its labels, as written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if it has it.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The samples of the series whose names begin with `prefix`, read from
/// what [`render`] gives: the console shows the same numbers as `/metrics`.
#[must_use]
pub fn samples(prefix: &str) -> Vec<Sample> {
    render()
        .lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(parse_sample)
        .collect()
}

/// A line of the Prometheus text format: `name{a="x",b="y"} value`.
fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y"`, with `\"`, `\\` and `\n` escapes in the values.
fn parse_labels(mut text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (at, '"') => break at,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        text = rest[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_line_is_read_with_its_escaped_labels() {
        let sample = parse_sample(r#"dcr_x_total{a="1",b="q\"u\\o"} 42"#).unwrap();
        assert_eq!(sample.name, "dcr_x_total");
        assert_eq!(sample.label("a"), Some("1"));
        assert_eq!(sample.label("b"), Some(r#"q"u\o"#));
        assert!((sample.value - 42.0).abs() < f64::EPSILON);
        let bare = parse_sample("dcr_up 0.5").unwrap();
        assert!(bare.labels.is_empty());
        assert_eq!(parse_sample(r#"dcr_x{a="1} 2"#), None);
    }
}
