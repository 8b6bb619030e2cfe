//! Trace export: with `[log] otlp_endpoint` set, the gateway's spans go to
//! an OpenTelemetry collector over OTLP/HTTP (protobuf, `POST
//! {endpoint}/v1/traces`), as service `dcr-gateway`. Unset, nothing here
//! runs: no exporter, no extra span, no extra field recorded.
//!
//! What is exported:
//!
//! - the request span of [`crate::http`]'s edge (kind server), named by
//!   method and route (`POST /register`), with `http.request.method`,
//!   `http.route`, `url.path`, `http.response.status_code` and the
//!   `request_id`; it continues the caller's trace when the request has a
//!   W3C `traceparent` header. An RFC 7592 read answered from memory has no
//!   span, so none is exported;
//! - a child span per provider call (kind client, [`provider_call`]),
//!   named by provider and operation (`hydra create`), with its outcome;
//! - the events logged inside those spans, as span events.
//!
//! No secret is recorded: attributes hold the method, route, path, status,
//! ids and outcomes only, never a header or a body.
//!
//! Spans are batched on tokio (the SDK's batch span processor; the
//! standard `OTEL_BSP_*` variables tune it, `OTEL_EXPORTER_OTLP_HEADERS`
//! adds headers) and sent through the [`HttpClient`] the caller gives.
//! [`TraceExport::shutdown`] sends what is still batched. The spans are
//! `INFO` spans and pass the log filter like any other: a filter that
//! leaves them out leaves them out of the traces too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Status, TraceContextExt, TracerProvider};
use opentelemetry_http::{HeaderExtractor, HttpClient};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing::Span;
use tracing::field::Empty;
use tracing::subscriber::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

/// The `service.name` of the exported spans, unless `OTEL_SERVICE_NAME`
/// names another.
pub const SERVICE_NAME: &str = "dcr-gateway";

/// Longest wait for the collector, per export.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait, at shutdown, for the last spans to be sent (15 s, as
/// [`TraceExport::shutdown`] says).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Where, under the configured endpoint, spans are posted.
const TRACES_PATH: &str = "v1/traces";

/// Whether spans are exported: set once, when the export starts.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported. Callers do their tracing work only then.
#[must_use]
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Why the export could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {endpoint}: {source}")]
pub struct TraceExportError {
    /// The configured endpoint.
    endpoint: String,
    /// What the exporter said.
    #[source]
    source: opentelemetry_otlp::ExporterBuildError,
}

/// The running export: its spans' provider, which batches and sends.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Starts exporting to the collector at `endpoint` (its base URL: the
    /// spans go to `{endpoint}/v1/traces`) through `client`. Runs the
    /// batch on the current tokio runtime, so it must be called on one.
    pub fn start(
        endpoint: &str,
        client: impl HttpClient + 'static,
    ) -> Result<Self, TraceExportError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url(endpoint))
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(client)
            .build()
            .map_err(|source| TraceExportError {
                endpoint: endpoint.to_owned(),
                source,
            })?;
        let batch = BatchSpanProcessor::builder(exporter, Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_resource(resource())
            .build();
        EXPORTING.store(true, Ordering::Relaxed);
        Ok(Self { provider })
    }

    /// The subscriber layer that turns the gateway's spans into exported
    /// ones (no thread, source location or busy/idle attributes).
    #[must_use]
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(SERVICE_NAME))
            .with_threads(false)
            .with_location(false)
            .with_tracked_inactivity(false)
    }

    /// Sends the spans still batched and stops, waiting at most 15 s;
    /// spans ended after it are dropped.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The SDK's shutdown blocks until the batch task (on this runtime)
        // has sent the last spans: off the runtime's threads.
        let stopping = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, stopping).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "the last spans were not exported"),
            Ok(Err(error)) => tracing::warn!(%error, "the trace export did not stop"),
            Err(_) => tracing::warn!("the last spans were not exported in time"),
        }
    }
}

/// `{endpoint}/v1/traces`, with one slash between.
fn traces_url(endpoint: &str) -> String {
    format!("{}/{TRACES_PATH}", endpoint.trim_end_matches('/'))
}

/// The spans' resource: the SDK's (`OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_SERVICE_NAME`) with `service.name` [`SERVICE_NAME`] unless the
/// environment names the service, and `service.version`.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.is_empty());
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    match named {
        true => builder.build(),
        false => builder.with_service_name(SERVICE_NAME).build(),
    }
}

/// Makes `span`, a request's span not yet entered, a server span, and a
/// child of the caller's trace when `headers` carry a valid W3C
/// `traceparent`. `span` must have an empty `otel.kind` field.
pub fn request_received(span: &Span, headers: &HeaderMap) {
    span.record("otel.kind", "server");
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Fails only for a span the layer does not see (filtered out).
        let _ = span.set_parent(parent);
    }
}

/// Records a request's answer on its span: the name (`POST /register`, or
/// the method alone when no route answered), method, route, path and
/// status; a 5xx marks the span as failed.
pub fn request_answered(
    span: &Span,
    method: &Method,
    route: Option<&'static str>,
    path: &str,
    status: StatusCode,
) {
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };
    span.context().span().update_name(name);
    span.set_attribute("http.request.method", method.to_string());
    if let Some(route) = route {
        span.set_attribute("http.route", route);
    }
    span.set_attribute("url.path", path.to_owned());
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(Status::error(status.to_string()));
    }
}

/// The span of one call to the provider `provider` (its kind, e.g.
/// `hydra`), for its `operation` (`create`, `token`, ...): a client span,
/// named `{provider} {operation}`, in the current span. When nothing is
/// exported it is [`Span::none`], so that logs see no new span.
#[must_use]
pub fn provider_call(provider: &'static str, operation: &'static str) -> Span {
    if !exporting() {
        return Span::none();
    }
    tracing::info_span!(
        "provider call",
        otel.name = %format_args!("{provider} {operation}"),
        otel.kind = "client",
        otel.status_code = Empty,
        dcr.provider = provider,
        dcr.provider.operation = operation,
        dcr.provider.outcome = Empty,
    )
}

/// Records how the call of `span` ([`provider_call`]) ended: its
/// `outcome` (`ok`, `rejected`, `unavailable`, ...), and whether it
/// `failed` (the provider could not be reached or did not answer).
pub fn provider_call_ended(span: &Span, outcome: &'static str, failed: bool) {
    span.record("dcr.provider.outcome", outcome);
    if failed {
        span.record("otel.status_code", "error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_posted_under_the_endpoint() {
        for endpoint in ["http://collector:4318", "http://collector:4318/"] {
            assert_eq!(traces_url(endpoint), "http://collector:4318/v1/traces");
        }
        assert_eq!(
            traces_url("https://otel.example.com/otlp/"),
            "https://otel.example.com/otlp/v1/traces"
        );
    }
}
