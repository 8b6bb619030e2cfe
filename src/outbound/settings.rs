//! `[outbound]`: how the guarded client reaches the URLs apps name.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::{Report, duration};

/// `[outbound]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawOutbound {
    allow_private_networks: bool,
    timeout: String,
    max_response_bytes: u64,
    extra_root_certificates: Vec<PathBuf>,
}

impl Default for RawOutbound {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            timeout: "5s".into(),
            max_response_bytes: 65_536,
            extra_root_certificates: Vec::new(),
        }
    }
}

impl OutboundSettings {
    /// Reads `[outbound]` (and the extra root certificates it names),
    /// reporting every problem.
    pub fn read(keys: toml::Table, report: &mut Report) -> Self {
        let raw: RawOutbound = report.section("outbound", keys);
        let timeout = duration(&raw.timeout, "outbound.timeout", report);
        let max_response_bytes = usize::try_from(raw.max_response_bytes)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                report.error("outbound.max_response_bytes must be positive");
                65_536
            });
        let mut extra_root_certificates = Vec::new();
        for path in &raw.extra_root_certificates {
            match std::fs::read(path) {
                Ok(pem) => extra_root_certificates.push(pem),
                Err(e) => report.error(format!(
                    "outbound.extra_root_certificates: cannot read {}: {e}",
                    path.display()
                )),
            }
        }
        Self {
            allow_private_networks: raw.allow_private_networks,
            timeout,
            max_response_bytes,
            extra_root_certificates,
        }
    }
}

/// Settings of the guarded client.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Allow loopback, private and link-local destinations (tests, labs).
    pub allow_private_networks: bool,
    /// Total time allowed for one fetch.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
    /// Extra trusted root certificates, PEM.
    pub extra_root_certificates: Vec<Vec<u8>>,
}
