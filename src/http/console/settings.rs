//! `[console]`: the operator console, off by default.

use std::time::Duration;

use serde::Deserialize;

use crate::settings::{Report, duration};

/// `[console]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Whether `/console` is served.
    pub enabled: bool,
    /// How long a console session lasts after signing in.
    pub session_lifetime: Duration,
}

/// `[console]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawConsole {
    enabled: bool,
    session_lifetime: String,
}

impl Default for RawConsole {
    fn default() -> Self {
        Self {
            enabled: false,
            session_lifetime: "8h".into(),
        }
    }
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            session_lifetime: Duration::from_secs(8 * 3600),
        }
    }
}

impl ConsoleSettings {
    /// Reads `[console]`, reporting every problem; `sealing` says whether
    /// `store.encryption_key` is set (sessions are sealed under it).
    pub fn read(keys: toml::Table, sealing: bool, report: &mut Report) -> Self {
        let raw: RawConsole = report.section("console", keys);
        let session_lifetime = duration(&raw.session_lifetime, "console.session_lifetime", report);
        if session_lifetime.is_zero() {
            report.error("console.session_lifetime must be more than zero");
        }
        if raw.enabled && !sealing {
            report
                .error("console.enabled needs store.encryption_key (sessions are sealed under it)");
        }
        Self {
            enabled: raw.enabled,
            session_lifetime,
        }
    }
}
