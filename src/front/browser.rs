//! The browser a transaction is bound to when it goes through the consent
//! page: a random value in an `HttpOnly` cookie, set on the page's answer,
//! whose digest the transaction keeps. The page's form must come back with
//! it, and so must the provider's redirect to `/callback`, so a link or a
//! form token carried to another browser leads nowhere.
//!
//! The cookie is `SameSite=Lax`: it goes with the user's own top-level
//! navigation back from the provider, and never with a request another
//! site's page makes in the background. On an `https` issuer it is a
//! `__Host-` cookie (`Secure`, no `Domain`, `Path=/`).

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

use super::transactions::FrontSecret;

/// The browser's cookie, by the issuer's scheme.
#[derive(Debug, Clone, Copy)]
pub struct BrowserCookie {
    name: &'static str,
    secure: bool,
    /// How long the cookie lasts, in seconds (none: the browser session):
    /// as long as a consent the browser remembers, which is bound to it.
    max_age: Option<u64>,
}

impl BrowserCookie {
    /// The cookie of an issuer at `issuer`, lasting `lifetime` (zero: the
    /// browser session).
    #[must_use]
    pub fn for_issuer(issuer: &str, lifetime: std::time::Duration) -> Self {
        let secure = issuer.starts_with("https://");
        Self {
            name: if secure {
                "__Host-dcr-browser"
            } else {
                "dcr-browser"
            },
            secure,
            max_age: (!lifetime.is_zero()).then_some(lifetime.as_secs()),
        }
    }

    /// The value the browser presented, if any.
    #[must_use]
    pub fn presented(self, headers: &HeaderMap) -> Option<FrontSecret> {
        cookie(headers, self.name).map(FrontSecret::presented)
    }

    /// The `Set-Cookie` value that gives a browser `value`.
    #[must_use]
    pub fn set(self, value: &FrontSecret) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        let max_age = self
            .max_age
            .map(|seconds| format!("; Max-Age={seconds}"))
            .unwrap_or_default();
        format!(
            "{}={}; Path=/{max_age}; HttpOnly; SameSite=Lax{secure}",
            self.name,
            value.expose()
        )
    }
}

/// The value of the cookie `name` the browser sent, if any and not empty.
#[must_use]
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, value)| *found == name && !value.is_empty())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn an_https_issuer_gets_a_host_cookie_and_the_value_is_read_back() {
        let cookie = BrowserCookie::for_issuer("https://dcr.example.com", Default::default());
        let value = FrontSecret::generate();
        let set = cookie.set(&value);
        assert!(set.starts_with("__Host-dcr-browser="), "{set}");
        assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Lax; Secure"));
        let mut headers = HeaderMap::new();
        let sent = format!("other=1; __Host-dcr-browser={}", value.expose());
        headers.insert(COOKIE, HeaderValue::from_str(&sent).unwrap());
        let read = cookie.presented(&headers).unwrap();
        assert_eq!(read.expose(), value.expose());
        let plain = BrowserCookie::for_issuer("http://127.0.0.1:8080", Default::default());
        assert!(plain.presented(&headers).is_none());
        assert!(!plain.set(&value).contains("Secure"));
    }
}
