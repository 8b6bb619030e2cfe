//! The gateway's rate limits, over the keyed limiters of
//! [`crate::limiter`].
//!
//! What is limited, and by what key:
//! - registrations per source address (IPv6 per /64), per initial access
//!   token, per `software_id` and per redirect host (many real clients
//!   register from shared egress addresses: every claude.ai user comes from
//!   Anthropic's servers);
//! - failed authentications per source address: only the refusal turns from
//!   401 into 429, so an app holding a valid token is never refused because
//!   of someone else's failures;
//! - RFC 7592 requests per client, counted only once the token is verified,
//!   so that nobody can spend a client's budget with a wrong token.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;

use ipnet::IpNet;
use serde::Deserialize;

use crate::audit::{self, AuditEvent};
use crate::clock::{Clock, SystemClock};
use crate::domain::MetadataDocument;
use crate::limiter::digest;
use crate::limiter::{KeyedLimiter, Quota, address_key};
use crate::settings::Report;

/// `[limits]`.
#[derive(Debug, Clone)]
pub struct LimitSettings {
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
    pub trusted_proxies: Vec<IpNet>,
    /// The one header trusted proxies name the client in.
    pub client_ip_header: ClientIpHeader,
    /// Most keys (addresses, clients, tokens) each limiter tracks at once.
    pub max_tracked_keys: u64,
}

/// The header a trusted proxy names the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    #[serde(rename = "forwarded")]
    Forwarded,
}

/// `[limits]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawLimits {
    #[serde(deserialize_with = "Quota::setting")]
    register_per_ip: Option<Quota>,
    #[serde(deserialize_with = "Quota::setting")]
    manage_per_client: Option<Quota>,
    #[serde(deserialize_with = "Quota::setting")]
    register_per_initial_access_token: Option<Quota>,
    #[serde(deserialize_with = "Quota::setting")]
    register_per_software_id: Option<Quota>,
    #[serde(deserialize_with = "Quota::setting")]
    register_per_redirect_host: Option<Quota>,
    #[serde(deserialize_with = "Quota::setting")]
    auth_failures_per_ip: Option<Quota>,
    trusted_proxies: Vec<String>,
    client_ip_header: ClientIpHeader,
    max_tracked_keys: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            register_per_ip: Quota::per_minute(20),
            manage_per_client: Quota::per_minute(60),
            register_per_initial_access_token: Quota::per_minute(60),
            register_per_software_id: None,
            register_per_redirect_host: None,
            auth_failures_per_ip: Quota::per_minute(30),
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::XForwardedFor,
            max_tracked_keys: 100_000,
        }
    }
}

impl LimitSettings {
    /// Reads `[limits]`, reporting every problem.
    pub fn read(keys: toml::Table, report: &mut Report) -> Self {
        let raw: RawLimits = report.section("limits", keys);
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .filter_map(|cidr| {
                let net = cidr
                    .parse::<IpNet>()
                    .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from));
                if net.is_err() {
                    report.error(format!("limits.trusted_proxies: `{cidr}` is not a CIDR"));
                }
                net.ok()
            })
            .collect();
        if raw.max_tracked_keys == 0 {
            report.error("limits.max_tracked_keys must be positive");
        }
        Self {
            register_per_ip: raw.register_per_ip,
            manage_per_client: raw.manage_per_client,
            register_per_initial_access_token: raw.register_per_initial_access_token,
            register_per_software_id: raw.register_per_software_id,
            register_per_redirect_host: raw.register_per_redirect_host,
            auth_failures_per_ip: raw.auth_failures_per_ip,
            trusted_proxies,
            client_ip_header: raw.client_ip_header,
            max_tracked_keys: raw.max_tracked_keys.max(1),
        }
    }
}

/// Every limit of the gateway, and who may speak for the client's address.
pub struct Limits {
    register_per_ip: Option<KeyedLimiter>,
    register_per_token: Option<KeyedLimiter>,
    register_per_software_id: Option<KeyedLimiter>,
    register_per_redirect_host: Option<KeyedLimiter>,
    auth_failures_per_ip: Option<KeyedLimiter>,
    manage_per_client: Option<KeyedLimiter>,
    trusted_proxies: Vec<IpNet>,
    client_ip_header: ClientIpHeader,
    /// The latest refusals, newest last, for the console.
    recent: Mutex<VecDeque<LimitHit>>,
}

/// Refusals kept for the console's list of who hit a limit.
const RECENT_HITS: usize = 100;

/// A request a rate limit refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// When (seconds since the epoch).
    pub at: i64,
    /// Which limit: `register`, `manage` or `auth_failures`.
    pub limit: &'static str,
    /// The caller's address.
    pub ip: IpAddr,
    /// The client concerned, when known.
    pub client_id: Option<String>,
}

impl Limits {
    /// The limiters of `config`.
    #[must_use]
    pub fn new(config: &LimitSettings) -> Self {
        let limiter = |q: Option<Quota>| q.map(|q| KeyedLimiter::new(q, config.max_tracked_keys));
        Self {
            register_per_ip: limiter(config.register_per_ip),
            register_per_token: limiter(config.register_per_initial_access_token),
            register_per_software_id: limiter(config.register_per_software_id),
            register_per_redirect_host: limiter(config.register_per_redirect_host),
            auth_failures_per_ip: limiter(config.auth_failures_per_ip),
            manage_per_client: limiter(config.manage_per_client),
            trusted_proxies: config.trusted_proxies.clone(),
            client_ip_header: config.client_ip_header,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_HITS)),
        }
    }

    /// The longest wait among refusals, audited and kept among the recent
    /// hits; `Ok` when none refused.
    fn refused(
        &self,
        results: impl IntoIterator<Item = Result<(), u64>>,
        limit: &'static str,
        ip: IpAddr,
        client_id: Option<&str>,
    ) -> Result<(), u64> {
        let Some(wait) = results.into_iter().filter_map(Result::err).max() else {
            return Ok(());
        };
        metrics::counter!("dcr_rate_limited_total", "limit" => limit).increment(1);
        audit::record(&AuditEvent {
            action: limit,
            outcome: "rate_limited",
            client_id,
            ip: Some(ip),
            ..AuditEvent::default()
        });
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT_HITS {
                recent.pop_front();
            }
            recent.push_back(LimitHit {
                at: SystemClock.now_unix(),
                limit,
                ip,
                client_id: client_id.map(str::to_owned),
            });
        }
        Err(wait)
    }

    /// The latest requests a limit refused on this instance, newest first.
    #[must_use]
    pub fn recent_hits(&self) -> Vec<LimitHit> {
        self.recent
            .lock()
            .map(|recent| recent.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// The client's address. The peer, unless the peer is a trusted proxy:
    /// then the configured header alone (never pieced together with the
    /// other) is read from the right, past every trusted proxy, and the
    /// first address that is not one is the client. An entry that is not
    /// an address ends the walk at the last trusted hop.
    #[must_use]
    pub fn client_ip(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        let mut client = peer;
        if !trusted(&peer) {
            return client;
        }
        for hop in self.client_ip_header.hops(headers).into_iter().rev() {
            match hop {
                Some(ip) if trusted(&ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }

    /// Checks a registration from `ip` with the initial access `token`, for
    /// the `document` it sends.
    pub fn check_registration(
        &self,
        ip: IpAddr,
        token: Option<&str>,
        document: &MetadataDocument,
    ) -> Result<(), u64> {
        let mut results = Vec::new();
        if let Some(limiter) = &self.register_per_ip {
            results.push(limiter.check(&address_key(ip)));
        }
        if let (Some(limiter), Some(token)) = (&self.register_per_token, token) {
            // A digest: the token itself never becomes a key.
            results.push(limiter.check(&digest(token)));
        }
        if let (Some(limiter), Some(software_id)) =
            (&self.register_per_software_id, &document.software_id)
        {
            results.push(limiter.check(software_id));
        }
        if let Some(limiter) = &self.register_per_redirect_host {
            let mut hosts: Vec<String> = document
                .redirect_uris
                .iter()
                .flatten()
                .filter_map(|uri| url::Url::parse(uri).ok())
                .filter_map(|url| url.host_str().map(str::to_ascii_lowercase))
                .collect();
            hosts.sort_unstable();
            hosts.dedup();
            results.extend(hosts.iter().map(|host| limiter.check(host)));
        }
        self.refused(results, "register", ip, None)
    }

    /// Counts a failed authentication from `ip`; `Err` (seconds to wait)
    /// once the address has failed too often, to be answered 429.
    pub fn check_failed_authentication(&self, ip: IpAddr) -> Result<(), u64> {
        let result = self
            .auth_failures_per_ip
            .as_ref()
            .map(|l| l.check(&address_key(ip)));
        self.refused(result, "auth_failures", ip, None)
    }

    /// Checks an RFC 7592 request for `client_id`, whose token was verified.
    pub fn check_management(&self, ip: IpAddr, client_id: &str) -> Result<(), u64> {
        self.refused(
            [self.management_budget(client_id)],
            "manage",
            ip,
            Some(client_id),
        )
    }

    /// The budget of RFC 7592 requests of `client_id`: one more spent, or
    /// (refused, spending nothing) the seconds to wait. [`Self::check_management`]
    /// is this, with a refusal counted and audited.
    pub fn management_budget(&self, client_id: &str) -> Result<(), u64> {
        self.manage_per_client
            .as_ref()
            .map_or(Ok(()), |limiter| limiter.check(client_id))
    }
}

impl ClientIpHeader {
    /// The hops the header names, nearest last; `None` for an entry that is
    /// not an address (`unknown`, an obfuscated name, garbage).
    fn hops(self, headers: &axum::http::HeaderMap) -> Vec<Option<IpAddr>> {
        let name = match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        };
        let elements = headers
            .get_all(name)
            .iter()
            .flat_map(|value| value.to_str().unwrap_or("?").split(','));
        match self {
            Self::XForwardedFor => elements.map(|e| e.trim().parse().ok()).collect(),
            Self::Forwarded => elements.map(forwarded_for).collect(),
        }
    }
}

/// The `for=` address of one `Forwarded` element (RFC 7239 §4).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })?;
    let host = match value.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next()?,
        None => value.split(':').next()?,
    };
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn limits(trusted: &[&str], header: ClientIpHeader) -> Limits {
        Limits {
            register_per_ip: None,
            register_per_token: None,
            register_per_software_id: None,
            register_per_redirect_host: None,
            auth_failures_per_ip: None,
            manage_per_client: None,
            trusted_proxies: trusted.iter().map(|c| c.parse().unwrap()).collect(),
            client_ip_header: header,
            recent: Mutex::default(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_client_address_comes_from_one_header_past_the_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.5".parse().unwrap());
        headers.insert("forwarded", "for=198.51.100.1".parse().unwrap());
        let peer = ip("10.0.0.1");
        let xff = ClientIpHeader::XForwardedFor;
        assert_eq!(limits(&[], xff).client_ip(peer, &headers), peer);
        assert_eq!(
            limits(&["10.0.0.0/8"], xff).client_ip(peer, &headers),
            ip("203.0.113.9"),
            "the Forwarded header is not read"
        );
        // What the client wrote itself sits left of what the proxy appended.
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8, 203.0.113.9".parse().unwrap(),
        );
        assert_eq!(
            limits(&["10.0.0.0/8"], xff).client_ip(peer, &headers),
            ip("203.0.113.9")
        );
        let mut forwarded = HeaderMap::new();
        forwarded.insert(
            "forwarded",
            "for=1.2.3.4, for=\"[2001:db8::7]:4711\";proto=https"
                .parse()
                .unwrap(),
        );
        forwarded.insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
        assert_eq!(
            limits(&["10.0.0.0/8"], ClientIpHeader::Forwarded).client_ip(peer, &forwarded),
            ip("2001:db8::7")
        );
        // An entry that is not an address stops the walk at the last proxy.
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, junk, 10.0.0.5".parse().unwrap(),
        );
        assert_eq!(
            limits(&["10.0.0.0/8"], xff).client_ip(peer, &headers),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn addresses_are_keyed_per_host_and_ipv6_per_64() {
        assert_eq!(address_key(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(address_key(ip("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn the_latest_refusals_are_kept_newest_first_and_bounded() {
        let mut limits = limits(&[], ClientIpHeader::XForwardedFor);
        let quota = Quota::parse("1/minute").unwrap().unwrap();
        limits.auth_failures_per_ip = Some(KeyedLimiter::new(quota, 1000));
        let (first, second): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(limits.check_failed_authentication(first).is_ok());
        assert!(limits.check_failed_authentication(first).is_err());
        assert!(limits.check_failed_authentication(second).is_ok());
        assert!(limits.check_failed_authentication(second).is_err());
        let hits = limits.recent_hits();
        assert_eq!(hits.len(), 2);
        assert_eq!((hits[0].ip, hits[0].limit), (second, "auth_failures"));
        assert_eq!(hits[1].ip, first);
        for _ in 0..RECENT_HITS {
            let _ = limits.check_failed_authentication(first);
        }
        assert_eq!(limits.recent_hits().len(), RECENT_HITS);
    }
}
