//! `[server]`, `[store]` and `[cache]`: where the gateway listens, where it
//! keeps clients, and the cache in front of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderValue;
use serde::Deserialize;
use url::Url;

use crate::http::cors::AllowedOrigins;
use crate::settings::{Report, duration};
use crate::store::sealing::Sealer;
use crate::store::sql::Backend;

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Socket address to bind.
    pub listen: SocketAddr,
    /// Base URL apps use to reach the gateway, without a trailing slash.
    pub public_url: String,
    /// Largest request body accepted, in bytes (larger ones get 413).
    pub max_body_bytes: usize,
    /// How long in-flight requests may run after SIGTERM.
    pub shutdown_timeout: Duration,
    /// Longest wait for a request head: from the accept (TLS and HTTP/2
    /// handshakes included) and, on HTTP/1.1, from the previous response.
    pub header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// How often HTTP/2 peers are pinged, and how long an answer may take.
    pub http2_keep_alive_interval: Duration,
    /// Longest wait for a request's whole body, from its head (then 408).
    pub request_body_timeout: Duration,
    /// Longest a request may take to be answered (then 408).
    pub request_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections of one address (one /64 for IPv6) that may wait
    /// at once (for a head or a body, or idle); `limits.trusted_proxies`
    /// are exempt.
    pub max_connections_per_ip: usize,
    /// `[server.tls]`: serve HTTPS with this certificate and key.
    pub tls: Option<TlsSettings>,
    /// `[server.cors] allowed_origins`: the origins browser-based clients
    /// may call the registration, RFC 7592 and discovery routes from.
    pub cors: AllowedOrigins,
}

/// `[server.tls]`: PEM files, reloaded on SIGHUP or when they change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TlsSettings {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Database URL, `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Database connections kept open, besides the group-commit writer's.
    pub max_connections: u32,
    /// Key that seals provider state at rest (required by the provider
    /// kinds that keep such state).
    pub encryption_key: Option<Sealer>,
}

/// `[cache]`.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Most clients held in memory.
    pub max_clients: u64,
    /// Most bytes the cache may take: three quarters for clients (by their
    /// estimated size), a quarter for serialized read answers.
    pub max_bytes: u64,
    /// Longest time a client is served from memory.
    pub ttl: Duration,
}

impl CacheSettings {
    /// The part of `max_bytes` for clients: three quarters.
    #[must_use]
    pub fn client_bytes(&self) -> u64 {
        self.max_bytes - self.read_answer_bytes()
    }

    /// The part of `max_bytes` for serialized RFC 7592 read answers: a
    /// quarter.
    #[must_use]
    pub fn read_answer_bytes(&self) -> u64 {
        self.max_bytes / 4
    }
}

impl ServerSettings {
    /// An absolute URL under the public base, e.g. `endpoint("/register")`.
    #[must_use]
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}

/// `[server]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawServer {
    listen: String,
    public_url: String,
    max_body_bytes: u64,
    shutdown_timeout: String,
    header_read_timeout: String,
    idle_timeout: String,
    http2_keep_alive_interval: String,
    request_body_timeout: String,
    request_timeout: String,
    max_connections: u64,
    max_connections_per_ip: u64,
    tls: Option<TlsSettings>,
    cors: RawCors,
}

/// `[server.cors]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawCors {
    allowed_origins: Vec<String>,
}

impl Default for RawCors {
    fn default() -> Self {
        Self {
            allowed_origins: vec!["*".into()],
        }
    }
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 65_536,
            shutdown_timeout: "30s".into(),
            header_read_timeout: "10s".into(),
            idle_timeout: "60s".into(),
            http2_keep_alive_interval: "20s".into(),
            request_body_timeout: "10s".into(),
            request_timeout: "3m".into(),
            max_connections: 512,
            max_connections_per_ip: 64,
            tls: None,
            cors: RawCors::default(),
        }
    }
}

impl ServerSettings {
    /// Reads `[server]`, reporting every problem.
    pub(super) fn read(keys: toml::Table, report: &mut Report) -> Self {
        let raw: RawServer = report.section("server", keys);
        let listen = raw.listen.parse().unwrap_or_else(|e| {
            report.error(format!("server.listen `{}`: {e}", raw.listen));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let max_body_bytes = usize::try_from(raw.max_body_bytes)
            .ok()
            .filter(|n| (1024..=16 * 1024 * 1024).contains(n))
            .unwrap_or_else(|| {
                report.error("server.max_body_bytes must be between 1024 and 16777216");
                65_536
            });
        let shutdown_timeout = duration(&raw.shutdown_timeout, "server.shutdown_timeout", report);
        let mut positive = |text: &str, key: &str| positive_duration(text, key, report);
        let header_read_timeout = positive(&raw.header_read_timeout, "server.header_read_timeout");
        let idle_timeout = positive(&raw.idle_timeout, "server.idle_timeout");
        let http2_keep_alive_interval = positive(
            &raw.http2_keep_alive_interval,
            "server.http2_keep_alive_interval",
        );
        let request_body_timeout =
            positive(&raw.request_body_timeout, "server.request_body_timeout");
        let request_timeout = positive(&raw.request_timeout, "server.request_timeout");
        let mut count = |value: u64, key: &str| positive_count(value, key, report);
        let max_connections = count(raw.max_connections, "server.max_connections");
        let max_connections_per_ip =
            count(raw.max_connections_per_ip, "server.max_connections_per_ip");
        Self {
            listen,
            public_url: public_url(&raw.public_url, report),
            max_body_bytes,
            shutdown_timeout,
            header_read_timeout,
            idle_timeout,
            http2_keep_alive_interval,
            request_body_timeout,
            request_timeout,
            max_connections,
            max_connections_per_ip,
            tls: raw.tls.inspect(|tls| tls.check(report)),
            cors: raw.cors.read(report),
        }
    }
}

impl ServerSettings {
    /// Refuses a `request_timeout` that would cut off a request while the
    /// provider operation it makes may still run.
    pub(super) fn check_request_timeout(&self, operation_deadline: Duration, report: &mut Report) {
        if self.request_timeout <= operation_deadline {
            report.error(format!(
                "server.request_timeout ({}) must be longer than the provider operation \
                 deadline ({}, from provider.timeout and provider.retries)",
                humantime::format_duration(self.request_timeout),
                humantime::format_duration(operation_deadline),
            ));
        }
    }
}

impl RawCors {
    /// `["*"]` is any origin; otherwise each entry is one origin as browsers
    /// send it (`https://app.example.com`, a port when not the default).
    fn read(self, report: &mut Report) -> AllowedOrigins {
        if self.allowed_origins == ["*"] {
            return AllowedOrigins::Any;
        }
        let origins = self
            .allowed_origins
            .iter()
            .filter_map(|text| {
                let origin = Url::parse(text)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https"))
                    .map(|url| url.origin().ascii_serialization())
                    .filter(|origin| origin == text)
                    .and_then(|origin| HeaderValue::from_str(&origin).ok());
                if origin.is_none() {
                    report.error(format!(
                        "server.cors.allowed_origins: `{}` is not an origin such as \
                         `https://app.example.com` (scheme, host and a port other than the \
                         default, no path; or [\"*\"] alone for any origin)",
                        text.escape_debug()
                    ));
                }
                origin
            })
            .collect();
        AllowedOrigins::Listed(origins)
    }
}

impl TlsSettings {
    /// Reports a certificate or key file that cannot be read.
    fn check(&self, report: &mut Report) {
        for (key, path) in [("cert", &self.cert), ("key", &self.key)] {
            if let Err(e) = std::fs::metadata(path) {
                report.error(format!(
                    "server.tls.{key}: cannot read {}: {e}",
                    path.display()
                ));
            }
        }
    }
}

/// The public base URL, without a trailing slash.
fn public_url(text: &str, report: &mut Report) -> String {
    match Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            url.as_str().trim_end_matches('/').to_owned()
        }
        _ => {
            report.error(format!(
                "server.public_url `{text}` must be an http(s) URL without query or fragment"
            ));
            String::new()
        }
    }
}

fn positive_duration(text: &str, key: &str, report: &mut Report) -> Duration {
    let value = duration(text, key, report);
    if value.is_zero() {
        report.error(format!("{key} must be more than zero"));
    }
    value
}

fn positive_count(value: u64, key: &str, report: &mut Report) -> usize {
    usize::try_from(value)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            report.error(format!("{key} must be a positive number"));
            1
        })
}

/// `[store]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawStore {
    url: String,
    max_connections: u32,
    encryption_key: Option<String>,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            url: "sqlite://data/dcr-gateway.db".into(),
            max_connections: 8,
            encryption_key: None,
        }
    }
}

impl StoreSettings {
    /// Reads `[store]`, reporting every problem.
    pub(super) fn read(keys: toml::Table, report: &mut Report) -> Self {
        let raw: RawStore = report.section("store", keys);
        if Backend::of(&raw.url).is_none() {
            report.error(format!(
                "store.url `{}`: supported stores are sqlite://PATH and postgres://…",
                raw.url
            ));
        }
        if raw.max_connections == 0 {
            report.error("store.max_connections must be positive");
        }
        let encryption_key = raw.encryption_key.as_deref().and_then(|key| {
            Sealer::from_base64(key)
                .map_err(|e| report.error(format!("store.encryption_key: {e}")))
                .ok()
        });
        Self {
            url: raw.url,
            max_connections: raw.max_connections.max(1),
            encryption_key,
        }
    }
}

/// `[cache]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawCache {
    max_clients: u64,
    max_bytes: u64,
    ttl: String,
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            max_clients: 100_000,
            max_bytes: 64 * 1024 * 1024,
            ttl: "60s".into(),
        }
    }
}

impl CacheSettings {
    /// Reads `[cache]`, reporting every problem.
    pub(super) fn read(keys: toml::Table, report: &mut Report) -> Self {
        let raw: RawCache = report.section("cache", keys);
        let ttl = duration(&raw.ttl, "cache.ttl", report);
        if raw.max_bytes < 1024 * 1024 && raw.max_bytes != 0 {
            report.error(format!(
                "cache.max_bytes ({}) must be 0 (no cache) or at least 1048576",
                raw.max_bytes
            ));
        }
        Self {
            max_clients: raw.max_clients,
            max_bytes: raw.max_bytes,
            ttl,
        }
    }
}
