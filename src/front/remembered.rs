//! Consent remembered per client (broker mode): once a user allowed a
//! client on the consent page, the browser keeps a cookie saying so, for
//! `[front] consent_lifetime`, and the page is not shown again for that
//! client, asking for the same scope and resource, until it lapses (a
//! client asking for more gets the page again). The cookie is sealed
//! under the store key (so it cannot be made or edited), `HttpOnly` and
//! `SameSite=Lax`, and holds the digests of at most [`MAX_CLIENTS`] such
//! consents with their expiry. A remembered consent counts only in the
//! browser that gave it: the login is bound to that browser.

use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::browser::cookie;
use super::error::FrontError;
use crate::clock::seconds;
use crate::store::front::Transaction;
use crate::store::sealing::Sealer;

/// Most clients one browser's cookie remembers; the oldest go first.
const MAX_CLIENTS: usize = 32;

/// Binds the sealed cookie to this use.
const CONTEXT: &str = "dcr-gateway remembered consent";

/// The remembered-consent cookie of one issuer.
#[derive(Debug, Clone)]
pub struct RememberedConsent {
    name: &'static str,
    secure: bool,
    sealer: Sealer,
    lifetime: Duration,
}

/// One remembered client: the digest of its id, and until when.
type Entry = (String, i64);

impl RememberedConsent {
    /// The cookie of an issuer at `issuer`, sealed by `sealer`, remembering
    /// a consent for `lifetime` (zero: never).
    #[must_use]
    pub fn new(issuer: &str, sealer: Sealer, lifetime: Duration) -> Self {
        let secure = issuer.starts_with("https://");
        Self {
            name: if secure {
                "__Host-dcr-consent"
            } else {
                "dcr-consent"
            },
            secure,
            sealer,
            lifetime,
        }
    }

    /// Whether the browser's cookie (in `headers`) remembers the consent
    /// `consent` (a [`consent_key`]) at `now`.
    #[must_use]
    pub fn covers(&self, headers: &HeaderMap, consent: &str, now: i64) -> bool {
        let digest = digest(consent);
        self.entries(headers, now)
            .iter()
            .any(|(client, _)| *client == digest)
    }

    /// The `Set-Cookie` value that adds the consent `consent` to the
    /// browser's cookie at `now`; `None` when consents are not remembered.
    pub fn adding(
        &self,
        headers: &HeaderMap,
        consent: &str,
        now: i64,
    ) -> Result<Option<String>, FrontError> {
        if self.lifetime.is_zero() {
            return Ok(None);
        }
        let digest = digest(consent);
        let mut entries = self.entries(headers, now);
        entries.retain(|(client, _)| *client != digest);
        entries.push((digest, now.saturating_add(seconds(self.lifetime))));
        let excess = entries.len().saturating_sub(MAX_CLIENTS);
        entries.drain(..excess);
        let plain =
            serde_json::to_vec(&entries).map_err(|e| FrontError::internal(&e.to_string()))?;
        let sealed = self
            .sealer
            .seal(&plain, CONTEXT)
            .map_err(|e| FrontError::internal(&e.to_string()))?;
        let secure = if self.secure { "; Secure" } else { "" };
        Ok(Some(format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.name,
            URL_SAFE_NO_PAD.encode(sealed),
            self.lifetime.as_secs()
        )))
    }

    /// The live entries of the browser's cookie; none when it has none or
    /// it does not open.
    fn entries(&self, headers: &HeaderMap, now: i64) -> Vec<Entry> {
        let Some(value) = cookie(headers, self.name) else {
            return Vec::new();
        };
        let opened = URL_SAFE_NO_PAD
            .decode(value)
            .ok()
            .and_then(|sealed| self.sealer.open(&sealed, CONTEXT).ok())
            .and_then(|plain| serde_json::from_slice::<Vec<Entry>>(&plain).ok());
        let mut entries = opened.unwrap_or_default();
        entries.retain(|(_, until)| *until > now);
        entries
    }
}

/// What a consent is remembered by: the client, the scope and the
/// resource of `transaction`.
#[must_use]
pub fn consent_key(transaction: &Transaction) -> String {
    format!(
        "{}\n{}\n{}",
        transaction.client_id,
        transaction.scope.as_deref().unwrap_or_default(),
        transaction.resource.as_deref().unwrap_or_default()
    )
}

/// The digest a consent is remembered by.
fn digest(consent: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(consent.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use axum::http::header::COOKIE;

    use super::*;

    fn remembered() -> RememberedConsent {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
        RememberedConsent::new(
            "https://dcr.example",
            Sealer::from_base64(key).unwrap(),
            Duration::from_secs(100),
        )
    }

    fn sent(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
        headers
    }

    #[test]
    fn a_consent_is_remembered_for_its_client_until_it_lapses() {
        let cookie = remembered();
        let set = cookie
            .adding(&HeaderMap::new(), "a", 1_000)
            .unwrap()
            .unwrap();
        assert!(set.starts_with("__Host-dcr-consent="), "{set}");
        assert!(set.contains("Max-Age=100; HttpOnly; SameSite=Lax; Secure"));
        let headers = sent(&set);
        assert!(cookie.covers(&headers, "a", 1_099));
        assert!(!cookie.covers(&headers, "a", 1_100), "lapsed");
        assert!(!cookie.covers(&headers, "b", 1_000), "another client");
        let both = sent(&cookie.adding(&headers, "b", 1_050).unwrap().unwrap());
        assert!(cookie.covers(&both, "a", 1_060) && cookie.covers(&both, "b", 1_060));
        let mut forged = set.split(';').next().unwrap().to_owned();
        forged.pop();
        assert!(!cookie.covers(&sent(&forged), "a", 1_000));
    }

    #[test]
    fn the_cookie_stays_small() {
        let cookie = remembered();
        let mut headers = HeaderMap::new();
        for i in 0..100 {
            headers = sent(
                &cookie
                    .adding(&headers, &format!("client-{i}"), 1_000)
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(cookie.covers(&headers, "client-99", 1_000));
        assert!(
            !cookie.covers(&headers, "client-0", 1_000),
            "the oldest went"
        );
        let value = headers[COOKIE].to_str().unwrap();
        assert!(value.len() < 2_000, "{}", value.len());
    }
}
