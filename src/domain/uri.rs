//! Registered URIs: kept byte for byte as the client sent them, parsed once,
//! and checked against the redirect rules of OpenID Connect and RFC 8252.

use std::net::IpAddr;

use url::{Host, Url};

/// Schemes never accepted for any registered URI: they run code or read local files.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript", "blob", "about"];

/// A URI as registered: the exact text the client sent and its parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredUri {
    text: String,
    url: Url,
}

impl RegisteredUri {
    /// Parses an absolute URI, keeping `text` unchanged.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("`{text}` is not an absolute URI ({e})"))?;
        if FORBIDDEN_SCHEMES.contains(&url.scheme()) {
            return Err(format!(
                "`{text}`: the `{}` scheme is not allowed",
                url.scheme()
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            url,
        })
    }

    /// Parses an absolute `https` URI without a fragment.
    pub fn parse_https(text: &str) -> Result<Self, String> {
        let uri = Self::parse(text)?;
        if uri.url.scheme() != "https" {
            return Err(format!("`{text}` must use https"));
        }
        uri.refuse_fragment()?;
        Ok(uri)
    }

    /// Parses an absolute `http` or `https` URI, as for web pages and logos.
    pub fn parse_web(text: &str) -> Result<Self, String> {
        let uri = Self::parse(text)?;
        if !matches!(uri.url.scheme(), "https" | "http") {
            return Err(format!("`{text}` must be an http or https URL"));
        }
        Ok(uri)
    }

    /// The URI exactly as registered.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed URI.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the host is a loopback address or `localhost`.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        }
    }

    fn refuse_fragment(&self) -> Result<(), String> {
        if self.url.fragment().is_some() {
            return Err(format!("`{}` must not contain a fragment", self.text));
        }
        Ok(())
    }
}

/// Redirect URI rules that an operator may relax (the default policy allows
/// `http` on loopback for web clients, for development).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectRules {
    /// Web clients may use `http://localhost`, `http://127.0.0.1`, `http://[::1]`.
    pub web_http_on_loopback: bool,
}

impl RedirectRules {
    /// The loosest rules, for reading back clients registered under any policy.
    pub const PERMISSIVE: Self = Self {
        web_http_on_loopback: true,
    };
}

impl Default for RedirectRules {
    fn default() -> Self {
        Self {
            web_http_on_loopback: true,
        }
    }
}

/// What the redirect URI rules depend on besides the URI itself.
#[derive(Debug, Clone, Copy)]
pub struct RedirectContext {
    /// The client is a native application (RFC 8252).
    pub native: bool,
    /// The client uses the implicit grant (tokens in the front channel).
    pub implicit: bool,
}

/// Parses one redirect URI and applies the OpenID Connect and RFC 8252 rules.
pub fn parse_redirect_uri(
    text: &str,
    context: RedirectContext,
    rules: RedirectRules,
) -> Result<RegisteredUri, String> {
    let uri = RegisteredUri::parse(text)?;
    uri.refuse_fragment()?;
    let scheme = uri.url.scheme();
    if context.native {
        // RFC 8252 §7: private-use schemes, claimed https, or http on loopback.
        if scheme == "http" && !uri.is_loopback() {
            return Err(format!(
                "`{text}`: native clients may use http only on loopback (127.0.0.1, [::1], localhost)"
            ));
        }
        return Ok(uri);
    }
    match scheme {
        "https" if context.implicit && uri.is_loopback() => Err(format!(
            "`{text}`: web clients using the implicit grant may not redirect to localhost"
        )),
        "https" => Ok(uri),
        "http" if context.implicit => Err(format!(
            "`{text}`: web clients using the implicit grant must use https"
        )),
        "http" if uri.is_loopback() && rules.web_http_on_loopback => Ok(uri),
        "http" => Err(format!("`{text}`: web clients must use https")),
        other => Err(format!(
            "`{text}`: the `{other}` scheme is only allowed for native clients"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: RedirectContext = RedirectContext {
        native: false,
        implicit: false,
    };
    const NATIVE: RedirectContext = RedirectContext {
        native: true,
        implicit: false,
    };
    const WEB_IMPLICIT: RedirectContext = RedirectContext {
        native: false,
        implicit: true,
    };

    fn ok(text: &str, context: RedirectContext) -> bool {
        parse_redirect_uri(text, context, RedirectRules::default()).is_ok()
    }

    #[test]
    fn keeps_the_text_byte_for_byte() {
        let text = "https://App.Example.com:443/cb?x=1&y=%7E";
        let uri = parse_redirect_uri(text, WEB, RedirectRules::default()).unwrap();
        assert_eq!(uri.as_str(), text);
    }

    #[test]
    fn web_rules() {
        assert!(ok("https://app.example.com/cb", WEB));
        assert!(ok("http://localhost:3000/cb", WEB));
        assert!(ok("http://127.0.0.1/cb", WEB));
        assert!(!ok("http://app.example.com/cb", WEB));
        assert!(!ok("com.example.app:/cb", WEB));
        assert!(!ok("https://app.example.com/cb#frag", WEB));
        assert!(!ok("https://app.example.com/cb#", WEB));
        assert!(!ok("/relative/cb", WEB));
        let strict = RedirectRules {
            web_http_on_loopback: false,
        };
        assert!(parse_redirect_uri("http://localhost/cb", WEB, strict).is_err());
    }

    #[test]
    fn implicit_web_clients_need_https_and_no_localhost() {
        assert!(ok("https://app.example.com/cb", WEB_IMPLICIT));
        assert!(!ok("https://localhost/cb", WEB_IMPLICIT));
        assert!(!ok("http://127.0.0.1/cb", WEB_IMPLICIT));
    }

    #[test]
    fn native_rules() {
        assert!(ok("com.example.app:/oauth2redirect", NATIVE));
        assert!(ok("http://127.0.0.1:51004/cb", NATIVE));
        assert!(ok("http://[::1]/cb", NATIVE));
        assert!(ok("http://localhost/cb", NATIVE));
        assert!(ok("https://app.example.com/cb", NATIVE));
        assert!(!ok("http://app.example.com/cb", NATIVE));
    }

    #[test]
    fn dangerous_schemes_are_refused_everywhere() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
        ] {
            assert!(!ok(uri, WEB), "{uri}");
            assert!(!ok(uri, NATIVE), "{uri}");
        }
    }
}
