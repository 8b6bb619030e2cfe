//! Logging: the `[log]` settings and the `tracing` subscriber they set up.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use crate::settings::Report;

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,sqlx=warn`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,sqlx=warn".into(),
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

    /// Logs to stderr as configured; `filter` replaces the configured
    /// filter (`RUST_LOG` wins over both).
    pub fn init(&self, filter: Option<&str>) {
        let filter = EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(filter.unwrap_or(&self.filter)))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        // Colour only for a person at a terminal: a file, a pipe or journald
        // gets plain text.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
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
