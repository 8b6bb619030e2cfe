//! Logging: the `[log]` settings and the `tracing` subscriber they set up,
//! with the trace export ([`traces`]) when an OTLP endpoint is configured.

pub mod access;
pub mod batched;
pub mod traces;

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry_http::HttpClient;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{Report, http_url};

use self::traces::{TraceExport, TraceExportError};

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// Line format.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,sqlx=warn`.
    pub filter: String,
    /// One access line per request (method, path, status, latency,
    /// request id), under the `access` target.
    pub access: bool,
    /// The OpenTelemetry collector's OTLP/HTTP base URL
    /// (`http://collector:4318`): spans are exported there ([`traces`]).
    /// None (or empty): nothing is exported.
    pub otlp_endpoint: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,sqlx=warn".into(),
            access: true,
            otlp_endpoint: None,
        }
    }
}

/// Why the server's logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogSetupError {
    /// The writer thread did not start.
    #[error("cannot start the log writer: {0}")]
    Writer(#[from] std::io::Error),
    /// The HTTP client for the collector could not be built.
    #[error("cannot build the HTTP client for log.otlp_endpoint: {0}")]
    Collector(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The trace exporter did not start.
    #[error(transparent)]
    Traces(#[from] TraceExportError),
}

/// How log lines are written: `log.format = "pretty"` or `"json"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl LogSettings {
    /// Reads `[log]`, reporting every problem.
    pub fn read(keys: toml::Table, report: &mut Report) -> Self {
        let mut log: Self = report.section("log", keys);
        if let Err(e) = EnvFilter::try_new(&log.filter) {
            report.error(format!("log.filter `{}`: {e}", log.filter));
        }
        // Empty turns export off (an environment value can unset the file's).
        log.otlp_endpoint = log.otlp_endpoint.filter(|endpoint| !endpoint.is_empty());
        if let Some(endpoint) = &log.otlp_endpoint {
            http_url(endpoint, "log.otlp_endpoint", report);
        }
        log
    }

    /// Logs to stderr as configured, each line written as it happens (for
    /// the operator commands); `filter` replaces the configured filter
    /// (`RUST_LOG` wins over both).
    pub fn init(&self, filter: Option<&str>) {
        self.install(filter, std::io::stderr, None);
    }

    /// Logs to stderr as configured, through a writer thread, so that a
    /// request never waits for a log line to be written (see
    /// [`batched`]); past [`batched::CAPACITY`] bytes waiting, lines are
    /// dropped and counted ([`dropped_lines`]). With `otlp_endpoint` set,
    /// spans are exported too ([`traces`]), sent with the client
    /// `collector` builds (called only then); this must run on a tokio
    /// runtime. The guard writes out what is waiting when dropped;
    /// [`LogWriterGuard::close`] sends the last spans as well.
    pub fn init_background<C, E>(
        &self,
        collector: impl FnOnce() -> Result<C, E>,
    ) -> Result<LogWriterGuard, LogSetupError>
    where
        C: HttpClient + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let traces = match &self.otlp_endpoint {
            Some(endpoint) => {
                let client = collector().map_err(|e| LogSetupError::Collector(Box::new(e)))?;
                Some(TraceExport::start(endpoint, client)?)
            }
            None => None,
        };
        let (writer, thread) = batched::start(std::io::stderr())?;
        // One writer per process: a second one would only count its own drops.
        let _ = WRITER.set(Installed {
            writer: writer.clone(),
            format: self.format,
        });
        self.install(None, writer, traces.as_ref());
        Ok(LogWriterGuard {
            traces,
            _thread: thread,
        })
    }

    fn install<W>(&self, filter: Option<&str>, writer: W, traces: Option<&TraceExport>)
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let (targets, env_filter) = filter_from(filter.unwrap_or(&self.filter));
        BY_SPAN.store(env_filter.is_some(), Ordering::Relaxed);
        // Colour only for a person at a terminal: a file, a pipe or journald
        // gets plain text.
        let lines = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(writer);
        let subscriber = tracing_subscriber::registry()
            .with(targets)
            .with(env_filter);
        let subscriber = subscriber.with(traces.map(TraceExport::layer));
        match self.format {
            LogFormat::Pretty => subscriber.with(lines).init(),
            LogFormat::Json => subscriber
                .with(lines.json().flatten_event(true).with_current_span(true))
                .init(),
        }
    }
}

/// Which lines are written: the filter from `RUST_LOG` when it is set and
/// valid, else from `configured`, else `info` (see [`filter_for`]).
fn filter_from(configured: &str) -> (Option<Targets>, Option<EnvFilter>) {
    let from_environment = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|directives| EnvFilter::try_new(directives).is_ok());
    let directives = from_environment
        .as_deref()
        .or_else(|| EnvFilter::try_new(configured).is_ok().then_some(configured))
        .unwrap_or("info");
    filter_for(directives)
}

/// The filter for valid `EnvFilter` directives, one of two kinds. Levels
/// by target only (the common case) make a [`Targets`] filter, which does
/// nothing as spans are entered and left; an `EnvFilter` takes a lock on
/// each, to follow span directives, and the request span is entered on
/// every request. Directives that name spans or fields make an `EnvFilter`.
fn filter_for(directives: &str) -> (Option<Targets>, Option<EnvFilter>) {
    let names_spans = directives.contains(['[', ']', '{', '}', '"']);
    match directives.parse::<Targets>() {
        Ok(targets) if !names_spans => (Some(targets), None),
        _ => (None, Some(EnvFilter::new(directives))),
    }
}

/// Whether the filter installed may decide by span (see [`filter_for`]).
static BY_SPAN: AtomicBool = AtomicBool::new(false);

/// Whether the installed filter names spans or fields, so that whether an
/// event is written can depend on the span it is in: asked outside a
/// span, [`tracing::enabled!`] cannot tell.
#[must_use]
pub fn filters_by_span() -> bool {
    BY_SPAN.load(Ordering::Relaxed)
}

/// The server's log writer and format, once it runs.
struct Installed {
    writer: batched::BatchedWriter,
    format: LogFormat,
}

static WRITER: OnceLock<Installed> = OnceLock::new();

/// Log lines dropped so far because the writer fell behind.
#[must_use]
pub fn dropped_lines() -> u64 {
    WRITER
        .get()
        .map_or(0, |installed| installed.writer.dropped_lines())
}

/// Keeps the background log writer (and the trace export) running;
/// dropping it writes out the lines still waiting.
#[must_use = "the log writer stops when its guard is dropped"]
pub struct LogWriterGuard {
    traces: Option<TraceExport>,
    _thread: batched::WriterThread,
}

impl LogWriterGuard {
    /// Stops: sends the spans still batched (see
    /// [`TraceExport::shutdown`]), then writes out the lines waiting.
    pub async fn close(self) {
        if let Some(traces) = self.traces {
            traces.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn target_levels_make_a_target_filter_that_decides_alike() {
        let (Some(targets), None) = filter_for("info,sqlx=warn,audit=debug") else {
            panic!("a target filter");
        };
        assert!(targets.would_enable("dcr_gateway::http", &Level::INFO));
        assert!(!targets.would_enable("dcr_gateway::http", &Level::DEBUG));
        assert!(!targets.would_enable("sqlx::query", &Level::INFO));
        assert!(targets.would_enable("sqlx::query", &Level::WARN));
        assert!(targets.would_enable("audit", &Level::DEBUG));
        assert!(matches!(filter_for("warn"), (Some(_), None)));
    }

    #[test]
    fn span_and_field_directives_keep_the_env_filter() {
        for directives in [
            "info,[request]=debug",
            "info,[request{request_id=\"abc\"}]=trace",
        ] {
            assert!(
                matches!(filter_for(directives), (None, Some(_))),
                "{directives}"
            );
        }
    }
}
