//! Logging: the `[log]` settings and the `tracing` subscriber they set up.

pub mod access;
pub mod batched;

use std::io::IsTerminal;
use std::sync::OnceLock;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::settings::Report;

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,sqlx=warn`.
    pub filter: String,
    /// One access line per request (method, path, status, latency,
    /// request id), under the `access` target.
    pub access: bool,
}

impl Default for LogConfig {
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

impl LogConfig {
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
        let filter = EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(filter.unwrap_or(&self.filter)))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        // Colour only for a person at a terminal: a file, a pipe or journald
        // gets plain text.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(writer);
        match self.format {
            LogFormat::Pretty => builder.init(),
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .init(),
        }
    }
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
