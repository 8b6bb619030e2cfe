//! Configuration: TOML with every key optional, overridable by environment
//! (`DCR_GATEWAY__SERVER__LISTEN=…`, double underscore nests), validated
//! into [`Config`] with every error reported at once.
//!
//! This module is the loader and the list of top-level sections. Each
//! section is read by the module that uses it, into its own types:
//! `[provider]` by [`crate::provider`] (each backend reads its own keys),
//! `[limits]` by [`crate::http::rate_limit`], `[software_statement]` by
//! [`crate::software_statement`], `[outbound]` by [`crate::outbound`] and
//! `[log]` by [`crate::logging`]. `[server]`, `[store]` and `[cache]`
//! ([`server`]) and `[registration]` with `[policies.*]` ([`registration`])
//! are read here. Unknown sections and keys are errors everywhere.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use crate::front::FrontSettings;
use crate::http::console::ConsoleSettings;
use crate::http::rate_limit::LimitSettings;
use crate::logging::LogSettings;
use crate::outbound::OutboundSettings;
use crate::provider::ProviderSettings;
use crate::settings::Report;
use crate::software_statement::SoftwareStatementSettings;

mod env;
pub mod registration;
pub mod server;

pub use registration::RegistrationSettings;
pub use server::{CacheSettings, ServerSettings, StoreSettings, TlsSettings};

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "DCR_GATEWAY__";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: where to listen and how the gateway is reached.
    pub server: ServerSettings,
    /// `[store]`: where clients are kept.
    pub store: StoreSettings,
    /// `[cache]`: the read cache in front of the store.
    pub cache: CacheSettings,
    /// `[provider]`: which identity provider holds the clients.
    pub provider: ProviderSettings,
    /// `[outbound]`: the client for URLs that apps point the gateway at.
    pub outbound: OutboundSettings,
    /// `[log]`: log format and filter.
    pub log: LogSettings,
    /// `[registration]` and `[policies.*]`: who may register, and what.
    pub registration: RegistrationSettings,
    /// `[software_statement]`: trusted issuers of software statements.
    pub software_statement: SoftwareStatementSettings,
    /// `[limits]`: rate limits.
    pub limits: LimitSettings,
    /// `[front]`: the authorization front (read by [`crate::front`]).
    pub front: FrontSettings,
    /// `[console]`: the operator console (read by [`crate::http::console`]).
    pub console: ConsoleSettings,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "- {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads `path` (or nothing, for the embedded defaults) and the process
    /// environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| ConfigErrors(vec![format!("cannot read {}: {e}", path.display())]))?,
            None => String::new(),
        };
        let env = std::env::vars_os().filter_map(|(k, v)| utf8_pair(k, v));
        Self::from_sources(&text, env)
    }

    /// Builds the configuration from TOML text and environment variables.
    pub fn from_sources(
        toml_text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigErrors> {
        let mut table: toml::Table = toml::from_str(toml_text)
            .map_err(|e| ConfigErrors(vec![format!("not valid TOML: {e}")]))?;
        let mut report = Report::default();
        env::apply(&mut table, env, &mut report);
        let config = Self::read(table, &mut report);
        let errors = report.into_errors();
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// Hands each section to its reader; `None` when a section could not
    /// be built at all (the problems are in `report`).
    fn read(mut table: toml::Table, report: &mut Report) -> Option<Self> {
        let mut take = |name: &str| section(&mut table, name, report);
        let (server, store, cache) = (take("server"), take("store"), take("cache"));
        let (provider, outbound, log) = (take("provider"), take("outbound"), take("log"));
        let (registration, policies) = (take("registration"), take("policies"));
        let (software_statement, limits) = (take("software_statement"), take("limits"));
        let (front, console) = (take("front"), take("console"));
        for key in table.keys() {
            report.error(format!("unknown section `{key}`"));
        }
        let server = ServerSettings::read(server, report);
        // A key that is given but bad is reported as bad, not as missing.
        let sealing_key = store.get("encryption_key").is_some_and(toml::Value::is_str);
        let store = StoreSettings::read(store, report);
        let cache = CacheSettings::read(cache, report);
        let provider = ProviderSettings::read(provider, sealing_key, report);
        let outbound = OutboundSettings::read(outbound, report);
        let log = LogSettings::read(log, report);
        let registration = RegistrationSettings::read(registration, policies, report);
        let private = outbound.allow_private_networks;
        let software_statement =
            SoftwareStatementSettings::read(software_statement, private, report);
        let limits = LimitSettings::read(limits, report);
        let broker = provider
            .as_ref()
            .is_some_and(|provider| provider.kind.settings().requires_front());
        let front = FrontSettings::read(front, broker, report);
        let console = ConsoleSettings::read(console, store.encryption_key.is_some(), report);
        if let Some(provider) = &provider {
            let policies = &registration.policies;
            let sealing = store.encryption_key.is_some();
            front.check(
                &provider.kind,
                |name| policies.contains_key(name),
                sealing,
                report,
            );
            server.check_request_timeout(provider.operation_deadline, report);
        }
        Some(Self {
            server,
            store,
            cache,
            provider: provider?,
            outbound,
            log,
            registration,
            software_statement,
            limits,
            front,
            console,
        })
    }
}

/// Takes the section `name` out of `table` (empty when absent).
fn section(table: &mut toml::Table, name: &str, report: &mut Report) -> toml::Table {
    match table.remove(name) {
        None => toml::Table::new(),
        Some(toml::Value::Table(keys)) => keys,
        Some(_) => {
            report.error(format!("`{name}` must be a section"));
            toml::Table::new()
        }
    }
}

fn utf8_pair(key: OsString, value: OsString) -> Option<(String, String)> {
    Some((key.into_string().ok()?, value.into_string().ok()?))
}

#[cfg(test)]
mod tests;
