//! Keyed rate limiting with governor, shared by the HTTP routes and the
//! authorization front: each key gets its own GCRA limiter; the keys live in
//! a moka cache with a size cap and an idle expiry, and every key is at most
//! [`MAX_KEY_BYTES`] long, so a flood of distinct keys cannot grow memory
//! without bound (an evicted key simply starts afresh).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use moka::sync::Cache;
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

/// A rate: `count` requests per `per`, with a burst of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period (and the burst).
    pub count: NonZeroU32,
    /// The period.
    pub per: Duration,
}

impl Quota {
    /// Parses `N/second`, `N/minute` or `N/hour`; `unlimited` is `None`.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        if text == "unlimited" {
            return Ok(None);
        }
        let bad = || "must be `N/second`, `N/minute`, `N/hour` or `unlimited`".to_owned();
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let count = count.trim().parse::<NonZeroU32>().map_err(|_| bad())?;
        let per = match unit.trim() {
            "second" => Duration::from_secs(1),
            "minute" => Duration::from_secs(60),
            "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Some(Self { count, per }))
    }

    /// `count` per minute (`None`, unlimited, for zero).
    pub(crate) const fn per_minute(count: u32) -> Option<Self> {
        match NonZeroU32::new(count) {
            Some(count) => Some(Self {
                count,
                per: Duration::from_secs(60),
            }),
            None => None,
        }
    }

    /// Reads a quota key with serde, as [`Quota::parse`] does.
    pub(crate) fn setting<'de, D: Deserializer<'de>>(keys: D) -> Result<Option<Self>, D::Error> {
        let text = String::deserialize(keys)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The longest key a limiter keeps; longer ones are replaced by a digest.
pub const MAX_KEY_BYTES: usize = 64;

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
            .get_with(bounded(key), || Arc::new(RateLimiter::direct(self.quota)));
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

/// `key`, or its digest when it is longer than [`MAX_KEY_BYTES`].
fn bounded(key: &str) -> String {
    if key.len() <= MAX_KEY_BYTES {
        key.to_owned()
    } else {
        digest(key)
    }
}

/// A short digest of `text`, as a key that does not reveal it.
pub fn digest(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The key of a source address: an IPv4 address (also written IPv4-mapped
/// in IPv6), or the /64 an IPv6 address is in, since one host commonly
/// holds a whole /64.
#[must_use]
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A flood of distinct keys stays within the cap, in count and size.
        for i in 0..100_000u32 {
            let _ = limiter.check(&i.to_string());
        }
        assert!(limiter.tracked_keys() <= 1000, "{}", limiter.tracked_keys());
        let long = "x".repeat(100_000);
        assert!(bounded(&long).len() <= MAX_KEY_BYTES);
        assert_ne!(bounded(&long), bounded(&"y".repeat(100_000)));
    }
}
