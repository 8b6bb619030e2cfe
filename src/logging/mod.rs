//! Logging: the `[log]` settings and the `tracing` subscriber they set up.

pub mod access;
pub mod batched;

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::Report;

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
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,sqlx=warn".into(),
            access: true,
        }
    }
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
        let log: Self = report.section("log", keys);
        if let Err(e) = EnvFilter::try_new(&log.filter) {
            report.error(format!("log.filter `{}`: {e}", log.filter));
        }
        log
    }

    /// Logs to stderr as configured, each line written as it happens (for
    /// the operator commands); `filter` replaces the configured filter
    /// (`RUST_LOG` wins over both).
    pub fn init(&self, filter: Option<&str>) {
        self.install(filter, std::io::stderr);
    }

    /// Logs to stderr as configured, through a writer thread, so that a
    /// request never waits for a log line to be written (see
    /// [`batched`]); past [`batched::CAPACITY`] bytes waiting, lines are
    /// dropped and counted ([`dropped_lines`]). The guard writes out what
    /// is waiting when dropped.
    pub fn init_background(&self) -> std::io::Result<LogWriterGuard> {
        let (writer, thread) = batched::start(std::io::stderr())?;
        // One writer per process: a second one would only count its own drops.
        let _ = WRITER.set(Installed {
            writer: writer.clone(),
            format: self.format,
        });
        self.install(None, writer);
        Ok(LogWriterGuard { _thread: thread })
    }

    fn install<W>(&self, filter: Option<&str>, writer: W)
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

/// Keeps the background log writer running; dropping it writes out what
/// is still waiting.
#[must_use = "the log writer stops when its guard is dropped"]
pub struct LogWriterGuard {
    _thread: batched::WriterThread,
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
