//! Rate limits with governor: registrations per client IP and per initial
//! access token, management requests per client. Each key gets its own GCRA
//! limiter; the keys live in a moka cache with a size cap and an idle expiry,
//! so a flood of distinct addresses cannot grow memory without bound (an
//! evicted key simply starts afresh).

use std::net::IpAddr;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use ipnet::IpNet;
use moka::sync::Cache;

use crate::audit::{self, AuditEvent};
use crate::config::{LimitsConfig, Quota};
use crate::domain::SecretHash;

/// One quota applied per key.
pub struct KeyedLimiter {
    quota: governor::Quota,
    keys: Cache<String, Arc<DefaultDirectRateLimiter>>,
}

impl KeyedLimiter {
    /// `quota` per key, tracking at most `max_keys` keys.
    #[must_use]
    pub fn new(quota: Quota, max_keys: u64) -> Self {
        let replenish = quota.per / quota.count.get();
        let quota = governor::Quota::with_period(replenish)
            .unwrap_or_else(|| governor::Quota::per_second(quota.count))
            .allow_burst(quota.count);
        Self {
            quota,
            keys: Cache::builder()
                .max_capacity(max_keys)
                .time_to_idle(replenish * quota.burst_size().get())
                .build(),
        }
    }

    /// `Ok`, or the seconds to wait before the key may try again.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let limiter = self
            .keys
            .get_with(key.to_owned(), || Arc::new(RateLimiter::direct(self.quota)));
        limiter.check().map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }

    /// Keys tracked right now.
    #[must_use]
    pub fn tracked_keys(&self) -> u64 {
        self.keys.run_pending_tasks();
        self.keys.entry_count()
    }
}

/// Every limit of the gateway, and who may speak for the client's address.
pub struct Limits {
    /// Registrations per client IP.
    pub register_per_ip: Option<KeyedLimiter>,
    /// Registrations per initial access token.
    pub register_per_token: Option<KeyedLimiter>,
    /// Management requests per client.
    pub manage_per_client: Option<KeyedLimiter>,
    trusted_proxies: Vec<IpNet>,
}

impl Limits {
    /// The limiters of `config`.
    #[must_use]
    pub fn new(config: &LimitsConfig) -> Self {
        let limiter = |q: Option<Quota>| q.map(|q| KeyedLimiter::new(q, config.max_tracked_keys));
        Self {
            register_per_ip: limiter(config.register_per_ip),
            register_per_token: limiter(config.register_per_initial_access_token),
            manage_per_client: limiter(config.manage_per_client),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// The client's address: the peer, unless the peer is a trusted proxy,
    /// in which case the nearest untrusted address it forwarded for.
    #[must_use]
    pub fn client_ip(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let mut chain = forwarded_for(headers);
        chain.push(peer);
        chain
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or_else(|| chain.first())
            .copied()
            .unwrap_or(peer)
    }

    /// Checks a registration from `ip` with `token` (hashed as the key).
    pub fn check_registration(&self, ip: IpAddr, token: Option<&str>) -> Result<(), u64> {
        let by_ip = self
            .register_per_ip
            .as_ref()
            .map(|l| l.check(&ip.to_string()));
        let by_token = match (&self.register_per_token, token) {
            (Some(limiter), Some(token)) => Some(limiter.check(&hex(&SecretHash::of(token)))),
            _ => None,
        };
        refused(by_ip.into_iter().chain(by_token), ip, None)
    }

    /// Checks a management request for `client_id`.
    pub fn check_management(&self, ip: IpAddr, client_id: &str) -> Result<(), u64> {
        let by_client = self.manage_per_client.as_ref().map(|l| l.check(client_id));
        refused(by_client, ip, Some(client_id))
    }
}

/// The longest wait among refusals, audited; `Ok` when none refused.
fn refused(
    results: impl IntoIterator<Item = Result<(), u64>>,
    ip: IpAddr,
    client_id: Option<&str>,
) -> Result<(), u64> {
    let wait = results.into_iter().filter_map(Result::err).max();
    match wait {
        None => Ok(()),
        Some(wait) => {
            let limit = if client_id.is_some() {
                "manage"
            } else {
                "register"
            };
            metrics::counter!("dcr_rate_limited_total", "limit" => limit).increment(1);
            audit::record(&AuditEvent {
                action: if client_id.is_some() {
                    "manage"
                } else {
                    "register"
                },
                outcome: "rate_limited",
                client_id,
                ip: Some(ip),
                ..AuditEvent::default()
            });
            Err(wait)
        }
    }
}

fn hex(hash: &SecretHash) -> String {
    hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Addresses from `X-Forwarded-For` and `Forwarded: for=`, nearest last.
fn forwarded_for(headers: &axum::http::HeaderMap) -> Vec<IpAddr> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else { continue };
        chain.extend(
            text.split(',')
                .filter_map(|s| s.trim().parse::<IpAddr>().ok()),
        );
    }
    for value in headers.get_all("forwarded") {
        let Ok(text) = value.to_str() else { continue };
        for element in text.split(',') {
            for pair in element.split(';') {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                if !key.trim().eq_ignore_ascii_case("for") {
                    continue;
                }
                let value = value.trim().trim_matches('"');
                let host = value
                    .strip_prefix('[')
                    .and_then(|v| v.split(']').next())
                    .unwrap_or_else(|| value.split(':').next().unwrap_or(value));
                if let Ok(ip) = host.parse() {
                    chain.push(ip);
                }
            }
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn limits(trusted: &[&str]) -> Limits {
        Limits {
            register_per_ip: None,
            register_per_token: None,
            manage_per_client: None,
            trusted_proxies: trusted.iter().map(|c| c.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.5".parse().unwrap());
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(limits(&[]).client_ip(peer, &headers), peer);
        assert_eq!(
            limits(&["10.0.0.0/8"]).client_ip(peer, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let mut forwarded = HeaderMap::new();
        forwarded.insert(
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https".parse().unwrap(),
        );
        assert_eq!(
            limits(&["10.0.0.0/8"]).client_ip(peer, &forwarded),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_key_is_refused_past_its_burst_and_keys_are_bounded() {
        let quota = Quota::parse("3/minute").unwrap().unwrap();
        let limiter = KeyedLimiter::new(quota, 1000);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check("b").is_ok(), "keys are independent");
        // A flood of distinct keys stays within the cap.
        for i in 0..100_000u32 {
            let _ = limiter.check(&i.to_string());
        }
        assert!(limiter.tracked_keys() <= 1000, "{}", limiter.tracked_keys());
    }
}
