//! `[front]`: whether the gateway is the authorization server apps see, and
//! the bounds of its transactions, codes and rate limits.

use std::time::Duration;

use serde::Deserialize;

use super::resources::AllowedResources;
use super::tokens::keys::{PUBLISH_AHEAD, SigningAlgorithm};
use super::tokens::{OWN_CLAIMS, SubjectType, TokenIssuer};
use crate::domain::SecretHash;
use crate::limiter::Quota;
use crate::provider::ProviderKind;
use crate::settings::{Report, duration};

/// `[front]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawFront {
    enabled: bool,
    transaction_ttl: String,
    code_ttl: String,
    max_transactions: u64,
    localhost_any_port: bool,
    #[serde(deserialize_with = "Quota::setting")]
    authorize_per_ip: Option<Quota>,
    #[serde(deserialize_with = "Quota::setting")]
    token_per_ip: Option<Quota>,
    consent_lifetime: String,
    refresh_token_lifetime: String,
    allowed_resources: Vec<String>,
    tokens: Option<String>,
    access_token_lifetime: String,
    signing_algorithm: String,
    signing_key_rotation: String,
    resource_servers: Vec<RawResourceServer>,
    claims: Vec<String>,
    subject_type: String,
    cimd: RawCimd,
}

/// `[[front.resource_servers]]` as written. `Debug` leaves out the secret.
#[derive(Deserialize)]
struct RawResourceServer {
    resource: String,
    client_id: String,
    client_secret: String,
}

impl std::fmt::Debug for RawResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResourceServer")
            .field("resource", &self.resource)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// `[front.cimd]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawCimd {
    enabled: bool,
    allowed_hosts: Vec<String>,
    denied_hosts: Vec<String>,
    private_hosts: Vec<String>,
    max_per_host: u64,
    max_documents: u64,
    max_document_bytes: usize,
    min_cache: String,
    max_cache: String,
    #[serde(deserialize_with = "Quota::setting")]
    fetches_per_host: Option<Quota>,
    consent_page: bool,
    policy: Option<String>,
    idle_lifetime: String,
}

impl Default for RawCimd {
    fn default() -> Self {
        Self {
            enabled: false,
            allowed_hosts: Vec::new(),
            denied_hosts: Vec::new(),
            private_hosts: Vec::new(),
            max_per_host: 100,
            max_documents: 10_000,
            max_document_bytes: 5120,
            min_cache: "5m".into(),
            max_cache: "24h".into(),
            fetches_per_host: Quota::per_minute(30),
            consent_page: false,
            policy: None,
            idle_lifetime: "30d".into(),
        }
    }
}

impl Default for RawFront {
    fn default() -> Self {
        Self {
            enabled: false,
            transaction_ttl: "10m".into(),
            code_ttl: "60s".into(),
            max_transactions: 100_000,
            localhost_any_port: false,
            authorize_per_ip: Quota::per_minute(60),
            token_per_ip: Quota::per_minute(120),
            consent_lifetime: "30d".into(),
            refresh_token_lifetime: "30d".into(),
            allowed_resources: Vec::new(),
            tokens: None,
            access_token_lifetime: "1h".into(),
            signing_algorithm: "ES256".into(),
            signing_key_rotation: "90d".into(),
            resource_servers: Vec::new(),
            claims: Vec::new(),
            subject_type: "public".into(),
            cimd: RawCimd::default(),
        }
    }
}

/// The validated `[front]` settings.
#[derive(Debug, Clone)]
pub struct FrontSettings {
    /// Whether the front is on (`/authorize`, `/callback`, `/token`, and
    /// discovery naming the gateway as issuer).
    pub enabled: bool,
    /// How long an app has between `/authorize` and `/callback`.
    pub transaction_ttl: Duration,
    /// How long a gateway code may wait for `/token`.
    pub code_ttl: Duration,
    /// Most logins the store keeps at once, from the provider's answer
    /// until they expire (all instances together, as counted at the last
    /// sweep plus this instance's since). Logins in progress are stored
    /// nowhere.
    pub max_transactions: u64,
    /// Whether a registered `http://localhost` redirect URI matches on any
    /// port, as the loopback address literals always do (RFC 8252 §7.3, §8.3).
    pub localhost_any_port: bool,
    /// Requests to `/authorize` per caller address (`None`: unlimited).
    pub authorize_per_ip: Option<Quota>,
    /// Requests to `/token` per caller address (`None`: unlimited).
    pub token_per_ip: Option<Quota>,
    /// How long a browser remembers a user's consent to a client (broker
    /// mode; zero: the page is shown every time).
    pub consent_lifetime: Duration,
    /// How long a refresh token of the gateway's (broker mode) stays
    /// usable when it is not used; each use rotates it and starts the
    /// time again.
    pub refresh_token_lifetime: Duration,
    /// The RFC 8707 resources apps may ask for (empty: any).
    pub allowed_resources: AllowedResources,
    /// Who issues the access tokens apps get.
    pub tokens: TokenIssuer,
    /// How long the gateway's own access tokens live.
    pub access_token_lifetime: Duration,
    /// The algorithm the gateway's new signing keys sign with.
    pub signing_algorithm: SigningAlgorithm,
    /// How long a signing key signs before the gateway replaces it
    /// (`None`: until the operator does, `dcr-gateway keys rotate`).
    pub signing_key_rotation: Option<Duration>,
    /// The resource servers that may introspect the gateway's tokens made
    /// out to them.
    pub resource_servers: Vec<ResourceServer>,
    /// The provider's user claims (from its ID token) copied into the
    /// gateway's tokens and userinfo answers.
    pub claims: Vec<String>,
    /// Whether the `sub` of the gateway's tokens is the provider's or
    /// pairwise per resource.
    pub subject_type: SubjectType,
    /// `[front.cimd]`: clients named by Client ID Metadata Documents.
    pub cimd: CimdSettings,
}

/// A resource server (an MCP server) that may introspect the gateway's
/// tokens made out to its `resource` (RFC 7662), authenticating with its
/// id and secret (kept as a digest).
#[derive(Debug, Clone)]
pub struct ResourceServer {
    /// The resource it serves: the audience of the tokens it may see.
    pub resource: String,
    /// Its id.
    pub client_id: String,
    /// Its secret's digest.
    pub secret: SecretHash,
}

/// `[front.cimd]`: whether `https` client ids name Client ID Metadata
/// Documents, and the operator's bounds on them.
#[derive(Debug, Clone)]
pub struct CimdSettings {
    /// Whether such client ids are accepted (and announced).
    pub enabled: bool,
    /// Hosts documents may come from (`example.com`, `*.example.com`);
    /// empty: any host.
    pub allowed_hosts: Vec<String>,
    /// Hosts documents never come from, in the same patterns.
    pub denied_hosts: Vec<String>,
    /// Hosts whose documents may be fetched from loopback or private
    /// addresses, and over plain `http` (tests and labs only).
    pub private_hosts: Vec<String>,
    /// Most documents (so provider clients) per host.
    pub max_per_host: u64,
    /// Most documents (so provider clients) in all.
    pub max_documents: u64,
    /// Largest document accepted, in bytes.
    pub max_document_bytes: usize,
    /// Shortest time a fetched document is kept (whatever its headers say).
    pub min_cache: Duration,
    /// Longest time a fetched document is kept.
    pub max_cache: Duration,
    /// Document fetches per host (`None`: unlimited).
    pub fetches_per_host: Option<Quota>,
    /// Whether the gateway shows its own page (the client, its document's
    /// host, and where the user will be sent back) before the provider.
    pub consent_page: bool,
    /// The registration policy of their clients (`None`: the default
    /// one); with a `client_lifetime`, the expiry janitor removes them and
    /// the next use registers them again.
    pub policy: Option<String>,
    /// How long a document's client may go unused before the janitor
    /// removes it (here and at the provider); `None`: never.
    pub idle_lifetime: Option<Duration>,
}

impl FrontSettings {
    /// Reads `[front]`, reporting every problem; `broker` says whether the
    /// provider is broker mode's (where the gateway's tokens are the
    /// default).
    pub fn read(keys: toml::Table, broker: bool, report: &mut Report) -> Self {
        let raw: RawFront = report.section("front", keys);
        let transaction_ttl = positive(&raw.transaction_ttl, "front.transaction_ttl", report);
        let code_ttl = positive(&raw.code_ttl, "front.code_ttl", report);
        if raw.max_transactions == 0 {
            report.error("front.max_transactions must be positive");
        }
        let cimd = CimdSettings::read(raw.cimd, report);
        let consent_lifetime = duration(&raw.consent_lifetime, "front.consent_lifetime", report);
        let refresh_token_lifetime = positive(
            &raw.refresh_token_lifetime,
            "front.refresh_token_lifetime",
            report,
        );
        let allowed_resources =
            AllowedResources::new(raw.allowed_resources).unwrap_or_else(|problem| {
                report.error(format!("front.allowed_resources: {problem}"));
                AllowedResources::default()
            });
        let default_issuer = if broker { "gateway" } else { "provider" };
        let tokens = match raw.tokens.as_deref().unwrap_or(default_issuer) {
            "provider" => TokenIssuer::Provider,
            "gateway" => TokenIssuer::Gateway,
            other => {
                report.error(format!(
                    "front.tokens `{other}` must be \"provider\" or \"gateway\""
                ));
                TokenIssuer::Provider
            }
        };
        let access_token_lifetime = positive(
            &raw.access_token_lifetime,
            "front.access_token_lifetime",
            report,
        );
        if access_token_lifetime > Duration::from_secs(86_400) {
            report.error("front.access_token_lifetime must be at most 24h");
        }
        let signing_algorithm =
            SigningAlgorithm::named(&raw.signing_algorithm).unwrap_or_else(|| {
                let allowed: Vec<String> = SigningAlgorithm::ALL
                    .iter()
                    .map(|algorithm| format!("\"{}\"", algorithm.name()))
                    .collect();
                report.error(format!(
                    "front.signing_algorithm `{}` must be one of {}",
                    raw.signing_algorithm,
                    allowed.join(", ")
                ));
                SigningAlgorithm::Es256
            });
        let rotation = duration(
            &raw.signing_key_rotation,
            "front.signing_key_rotation",
            report,
        );
        let shortest = MIN_KEY_ROTATION.max(PUBLISH_AHEAD.saturating_add(access_token_lifetime));
        if !rotation.is_zero() && rotation < shortest {
            report.error(format!(
                "front.signing_key_rotation must be \"0s\" (off) or at least {} (the key's \
                 publication ahead plus front.access_token_lifetime, and at least a day)",
                humantime::format_duration(shortest)
            ));
        }
        let resource_servers = raw
            .resource_servers
            .into_iter()
            .filter_map(|server| {
                let blank = server.client_id.trim().is_empty() || server.client_secret.is_empty();
                let resource_ok = server.resource.starts_with("https://")
                    || server.resource.starts_with("http://");
                if blank || !resource_ok {
                    report.error(
                        "front.resource_servers: each needs an http(s) resource, a client_id and \
                         a client_secret",
                    );
                    return None;
                }
                Some(ResourceServer {
                    resource: server.resource,
                    client_id: server.client_id,
                    secret: SecretHash::of(&server.client_secret),
                })
            })
            .collect();
        let subject_type = match raw.subject_type.as_str() {
            "public" => SubjectType::Public,
            "pairwise" => SubjectType::Pairwise,
            other => {
                report.error(format!(
                    "front.subject_type `{other}` must be \"public\" or \"pairwise\""
                ));
                SubjectType::Public
            }
        };
        if let Some(claim) = raw
            .claims
            .iter()
            .find(|claim| OWN_CLAIMS.contains(&claim.as_str()))
        {
            report.error(format!(
                "front.claims: `{claim}` is a claim the gateway sets itself; list the \
                 provider's user claims to copy (email, name, groups, ...)"
            ));
        }
        Self {
            tokens,
            claims: raw.claims,
            subject_type,
            access_token_lifetime,
            signing_algorithm,
            signing_key_rotation: (!rotation.is_zero()).then_some(rotation),
            resource_servers,
            allowed_resources,
            consent_lifetime,
            refresh_token_lifetime,
            cimd,
            enabled: raw.enabled,
            transaction_ttl,
            code_ttl,
            max_transactions: raw.max_transactions.max(1),
            localhost_any_port: raw.localhost_any_port,
            authorize_per_ip: raw.authorize_per_ip,
            token_per_ip: raw.token_per_ip,
        }
    }
}

impl CimdSettings {
    fn read(raw: RawCimd, report: &mut Report) -> Self {
        let lowercase = |hosts: Vec<String>| -> Vec<String> {
            hosts.iter().map(|host| host.to_ascii_lowercase()).collect()
        };
        if raw.max_per_host == 0 || raw.max_documents == 0 || raw.max_document_bytes == 0 {
            report.error(
                "front.cimd.max_per_host, max_documents and max_document_bytes must be positive",
            );
        }
        let idle_lifetime = duration(&raw.idle_lifetime, "front.cimd.idle_lifetime", report);
        let min_cache = positive(&raw.min_cache, "front.cimd.min_cache", report);
        let max_cache = positive(&raw.max_cache, "front.cimd.max_cache", report);
        if min_cache > max_cache {
            report.error("front.cimd.min_cache must not exceed max_cache");
        }
        Self {
            enabled: raw.enabled,
            allowed_hosts: lowercase(raw.allowed_hosts),
            denied_hosts: lowercase(raw.denied_hosts),
            private_hosts: lowercase(raw.private_hosts),
            max_per_host: raw.max_per_host.max(1),
            max_documents: raw.max_documents.max(1),
            max_document_bytes: raw.max_document_bytes.max(1),
            min_cache,
            max_cache: max_cache.max(min_cache),
            fetches_per_host: raw.fetches_per_host,
            consent_page: raw.consent_page,
            policy: raw.policy,
            idle_lifetime: (!idle_lifetime.is_zero()).then_some(idle_lifetime),
        }
    }
}

impl FrontSettings {
    /// Refuses what cannot work with the rest of the configuration: the
    /// front without `store.encryption_key`, the front before a provider
    /// that publishes no discovery document (as its settings say:
    /// [`crate::provider::settings::BackendSettings::has_discovery`]; the
    /// front takes the provider's issuer and endpoints from it), and a
    /// document policy that `policy_exists` does not know.
    pub fn check(
        &self,
        kind: &ProviderKind,
        policy_exists: impl Fn(&str) -> bool,
        sealing_key: bool,
        report: &mut Report,
    ) {
        if self.enabled && !sealing_key {
            report.error(
                "front.enabled needs store.encryption_key: logins in progress travel sealed \
                 under it, so that any instance can finish them",
            );
        }
        if let Some(policy) = self
            .cimd
            .policy
            .as_deref()
            .filter(|name| !policy_exists(name))
        {
            report.error(format!(
                "front.cimd.policy `{policy}` is not a configured policy"
            ));
        }
        if !self.enabled && kind.settings().requires_front() {
            report.error(
                "this provider.kind needs front.enabled = true: apps sign users in through \
                 the gateway",
            );
        }
        if self.enabled && !kind.settings().has_discovery() {
            report.error(
                "front.enabled needs a provider with a discovery document, from which the front \
                 takes the provider's issuer and endpoints; this provider.kind publishes none",
            );
        }
    }
}

/// The shortest `signing_key_rotation` (but off).
const MIN_KEY_ROTATION: Duration = Duration::from_secs(86_400);

/// A duration of at least one second.
fn positive(text: &str, key: &str, report: &mut Report) -> Duration {
    let value = duration(text, key, report);
    if value < Duration::from_secs(1) {
        report.error(format!("{key} must be at least one second"));
    }
    value.max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (FrontSettings, Vec<String>) {
        let mut report = Report::default();
        let keys: toml::Table = toml::from_str(text).unwrap();
        let settings = FrontSettings::read(keys, false, &mut report);
        (settings, report.into_errors())
    }

    #[test]
    fn off_by_default_with_short_lived_codes() {
        let (settings, errors) = read("");
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!settings.enabled);
        assert_eq!(settings.code_ttl, Duration::from_secs(60));
        assert_eq!(settings.transaction_ttl, Duration::from_secs(600));
    }

    #[test]
    fn every_bad_key_is_reported() {
        let (_, errors) = read(
            "enabled = true\ncode_ttl = \"0s\"\nmax_transactions = 0\n\
             token_per_ip = \"lots\"\nsurprise = 1\n",
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("front.surprise")));
        assert!(errors.iter().any(|e| e.contains("front.token_per_ip")));
    }

    #[test]
    fn signing_keys_are_es256_rotated_every_ninety_days_unless_told() {
        let (settings, errors) = read("");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(settings.signing_algorithm, SigningAlgorithm::Es256);
        assert_eq!(
            settings.signing_key_rotation,
            Some(Duration::from_secs(90 * 86_400))
        );
        let (settings, errors) =
            read("signing_algorithm = \"EdDSA\"\nsigning_key_rotation = \"0s\"");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(settings.signing_algorithm, SigningAlgorithm::EdDsa);
        assert_eq!(settings.signing_key_rotation, None, "off");
        let (_, errors) = read("signing_algorithm = \"HS256\"\nsigning_key_rotation = \"1h\"");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("`HS256`") && errors[0].contains("\"ES256\", \"RS256\", \"EdDSA\""),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("front.signing_key_rotation"),
            "{errors:?}"
        );
    }

    #[test]
    fn settings_that_cannot_work_with_the_rest_are_refused() {
        let (settings, _) = read("enabled = true");
        let kind = crate::provider::local::LocalSettings::default().into();
        let mut report = Report::default();
        settings.check(&kind, |_| true, true, &mut report);
        assert_eq!(report.into_errors().len(), 1);
        let (settings, _) = read("[cimd]\npolicy = \"nowhere\"");
        let kind = crate::provider::local::LocalSettings::default().into();
        let mut report = Report::default();
        settings.check(&kind, |name| name == "default", true, &mut report);
        let errors = report.into_errors();
        assert!(errors[0].contains("`nowhere`"), "{errors:?}");
    }

    #[test]
    fn the_gateways_tokens_are_broker_modes_default_and_copy_only_user_claims() {
        let broker = |text: &str| {
            let mut report = Report::default();
            let keys: toml::Table = toml::from_str(text).unwrap();
            let settings = FrontSettings::read(keys, true, &mut report);
            (settings, report.into_errors())
        };
        assert_eq!(read("").0.tokens, TokenIssuer::Provider);
        assert_eq!(broker("").0.tokens, TokenIssuer::Gateway);
        assert_eq!(
            broker("tokens = \"provider\"").0.tokens,
            TokenIssuer::Provider
        );
        let (settings, errors) = read("claims = [\"email\"]\nsubject_type = \"pairwise\"");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(settings.subject_type, SubjectType::Pairwise);
        let (_, errors) = read("claims = [\"email\", \"sub\"]\nsubject_type = \"secret\"");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("`sub`")), "{errors:?}");
    }
}
