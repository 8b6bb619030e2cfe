//! Configuration: TOML with every key optional, overridable by environment
//! (`DCR_GATEWAY__SERVER__LISTEN=…`, double underscore nests). Read raw with
//! serde, then validated into [`Config`], reporting every error at once.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::metadata::is_scope_token;
use crate::domain::policy::{HostPattern, Policy, is_response_type};
use crate::domain::uri::parse_scheme;
use crate::domain::values::{AuthMethod, GrantType};
use crate::outbound::{OutboundSettings, names_private_host};
use crate::provider::Credential;
use crate::provider::billforward::BillForwardSettings;
use crate::provider::breaker::BreakerSettings;
use crate::provider::http_client::{ProviderAuth, Resilience};
use crate::provider::hydra::{HydraSettings, LIFESPANS};
use crate::provider::okta::OktaSettings;
use crate::provider::rfc7591::Rfc7591Settings;
use crate::provider::zendesk::ZendeskSettings;
use crate::registration::{RegistrationMode, TokenRotation};
use crate::store::sealing::Sealer;
use crate::store::sql::Backend;

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "DCR_GATEWAY__";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: where to listen and how the gateway is reached.
    pub server: ServerConfig,
    /// `[store]`: where clients are kept.
    pub store: StoreConfig,
    /// `[cache]`: the read cache in front of the store.
    pub cache: CacheConfig,
    /// `[provider]`: which identity provider holds the clients.
    pub provider: ProviderConfig,
    /// `[outbound]`: the client for URLs that apps point the gateway at.
    pub outbound: OutboundSettings,
    /// `[log]`: log format and filter.
    pub log: LogConfig,
    /// `[registration]` and `[policies.*]`: who may register, and what.
    pub registration: RegistrationConfig,
    /// `[software_statement]`: trusted issuers of software statements.
    pub software_statement: SoftwareStatementConfig,
    /// `[limits]`: rate limits.
    pub limits: LimitsConfig,
}

/// `[registration]` and `[policies.*]`.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// Open, or protected by initial access tokens.
    pub mode: RegistrationMode,
    /// Whether updates rotate the registration access token.
    pub rotation: TokenRotation,
    /// Policies by name (a permissive `default` when none is configured).
    pub policies: BTreeMap<String, Policy>,
    /// The policy of registrations without a token naming one.
    pub default_policy: String,
}

/// `[software_statement]`.
#[derive(Debug, Clone, Default)]
pub struct SoftwareStatementConfig {
    /// Every registration must carry a statement.
    pub required: bool,
    /// Issuers whose statements are trusted.
    pub issuers: Vec<TrustedIssuer>,
}

/// One `[[software_statement.issuers]]`.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The `iss` claim.
    pub issuer: String,
    /// Where its verification keys are.
    pub keys: IssuerKeys,
    /// Signature algorithms accepted from it.
    pub allowed_algs: Vec<jsonwebtoken::Algorithm>,
    /// `software_id`s it may vouch for; empty allows any.
    pub software_ids: Vec<String>,
}

/// Where a trusted issuer's keys come from.
#[derive(Debug, Clone)]
pub enum IssuerKeys {
    /// Fetched (and cached) from a JWKS URL.
    Uri(Url),
    /// Given in the configuration.
    Set(jsonwebtoken::jwk::JwkSet),
}

/// A rate: `count` requests per `per`, with a burst of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period (and the burst).
    pub count: std::num::NonZeroU32,
    /// The period.
    pub per: Duration,
}

impl Quota {
    /// Parses `N/second`, `N/minute` or `N/hour`; `unlimited` is `None`.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        if text == "unlimited" {
            return Ok(None);
        }
        let bad = || format!("`{text}` is not `N/second`, `N/minute`, `N/hour` or `unlimited`");
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let count = count
            .trim()
            .parse::<std::num::NonZeroU32>()
            .map_err(|_| bad())?;
        let per = match unit.trim() {
            "second" => Duration::from_secs(1),
            "minute" => Duration::from_secs(60),
            "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Some(Self { count, per }))
    }
}

/// `[limits]`.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Registrations per client address (IPv6 per /64).
    pub register_per_ip: Option<Quota>,
    /// RFC 7592 requests per client, once its token is verified.
    pub manage_per_client: Option<Quota>,
    /// Registrations per initial access token.
    pub register_per_initial_access_token: Option<Quota>,
    /// Registrations per `software_id`.
    pub register_per_software_id: Option<Quota>,
    /// Registrations per redirect URI host.
    pub register_per_redirect_host: Option<Quota>,
    /// Failed authentications (wrong registration or initial access token)
    /// per client address before they are answered 429 instead of 401.
    pub auth_failures_per_ip: Option<Quota>,
    /// Proxies whose client-address header is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header trusted proxies name the client in.
    pub client_ip_header: ClientIpHeader,
    /// Most keys (addresses, clients, tokens) each limiter tracks at once.
    pub max_tracked_keys: u64,
}

/// The header a trusted proxy names the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    #[serde(rename = "forwarded")]
    Forwarded,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
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
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one address (one /64 for IPv6);
    /// `limits.trusted_proxies` are exempt.
    pub max_connections_per_ip: usize,
    /// `[server.tls]`: serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: PEM files, reloaded on SIGHUP or when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Database URL, `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Database connections kept open.
    pub max_connections: u32,
    /// Key that seals provider state at rest (required by `rfc7591`).
    pub encryption_key: Option<Sealer>,
}

/// `[cache]`.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Most clients held in memory.
    pub max_clients: u64,
    /// Most bytes the cached clients may take, by their estimated size.
    pub max_bytes: u64,
    /// Longest time a client is served from memory.
    pub ttl: Duration,
}

/// `[provider]`: the backend that holds the clients.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Which backend, with its settings.
    pub kind: ProviderKind,
    /// How often the background reconcile runs (zero: never).
    pub reconcile_interval: Duration,
    /// Whether reconcile reports clients the provider holds that the gateway
    /// did not make (false where the provider is shared with other tools).
    pub report_unknown_clients: bool,
}

/// The provider backends.
#[derive(Debug, Clone)]
pub enum ProviderKind {
    /// The built-in registry.
    Local,
    /// Ory Hydra's admin API.
    Hydra(HydraSettings),
    /// Any RFC 7591/7592 server.
    Rfc7591(Rfc7591Settings),
    /// Okta's `/oauth2/v1/clients`.
    Okta(OktaSettings),
    /// Zendesk's `/api/v2/oauth/clients`.
    Zendesk(ZendeskSettings),
    /// BillForward's `/clients`.
    BillForward(BillForwardSettings),
}

impl ProviderKind {
    /// The provider's base URL when the gateway sends it a credential.
    #[must_use]
    pub fn credentialed_url(&self) -> Option<&Url> {
        match self {
            Self::Local => None,
            Self::Hydra(s) => s.api_key.as_ref().map(|_| &s.admin_url),
            Self::Rfc7591(s) => Some(&s.registration_endpoint),
            Self::Okta(s) => Some(&s.org_url),
            Self::Zendesk(s) => Some(&s.base_url),
            Self::BillForward(s) => Some(&s.base_url),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,sqlx=warn`.
    pub filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Pretty,
    /// One JSON object per line.
    Json,
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

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawConfig {
    server: RawServer,
    store: RawStore,
    cache: RawCache,
    provider: RawProvider,
    outbound: RawOutbound,
    log: RawLog,
    registration: RawRegistration,
    policies: BTreeMap<String, RawPolicy>,
    software_statement: RawSoftwareStatement,
    limits: RawLimits,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct RawRegistration {
    mode: String,
    rotate_registration_access_token: String,
    default_policy: String,
}

impl Default for RawRegistration {
    fn default() -> Self {
        Self {
            mode: "open".into(),
            rotate_registration_access_token: "never".into(),
            default_policy: "default".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct RawPolicy {
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    token_endpoint_auth_methods: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    default_scope: Option<String>,
    https_only: bool,
    redirect_hosts: Vec<String>,
    native_loopback_http: bool,
    native_custom_schemes: bool,
    native_schemes: Vec<String>,
    max_clients_per_software_id: Option<u64>,
    client_lifetime: Option<String>,
    client_secret_lifetime: Option<String>,
}

impl Default for RawPolicy {
    /// Keys left out mean what [`Policy::permissive`] means.
    fn default() -> Self {
        let permissive = Policy::permissive("");
        Self {
            grant_types: None,
            response_types: None,
            token_endpoint_auth_methods: None,
            scopes: None,
            default_scope: None,
            https_only: permissive.https_only,
            redirect_hosts: Vec::new(),
            native_loopback_http: permissive.native_loopback_http,
            native_custom_schemes: permissive.native_custom_schemes,
            native_schemes: Vec::new(),
            max_clients_per_software_id: None,
            client_lifetime: None,
            client_secret_lifetime: None,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawSoftwareStatement {
    required: bool,
    issuers: Vec<RawIssuer>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawIssuer {
    issuer: String,
    jwks_uri: Option<String>,
    jwks: Option<String>,
    allowed_algs: Vec<String>,
    software_ids: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct RawLimits {
    register_per_ip: String,
    manage_per_client: String,
    register_per_initial_access_token: String,
    register_per_software_id: String,
    register_per_redirect_host: String,
    auth_failures_per_ip: String,
    trusted_proxies: Vec<String>,
    client_ip_header: ClientIpHeader,
    max_tracked_keys: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            register_per_ip: "20/minute".into(),
            manage_per_client: "60/minute".into(),
            register_per_initial_access_token: "60/minute".into(),
            register_per_software_id: "unlimited".into(),
            register_per_redirect_host: "unlimited".into(),
            auth_failures_per_ip: "30/minute".into(),
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::XForwardedFor,
            max_tracked_keys: 100_000,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct RawServer {
    listen: String,
    public_url: String,
    max_body_bytes: u64,
    shutdown_timeout: String,
    header_read_timeout: String,
    idle_timeout: String,
    http2_keep_alive_interval: String,
    max_connections: u64,
    max_connections_per_ip: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<RawTls>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
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
            max_connections: 512,
            max_connections_per_ip: 64,
            tls: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct RawStore {
    url: String,
    max_connections: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Debug, Serialize, Deserialize)]
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

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct RawProvider {
    kind: String,
    timeout: String,
    retries: u32,
    circuit_failure_rate: f64,
    circuit_min_calls: u32,
    circuit_window: String,
    reconcile_interval: String,
    report_unknown_clients: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    lifespans: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initial_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subdomain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resource_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token_validity_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token_validity_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    list_separator: Option<String>,
}

impl Default for RawProvider {
    fn default() -> Self {
        Self {
            kind: "local".into(),
            timeout: "10s".into(),
            retries: 2,
            circuit_failure_rate: BreakerSettings::DEFAULT.failure_rate,
            circuit_min_calls: BreakerSettings::DEFAULT.min_calls,
            circuit_window: "30s".into(),
            reconcile_interval: "60s".into(),
            report_unknown_clients: true,
            issuer: None,
            admin_url: None,
            api_key: None,
            lifespans: BTreeMap::new(),
            owner: None,
            registration_endpoint: None,
            initial_access_token: None,
            org_url: None,
            api_token: None,
            access_token: None,
            subdomain: None,
            base_url: None,
            email: None,
            user_id: None,
            organization_id: None,
            resource_ids: Vec::new(),
            authorities: Vec::new(),
            access_token_validity_seconds: None,
            refresh_token_validity_seconds: None,
            list_separator: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
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

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct RawLog {
    format: String,
    filter: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            filter: "info,sqlx=warn".into(),
        }
    }
}

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
        let mut errors = Vec::new();
        apply_env(&mut table, env, &mut errors);
        let raw = RawConfig {
            server: section(&mut table, "server", &mut errors),
            store: section(&mut table, "store", &mut errors),
            cache: section(&mut table, "cache", &mut errors),
            provider: section(&mut table, "provider", &mut errors),
            outbound: section(&mut table, "outbound", &mut errors),
            log: section(&mut table, "log", &mut errors),
            registration: section(&mut table, "registration", &mut errors),
            policies: section(&mut table, "policies", &mut errors),
            software_statement: section(&mut table, "software_statement", &mut errors),
            limits: section(&mut table, "limits", &mut errors),
        };
        for key in table.keys() {
            errors.push(format!("unknown section `{key}`"));
        }
        let config = validate(raw, &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

impl ServerConfig {
    /// An absolute URL under the public base, e.g. `endpoint("/register")`.
    #[must_use]
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}

fn utf8_pair(key: OsString, value: OsString) -> Option<(String, String)> {
    Some((key.into_string().ok()?, value.into_string().ok()?))
}

/// Deserializes one section, recording unknown keys and type errors. A key
/// with a type error is reported, dropped (so its default applies) and the
/// section read again, so that one bad key hides no other error.
fn section<T: DeserializeOwned + Default>(
    table: &mut toml::Table,
    name: &str,
    errors: &mut Vec<String>,
) -> T {
    let mut keys = match table.remove(name) {
        None => return T::default(),
        Some(toml::Value::Table(keys)) => keys,
        Some(_) => {
            errors.push(format!("`{name}` must be a section"));
            return T::default();
        }
    };
    loop {
        let mut unknown = Vec::new();
        let result = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            toml::Value::Table(keys.clone()),
            &mut |path: serde_ignored::Path<'_>| unknown.push(path.to_string()),
        ));
        match result {
            Ok(section) => {
                errors.extend(
                    unknown
                        .into_iter()
                        .map(|key| format!("unknown key `{name}.{key}`")),
                );
                return section;
            }
            Err(e) => {
                errors.push(format!("`{name}.{}`: {}", e.path(), e.inner()));
                let key = e.path().iter().next().map(ToString::to_string);
                if key.as_ref().and_then(|k| keys.remove(k)).is_none() {
                    return T::default();
                }
            }
        }
    }
}

/// Writes `DCR_GATEWAY__A__B=value` into `table` as `a.b = value`. Values of
/// string keys stay strings; others are read as TOML literals when they parse.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    errors: &mut Vec<String>,
) {
    let defaults = toml::Table::try_from(RawConfig::default()).unwrap_or_default();
    for (key, raw) in env {
        let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let Some((leaf, parents)) = path.split_last() else {
            continue;
        };
        if path.iter().any(String::is_empty) {
            errors.push(format!("environment variable `{key}` names no config key"));
            continue;
        }
        let value = match lookup(&defaults, &path) {
            Some(toml::Value::String(_)) => toml::Value::String(raw),
            _ => toml_literal(&raw).unwrap_or(toml::Value::String(raw)),
        };
        if let Err(part) = insert_at(table, parents, leaf, value) {
            errors.push(format!(
                "environment variable `{key}`: `{part}` is not a section"
            ));
        }
    }
}

/// Inserts `value` at `parents.leaf`, creating sections; on a non-section in
/// the way, returns its name.
fn insert_at(
    table: &mut toml::Table,
    parents: &[String],
    leaf: &str,
    value: toml::Value,
) -> Result<(), String> {
    let Some((first, rest)) = parents.split_first() else {
        table.insert(leaf.to_owned(), value);
        return Ok(());
    };
    match table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        toml::Value::Table(inner) => insert_at(inner, rest, leaf, value),
        _ => Err(first.clone()),
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let value = table.get(first)?;
    match (rest.is_empty(), value) {
        (true, value) => Some(value),
        (false, toml::Value::Table(inner)) => lookup(inner, rest),
        (false, _) => None,
    }
}

/// `raw` read as one TOML value, or `None`: nothing may follow the value (a
/// `true # comment` is text, not `true`).
fn toml_literal(raw: &str) -> Option<toml::Value> {
    toml::Value::deserialize(toml::de::ValueDeserializer::new(raw.trim())).ok()
}

fn validate(raw: RawConfig, errors: &mut Vec<String>) -> Config {
    let mut check = |result: Result<(), String>| {
        if let Err(e) = result {
            errors.push(e);
        }
    };
    let listen = raw.server.listen.parse().unwrap_or_else(|e| {
        check(Err(format!("server.listen `{}`: {e}", raw.server.listen)));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let public_url = match Url::parse(&raw.server.public_url) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            url.as_str().trim_end_matches('/').to_owned()
        }
        _ => {
            check(Err(format!(
                "server.public_url `{}` must be an http(s) URL without query or fragment",
                raw.server.public_url
            )));
            String::new()
        }
    };
    let max_body_bytes = usize::try_from(raw.server.max_body_bytes)
        .ok()
        .filter(|n| (1024..=16 * 1024 * 1024).contains(n))
        .unwrap_or_else(|| {
            check(Err(
                "server.max_body_bytes must be between 1024 and 16777216".into(),
            ));
            65_536
        });

    let store_url = raw.store.url;
    if Backend::of(&store_url).is_none() {
        check(Err(format!(
            "store.url `{store_url}`: supported stores are sqlite://PATH and postgres://…"
        )));
    }
    if raw.store.max_connections == 0 {
        check(Err("store.max_connections must be positive".into()));
    }
    let cache_ttl = duration(&raw.cache.ttl, "cache.ttl", &mut check);
    if raw.cache.max_bytes < 1024 * 1024 && raw.cache.max_bytes != 0 {
        check(Err(format!(
            "cache.max_bytes ({}) must be 0 (no cache) or at least 1048576",
            raw.cache.max_bytes
        )));
    }
    let shutdown_timeout = duration(
        &raw.server.shutdown_timeout,
        "server.shutdown_timeout",
        &mut check,
    );
    let mut positive = |text: &str, key: &str| {
        let value = duration(text, key, &mut check);
        if value.is_zero() {
            check(Err(format!("{key} must be more than zero")));
        }
        value
    };
    let header_read_timeout = positive(
        &raw.server.header_read_timeout,
        "server.header_read_timeout",
    );
    let idle_timeout = positive(&raw.server.idle_timeout, "server.idle_timeout");
    let http2_keep_alive_interval = positive(
        &raw.server.http2_keep_alive_interval,
        "server.http2_keep_alive_interval",
    );
    let mut count = |value: u64, key: &str| {
        usize::try_from(value)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                check(Err(format!("{key} must be a positive number")));
                1
            })
    };
    let max_connections = count(raw.server.max_connections, "server.max_connections");
    let max_connections_per_ip = count(
        raw.server.max_connections_per_ip,
        "server.max_connections_per_ip",
    );
    let tls = raw.server.tls.map(|tls| {
        for (key, path) in [("cert", &tls.cert), ("key", &tls.key)] {
            if let Err(e) = std::fs::metadata(path) {
                check(Err(format!(
                    "server.tls.{key}: cannot read {}: {e}",
                    path.display()
                )));
            }
        }
        TlsConfig {
            cert: tls.cert,
            key: tls.key,
        }
    });
    let encryption_key = raw.store.encryption_key.as_deref().and_then(|key| {
        Sealer::from_base64(key)
            .map_err(|e| check(Err(format!("store.encryption_key: {e}"))))
            .ok()
    });

    let kind = raw.provider.kind.clone();
    let provider = provider(raw.provider, &mut check);
    if let Some(sealed) = sealed_state(&kind) {
        if raw.store.encryption_key.is_none() {
            check(Err(format!(
                "store.encryption_key is required with provider.kind = \"{kind}\" (it seals {sealed} at rest)"
            )));
        }
    }

    let timeout = humantime::parse_duration(&raw.outbound.timeout).unwrap_or_else(|e| {
        check(Err(format!(
            "outbound.timeout `{}`: {e}",
            raw.outbound.timeout
        )));
        Duration::from_secs(5)
    });
    let max_response_bytes = usize::try_from(raw.outbound.max_response_bytes)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            check(Err("outbound.max_response_bytes must be positive".into()));
            65_536
        });
    let mut extra_root_certificates = Vec::new();
    for path in &raw.outbound.extra_root_certificates {
        match std::fs::read(path) {
            Ok(pem) => extra_root_certificates.push(pem),
            Err(e) => check(Err(format!(
                "outbound.extra_root_certificates: cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    let format = match raw.log.format.as_str() {
        "pretty" => LogFormat::Pretty,
        "json" => LogFormat::Json,
        other => {
            check(Err(format!(
                "log.format `{other}` must be `pretty` or `json`"
            )));
            LogFormat::Pretty
        }
    };
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log.filter) {
        check(Err(format!("log.filter `{}`: {e}", raw.log.filter)));
    }

    let registration = registration(raw.registration, raw.policies, &mut check);
    let software_statement = software_statement(
        raw.software_statement,
        raw.outbound.allow_private_networks,
        &mut check,
    );
    let limits = limits(raw.limits, &mut check);

    Config {
        registration,
        software_statement,
        limits,
        server: ServerConfig {
            listen,
            public_url,
            max_body_bytes,
            shutdown_timeout,
            header_read_timeout,
            idle_timeout,
            http2_keep_alive_interval,
            max_connections,
            max_connections_per_ip,
            tls,
        },
        store: StoreConfig {
            url: store_url,
            max_connections: raw.store.max_connections.max(1),
            encryption_key,
        },
        cache: CacheConfig {
            max_clients: raw.cache.max_clients,
            max_bytes: raw.cache.max_bytes,
            ttl: cache_ttl,
        },
        provider,
        outbound: OutboundSettings {
            allow_private_networks: raw.outbound.allow_private_networks,
            timeout,
            max_response_bytes,
            extra_root_certificates,
        },
        log: LogConfig {
            format,
            filter: raw.log.filter,
        },
    }
}

fn registration(
    raw: RawRegistration,
    raw_policies: BTreeMap<String, RawPolicy>,
    check: &mut impl FnMut(Result<(), String>),
) -> RegistrationConfig {
    let mode = match raw.mode.as_str() {
        "open" => RegistrationMode::Open,
        "initial_access_token" => RegistrationMode::InitialAccessToken,
        other => {
            check(Err(format!(
                "registration.mode `{other}` must be `open` or `initial_access_token`"
            )));
            RegistrationMode::InitialAccessToken
        }
    };
    let rotation = match raw.rotate_registration_access_token.as_str() {
        "never" => TokenRotation::Never,
        "on_update" => TokenRotation::OnUpdate,
        other => {
            check(Err(format!(
                "registration.rotate_registration_access_token `{other}` must be `on_update` or `never`"
            )));
            TokenRotation::Never
        }
    };
    let mut policies: BTreeMap<String, Policy> = raw_policies
        .into_iter()
        .map(|(name, raw)| {
            let policy = policy(&name, raw, check);
            (name, policy)
        })
        .collect();
    if policies.is_empty() {
        policies.insert("default".into(), Policy::permissive("default"));
    }
    if !policies.contains_key(&raw.default_policy) {
        check(Err(format!(
            "registration.default_policy `{}` is not a configured policy",
            raw.default_policy
        )));
    }
    RegistrationConfig {
        mode,
        rotation,
        policies,
        default_policy: raw.default_policy,
    }
}

fn policy(name: &str, raw: RawPolicy, check: &mut impl FnMut(Result<(), String>)) -> Policy {
    let key = |k: &str| format!("policies.{name}.{k}");
    let mut names = |list: Option<Vec<String>>, k: &str, known: &dyn Fn(&str) -> bool| {
        if let Some(list) = &list {
            for value in list.iter().filter(|v| !known(v)) {
                check(Err(format!("{}: `{value}` is not supported", key(k))));
            }
        }
        list
    };
    let grant_types = names(raw.grant_types, "grant_types", &|v| {
        GrantType::parse(v).is_some()
    })
    .map(|list| list.iter().filter_map(|v| GrantType::parse(v)).collect());
    let response_types = names(raw.response_types, "response_types", &is_response_type);
    let token_endpoint_auth_methods = names(
        raw.token_endpoint_auth_methods,
        "token_endpoint_auth_methods",
        &|v| AuthMethod::parse(v).is_some(),
    )
    .map(|list| list.iter().filter_map(|v| AuthMethod::parse(v)).collect());
    let redirect_hosts = raw
        .redirect_hosts
        .iter()
        .filter_map(|h| {
            HostPattern::parse(h)
                .map_err(|e| check(Err(format!("{}: {e}", key("redirect_hosts")))))
                .ok()
        })
        .collect();
    if let Some(scopes) = &raw.scopes {
        for scope in scopes.iter().filter(|s| !is_scope_token(s)) {
            check(Err(format!(
                "{}: `{}` is not a scope token (printable ASCII without space, `\"` or `\\`)",
                key("scopes"),
                scope.escape_debug()
            )));
        }
    }
    if let Some(default) = &raw.default_scope {
        if !default.split(' ').all(is_scope_token) {
            check(Err(format!(
                "{} `{}` must be scope tokens separated by single spaces",
                key("default_scope"),
                default.escape_debug()
            )));
        } else if let Some(scopes) = &raw.scopes {
            for word in default
                .split(' ')
                .filter(|w| !scopes.iter().any(|s| s == w))
            {
                check(Err(format!(
                    "{}: `{word}` is not in {}, so every registration without a scope \
                     would be refused",
                    key("default_scope"),
                    key("scopes")
                )));
            }
        }
    }
    let native_schemes = raw
        .native_schemes
        .iter()
        .filter_map(|s| {
            parse_scheme(s)
                .map_err(|e| check(Err(format!("{}: {e}", key("native_schemes")))))
                .ok()
        })
        .collect();
    let mut lifetime = |text: Option<String>, k: &str| text.map(|t| duration(&t, &key(k), check));
    let client_lifetime = lifetime(raw.client_lifetime, "client_lifetime");
    let client_secret_lifetime = lifetime(raw.client_secret_lifetime, "client_secret_lifetime");
    Policy {
        name: name.to_owned(),
        grant_types,
        response_types,
        token_endpoint_auth_methods,
        scopes: raw.scopes,
        default_scope: raw.default_scope,
        https_only: raw.https_only,
        redirect_hosts,
        native_loopback_http: raw.native_loopback_http,
        native_custom_schemes: raw.native_custom_schemes,
        native_schemes,
        max_clients_per_software_id: raw.max_clients_per_software_id,
        client_lifetime,
        client_secret_lifetime,
    }
}

/// Asymmetric algorithms accepted for software statements: never `none`,
/// never an HMAC (which a public key would turn into a forgery).
const STATEMENT_ALGS: [(&str, jsonwebtoken::Algorithm); 9] = [
    ("RS256", jsonwebtoken::Algorithm::RS256),
    ("RS384", jsonwebtoken::Algorithm::RS384),
    ("RS512", jsonwebtoken::Algorithm::RS512),
    ("PS256", jsonwebtoken::Algorithm::PS256),
    ("PS384", jsonwebtoken::Algorithm::PS384),
    ("PS512", jsonwebtoken::Algorithm::PS512),
    ("ES256", jsonwebtoken::Algorithm::ES256),
    ("ES384", jsonwebtoken::Algorithm::ES384),
    ("EdDSA", jsonwebtoken::Algorithm::EdDSA),
];

/// `allow_private_networks` is `outbound.allow_private_networks`: without
/// it, a `jwks_uri` on a private host could never be fetched.
fn software_statement(
    raw: RawSoftwareStatement,
    allow_private_networks: bool,
    check: &mut impl FnMut(Result<(), String>),
) -> SoftwareStatementConfig {
    let mut issuers = Vec::new();
    for (i, raw) in raw.issuers.into_iter().enumerate() {
        let key = |k: &str| format!("software_statement.issuers[{i}].{k}");
        if raw.issuer.is_empty() {
            check(Err(format!("{} is required", key("issuer"))));
        }
        let keys = match (raw.jwks_uri, raw.jwks) {
            (Some(uri), None) => match Url::parse(&uri) {
                Ok(url) if !allow_private_networks && names_private_host(&url) => {
                    check(Err(format!(
                        "{} `{uri}` is on a private or loopback address, which the outbound \
                         client refuses (set outbound.allow_private_networks = true to allow it)",
                        key("jwks_uri")
                    )));
                    None
                }
                Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {
                    Some(IssuerKeys::Uri(url))
                }
                _ => {
                    check(Err(format!(
                        "{} `{uri}` must be an http(s) URL",
                        key("jwks_uri")
                    )));
                    None
                }
            },
            (None, Some(text)) => match serde_json::from_str(&text) {
                Ok(set) => Some(IssuerKeys::Set(set)),
                Err(e) => {
                    check(Err(format!("{} is not a JWK set: {e}", key("jwks"))));
                    None
                }
            },
            _ => {
                check(Err(format!(
                    "{}: exactly one of jwks_uri and jwks is required",
                    key("issuer")
                )));
                None
            }
        };
        let mut allowed_algs = Vec::new();
        for alg in &raw.allowed_algs {
            match STATEMENT_ALGS.iter().find(|(name, _)| name == alg) {
                Some((_, algorithm)) => allowed_algs.push(*algorithm),
                None => check(Err(format!(
                    "{} `{alg}` is not allowed (asymmetric only: {})",
                    key("allowed_algs"),
                    STATEMENT_ALGS.map(|(n, _)| n).join(", ")
                ))),
            }
        }
        if raw.allowed_algs.is_empty() {
            check(Err(format!(
                "{} must name at least one algorithm",
                key("allowed_algs")
            )));
        }
        if let Some(keys) = keys {
            issuers.push(TrustedIssuer {
                issuer: raw.issuer,
                keys,
                allowed_algs,
                software_ids: raw.software_ids,
            });
        }
    }
    if raw.required && issuers.is_empty() {
        check(Err(
            "software_statement.required needs at least one trusted issuer".into(),
        ));
    }
    SoftwareStatementConfig {
        required: raw.required,
        issuers,
    }
}

fn limits(raw: RawLimits, check: &mut impl FnMut(Result<(), String>)) -> LimitsConfig {
    let mut quota = |text: &str, k: &str| {
        Quota::parse(text)
            .map_err(|e| check(Err(format!("limits.{k}: {e}"))))
            .ok()
            .flatten()
    };
    let register_per_ip = quota(&raw.register_per_ip, "register_per_ip");
    let manage_per_client = quota(&raw.manage_per_client, "manage_per_client");
    let register_per_initial_access_token = quota(
        &raw.register_per_initial_access_token,
        "register_per_initial_access_token",
    );
    let register_per_software_id = quota(&raw.register_per_software_id, "register_per_software_id");
    let register_per_redirect_host = quota(
        &raw.register_per_redirect_host,
        "register_per_redirect_host",
    );
    let auth_failures_per_ip = quota(&raw.auth_failures_per_ip, "auth_failures_per_ip");
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .filter_map(|cidr| {
            cidr.parse::<ipnet::IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    check(Err(format!(
                        "limits.trusted_proxies: `{cidr}` is not a CIDR"
                    )))
                })
                .ok()
        })
        .collect();
    if raw.max_tracked_keys == 0 {
        check(Err("limits.max_tracked_keys must be positive".into()));
    }
    LimitsConfig {
        register_per_ip,
        manage_per_client,
        register_per_initial_access_token,
        register_per_software_id,
        register_per_redirect_host,
        auth_failures_per_ip,
        trusted_proxies,
        client_ip_header: raw.client_ip_header,
        max_tracked_keys: raw.max_tracked_keys.max(1),
    }
}

/// What a provider kind keeps per client that is sealed with
/// `store.encryption_key`, for the kinds that keep anything.
fn sealed_state(kind: &str) -> Option<&'static str> {
    match kind {
        "rfc7591" => Some("the upstream's registration access tokens"),
        "okta" => Some("the names Okta holds for clients registered without one"),
        "zendesk" => Some("Zendesk's record ids"),
        _ => None,
    }
}

fn duration(text: &str, key: &str, check: &mut impl FnMut(Result<(), String>)) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|e| {
        check(Err(format!("{key} `{text}`: {e}")));
        Duration::from_secs(1)
    })
}

fn http_url(
    text: Option<&str>,
    key: &str,
    kind: &str,
    check: &mut impl FnMut(Result<(), String>),
) -> Option<Url> {
    let text = required(text, key, kind, check)?;
    match Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Some(url)
        }
        _ => {
            check(Err(format!(
                "{key} `{text}` must be an http(s) URL with a host"
            )));
            None
        }
    }
}

/// A key that `provider.kind` requires, or an error naming it.
fn required<T>(
    value: Option<T>,
    key: &str,
    kind: &str,
    check: &mut impl FnMut(Result<(), String>),
) -> Option<T> {
    if value.is_none() {
        check(Err(format!(
            "{key} is required with provider.kind = \"{kind}\""
        )));
    }
    value
}

fn okta(
    raw: RawProvider,
    resilience: Resilience,
    check: &mut impl FnMut(Result<(), String>),
) -> Option<OktaSettings> {
    let org_url = http_url(raw.org_url.as_deref(), "provider.org_url", "okta", check);
    let issuer = match raw.issuer.as_deref() {
        Some(text) => http_url(Some(text), "provider.issuer", "okta", check),
        None => org_url.clone(),
    };
    let auth = match (raw.api_token, raw.access_token) {
        (Some(token), None) => Some(ProviderAuth::Ssws(Credential::new(token))),
        (None, Some(token)) => Some(ProviderAuth::Bearer(Credential::new(token))),
        _ => {
            check(Err(
                "provider.kind = \"okta\" needs exactly one of provider.api_token and \
                 provider.access_token"
                    .into(),
            ));
            None
        }
    };
    Some(OktaSettings {
        org_url: org_url?,
        issuer: issuer?,
        auth: auth?,
        resilience,
    })
}

fn zendesk(
    raw: RawProvider,
    resilience: Resilience,
    check: &mut impl FnMut(Result<(), String>),
) -> Option<ZendeskSettings> {
    let base_url = match (&raw.subdomain, &raw.base_url) {
        (Some(subdomain), None) => {
            let valid = !subdomain.is_empty()
                && subdomain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                check(Err(format!(
                    "provider.subdomain `{subdomain}` must be letters, digits and hyphens"
                )));
            }
            Url::parse(&format!("https://{subdomain}.zendesk.com")).ok()
        }
        (None, Some(base)) => http_url(Some(base), "provider.base_url", "zendesk", check),
        _ => {
            check(Err(
                "provider.kind = \"zendesk\" needs exactly one of provider.subdomain and \
                 provider.base_url"
                    .into(),
            ));
            None
        }
    };
    let user_id = required(raw.user_id, "provider.user_id", "zendesk", check);
    let auth = match (raw.email, raw.api_token, raw.access_token) {
        (Some(email), Some(token), None) => Some(ProviderAuth::Basic {
            user: format!("{email}/token"),
            password: Credential::new(token),
        }),
        (None, None, Some(token)) => Some(ProviderAuth::Bearer(Credential::new(token))),
        _ => {
            check(Err(
                "provider.kind = \"zendesk\" needs provider.email with provider.api_token, \
                 or provider.access_token alone"
                    .into(),
            ));
            None
        }
    };
    Some(ZendeskSettings {
        base_url: base_url?,
        auth: auth?,
        user_id: user_id?,
        resilience,
    })
}

fn billforward(
    raw: RawProvider,
    resilience: Resilience,
    check: &mut impl FnMut(Result<(), String>),
) -> Option<BillForwardSettings> {
    const KIND: &str = "billforward";
    let base_url = http_url(raw.base_url.as_deref(), "provider.base_url", KIND, check);
    let api_token = required(raw.api_token, "provider.api_token", KIND, check);
    let organization_id = required(raw.organization_id, "provider.organization_id", KIND, check);
    let resource_ids = required(
        Some(raw.resource_ids).filter(|v| !v.is_empty()),
        "provider.resource_ids",
        KIND,
        check,
    );
    let authorities = required(
        Some(raw.authorities).filter(|v| !v.is_empty()),
        "provider.authorities",
        KIND,
        check,
    );
    let list_separator = raw.list_separator.unwrap_or_else(|| ",".into());
    if list_separator.is_empty() {
        check(Err("provider.list_separator must not be empty".into()));
    }
    for value in resource_ids.iter().chain(authorities.iter()).flatten() {
        if value.contains(&list_separator) {
            check(Err(format!(
                "provider.resource_ids and provider.authorities values must not contain the \
                 list separator `{list_separator}` (`{value}`)"
            )));
        }
    }
    Some(BillForwardSettings {
        base_url: base_url?,
        api_token: Credential::new(api_token?),
        organization_id: organization_id?,
        resource_ids: resource_ids?,
        authorities: authorities?,
        // Spring Security OAuth's defaults: 12 hours and 30 days.
        access_token_validity_seconds: raw.access_token_validity_seconds.unwrap_or(43_200),
        refresh_token_validity_seconds: raw.refresh_token_validity_seconds.unwrap_or(2_592_000),
        list_separator,
        resilience,
    })
}

fn provider(raw: RawProvider, check: &mut impl FnMut(Result<(), String>)) -> ProviderConfig {
    let timeout = duration(&raw.timeout, "provider.timeout", check);
    if !(raw.circuit_failure_rate > 0.0 && raw.circuit_failure_rate <= 1.0) {
        check(Err(format!(
            "provider.circuit_failure_rate `{}` must be above 0 and at most 1",
            raw.circuit_failure_rate
        )));
    }
    let window = duration(&raw.circuit_window, "provider.circuit_window", check);
    if window < Duration::from_secs(1) {
        check(Err("provider.circuit_window must be at least 1s".into()));
    }
    let resilience = Resilience {
        timeout,
        retries: raw.retries,
        breaker: BreakerSettings {
            failure_rate: raw.circuit_failure_rate,
            min_calls: raw.circuit_min_calls,
            window,
        },
    };
    let reconcile_interval = duration(
        &raw.reconcile_interval,
        "provider.reconcile_interval",
        check,
    );
    let report_unknown_clients = raw.report_unknown_clients;
    let kind_name = raw.kind.as_str();
    // A blank value would pass as present and fail at the first call.
    let texts = [
        ("issuer", &raw.issuer),
        ("admin_url", &raw.admin_url),
        ("api_key", &raw.api_key),
        ("owner", &raw.owner),
        ("registration_endpoint", &raw.registration_endpoint),
        ("initial_access_token", &raw.initial_access_token),
        ("org_url", &raw.org_url),
        ("api_token", &raw.api_token),
        ("access_token", &raw.access_token),
        ("subdomain", &raw.subdomain),
        ("base_url", &raw.base_url),
        ("email", &raw.email),
        ("organization_id", &raw.organization_id),
    ];
    for (key, value) in texts {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            check(Err(format!("provider.{key} is empty")));
        }
    }
    if raw.user_id.is_some_and(|id| id <= 0) {
        check(Err(
            "provider.user_id must be a positive Zendesk user id".into()
        ));
    }
    let present = [
        ("issuer", raw.issuer.is_some()),
        ("admin_url", raw.admin_url.is_some()),
        ("api_key", raw.api_key.is_some()),
        ("lifespans", !raw.lifespans.is_empty()),
        ("owner", raw.owner.is_some()),
        ("registration_endpoint", raw.registration_endpoint.is_some()),
        ("initial_access_token", raw.initial_access_token.is_some()),
        ("org_url", raw.org_url.is_some()),
        ("api_token", raw.api_token.is_some()),
        ("access_token", raw.access_token.is_some()),
        ("subdomain", raw.subdomain.is_some()),
        ("base_url", raw.base_url.is_some()),
        ("email", raw.email.is_some()),
        ("user_id", raw.user_id.is_some()),
        ("organization_id", raw.organization_id.is_some()),
        ("resource_ids", !raw.resource_ids.is_empty()),
        ("authorities", !raw.authorities.is_empty()),
        (
            "access_token_validity_seconds",
            raw.access_token_validity_seconds.is_some(),
        ),
        (
            "refresh_token_validity_seconds",
            raw.refresh_token_validity_seconds.is_some(),
        ),
        ("list_separator", raw.list_separator.is_some()),
    ];
    // `None` for a kind that does not exist: its keys cannot be judged.
    let allowed: Option<&[&str]> = match kind_name {
        "local" => Some(&[]),
        "hydra" => Some(&["issuer", "admin_url", "api_key", "lifespans", "owner"]),
        "rfc7591" => Some(&["issuer", "registration_endpoint", "initial_access_token"]),
        "okta" => Some(&["org_url", "issuer", "api_token", "access_token"]),
        "zendesk" => Some(&[
            "subdomain",
            "base_url",
            "email",
            "api_token",
            "access_token",
            "user_id",
        ]),
        "billforward" => Some(&[
            "base_url",
            "api_token",
            "organization_id",
            "resource_ids",
            "authorities",
            "access_token_validity_seconds",
            "refresh_token_validity_seconds",
            "list_separator",
        ]),
        other => {
            check(Err(format!(
                "provider.kind `{other}` is not supported; supported: local, hydra, rfc7591, \
                 okta, zendesk, billforward"
            )));
            None
        }
    };
    for (key, _) in present
        .iter()
        .filter(|(key, set)| *set && allowed.is_some_and(|a| !a.contains(key)))
    {
        check(Err(format!(
            "provider.{key} does not apply to provider.kind = \"{kind_name}\""
        )));
    }
    let kind = match kind_name {
        "hydra" => {
            let mut lifespans = BTreeMap::new();
            for (name, text) in &raw.lifespans {
                if LIFESPANS.contains(&name.as_str()) {
                    lifespans.insert(
                        name.clone(),
                        duration(text, &format!("provider.lifespans.{name}"), check),
                    );
                } else {
                    check(Err(format!(
                        "provider.lifespans.{name} is not a Hydra lifespan; known: {}",
                        LIFESPANS.join(", ")
                    )));
                }
            }
            let admin_url = http_url(
                raw.admin_url.as_deref(),
                "provider.admin_url",
                "hydra",
                check,
            );
            let issuer = http_url(raw.issuer.as_deref(), "provider.issuer", "hydra", check);
            match (admin_url, issuer) {
                (Some(admin_url), Some(issuer)) => ProviderKind::Hydra(HydraSettings {
                    admin_url,
                    issuer,
                    api_key: raw.api_key.map(Credential::new),
                    lifespans,
                    owner: raw.owner.unwrap_or_else(|| "dcr-gateway".into()),
                    resilience,
                }),
                // The errors are recorded; the configuration will be refused.
                _ => ProviderKind::Local,
            }
        }
        "rfc7591" => {
            let issuer = http_url(raw.issuer.as_deref(), "provider.issuer", "rfc7591", check);
            let endpoint = http_url(
                raw.registration_endpoint.as_deref(),
                "provider.registration_endpoint",
                "rfc7591",
                check,
            );
            match (issuer, endpoint) {
                (Some(issuer), Some(registration_endpoint)) => {
                    ProviderKind::Rfc7591(Rfc7591Settings {
                        issuer,
                        registration_endpoint,
                        initial_access_token: raw.initial_access_token.map(Credential::new),
                        resilience,
                    })
                }
                _ => ProviderKind::Local,
            }
        }
        "okta" => okta(raw, resilience, check).map_or(ProviderKind::Local, ProviderKind::Okta),
        "zendesk" => {
            zendesk(raw, resilience, check).map_or(ProviderKind::Local, ProviderKind::Zendesk)
        }
        "billforward" => billforward(raw, resilience, check)
            .map_or(ProviderKind::Local, ProviderKind::BillForward),
        _ => ProviderKind::Local,
    };
    ProviderConfig {
        kind,
        reconcile_interval,
        report_unknown_clients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn embedded_defaults() {
        let config = Config::from_sources("", env(&[])).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.server.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.server.max_body_bytes, 65_536);
        assert_eq!(config.store.url, "sqlite://data/dcr-gateway.db");
        assert!(matches!(config.provider.kind, ProviderKind::Local));
        assert_eq!(
            config.server.endpoint("/register"),
            "http://127.0.0.1:8080/register"
        );
    }

    #[test]
    fn environment_overrides_nest_with_double_underscores() {
        let config = Config::from_sources(
            "[server]\nlisten = \"0.0.0.0:1\"\n",
            env(&[
                ("DCR_GATEWAY__SERVER__LISTEN", "127.0.0.1:9999"),
                ("DCR_GATEWAY__SERVER__MAX_BODY_BYTES", "2048"),
                (
                    "DCR_GATEWAY__SERVER__PUBLIC_URL",
                    "https://dcr.example.com/",
                ),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(config.server.max_body_bytes, 2048);
        assert_eq!(config.server.public_url, "https://dcr.example.com");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let errors = Config::from_sources(
            "[server]\nlisten = \"nowhere\"\nlisen = 1\nmax_body_bytes = \"big\"\n\
             [provider]\nkind = \"acme\"\n[bogus]\nx = 1\n",
            env(&[("DCR_GATEWAY__LOG__FORMAT", "xml")]),
        )
        .unwrap_err()
        .0;
        let all = errors.join("\n");
        assert!(all.contains("unknown key `server.lisen`"), "{all}");
        assert!(all.contains("server.max_body_bytes"), "{all}");
        assert!(all.contains("provider.kind `acme`"), "{all}");
        assert!(all.contains("unknown section `bogus`"), "{all}");
        assert!(all.contains("log.format `xml`"), "{all}");
        assert!(all.contains("server.listen `nowhere`"), "{all}");
        assert_eq!(errors.len(), 6, "{all}");
    }

    #[test]
    fn an_environment_value_is_one_toml_value_and_nothing_after_it() {
        let errors = Config::from_sources(
            "",
            env(&[(
                "DCR_GATEWAY__OUTBOUND__ALLOW_PRIVATE_NETWORKS",
                "true # comment",
            )]),
        )
        .unwrap_err()
        .0
        .join("\n");
        assert!(
            errors.contains("outbound.allow_private_networks"),
            "{errors}"
        );
        let config = Config::from_sources(
            "",
            env(&[
                ("DCR_GATEWAY__OUTBOUND__ALLOW_PRIVATE_NETWORKS", " true "),
                ("DCR_GATEWAY__SERVER__MAX_BODY_BYTES", "2048"),
            ]),
        )
        .unwrap();
        assert!(config.outbound.allow_private_networks);
        assert_eq!(config.server.max_body_bytes, 2048);
    }

    fn provider_errors(toml: &str) -> String {
        Config::from_sources(toml, env(&[]))
            .unwrap_err()
            .0
            .join("\n")
    }

    #[test]
    fn okta_zendesk_and_billforward_keys_are_checked() {
        let all = provider_errors(
            "[provider]\nkind = \"okta\"\norg_url = \"ftp://x\"\napi_token = \"a\"\n\
             access_token = \"b\"\nuser_id = 3\n",
        );
        assert!(all.contains("provider.org_url `ftp://x`"), "{all}");
        assert!(
            all.contains("exactly one of provider.api_token and provider.access_token"),
            "{all}"
        );
        assert!(all.contains("provider.user_id does not apply"), "{all}");

        let all =
            provider_errors("[provider]\nkind = \"zendesk\"\nsubdomain = \"a.b\"\nemail = \"e\"\n");
        assert!(all.contains("provider.subdomain `a.b`"), "{all}");
        assert!(all.contains("provider.user_id is required"), "{all}");
        assert!(
            all.contains("provider.email with provider.api_token"),
            "{all}"
        );

        let all = provider_errors(
            "[provider]\nkind = \"billforward\"\nbase_url = \"https://bf.example.com/v1\"\n\
             api_token = \"t\"\norganization_id = \"O\"\nresource_ids = [\"a,b\"]\n\
             list_separator = \",\"\n",
        );
        assert!(all.contains("provider.authorities is required"), "{all}");
        assert!(all.contains("must not contain the list separator"), "{all}");
    }

    #[test]
    fn a_zendesk_subdomain_names_its_host() {
        let config = Config::from_sources(
            "[store]\nencryption_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"\n\
             [provider]\nkind = \"zendesk\"\nsubdomain = \"acme\"\naccess_token = \"t\"\n\
             user_id = 7\n",
            env(&[]),
        )
        .unwrap();
        let ProviderKind::Zendesk(settings) = config.provider.kind else {
            panic!("expected the zendesk backend");
        };
        assert_eq!(settings.base_url.as_str(), "https://acme.zendesk.com/");
        assert_eq!(settings.user_id, 7);
    }
}
