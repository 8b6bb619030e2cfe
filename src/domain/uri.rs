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
        is_loopback_url(&self.url)
    }

    /// Whether the host names this machine in any form: `localhost` and its
    /// subdomains (RFC 6761 §6.3), with or without a final dot, and loopback
    /// or unspecified addresses, IPv4-mapped ones included.
    #[must_use]
    pub fn is_local_host(&self) -> bool {
        is_local_url(&self.url)
    }

    /// Refuses text that a registration must not store although it parses:
    /// control characters and whitespace (which parsers drop or encode, so
    /// the stored text would differ from what is matched), and a `*` in the
    /// host (a wildcard to some providers).
    pub fn check_text(&self) -> Result<(), String> {
        if self
            .text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!(
                "`{}` contains a control character or whitespace",
                self.text.escape_debug()
            ));
        }
        if self.url.host_str().is_some_and(|host| host.contains('*')) {
            return Err(format!(
                "`{}`: a `*` in the host is not allowed (no wildcards)",
                self.text
            ));
        }
        Ok(())
    }

    fn refuse_fragment(&self) -> Result<(), String> {
        if self.url.fragment().is_some() {
            return Err(format!("`{}` must not contain a fragment", self.text));
        }
        Ok(())
    }
}

/// Whether `url`'s host names this machine in any form (see
/// [`RegisteredUri::is_local_host`]).
#[must_use]
pub fn is_local_url(url: &Url) -> bool {
    let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
    match url.host() {
        Some(Host::Domain(domain)) => is_localhost_name(domain),
        Some(Host::Ipv4(ip)) => local(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => {
            local(IpAddr::V6(ip)) || ip.to_ipv4_mapped().is_some_and(|v4| local(v4.into()))
        }
        None => false,
    }
}

/// Whether `url`'s host is a loopback address or `localhost`.
#[must_use]
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Whether a host name is `localhost` or a name under it (RFC 6761 §6.3:
/// they all resolve to loopback), with or without a final dot.
#[must_use]
pub fn is_localhost_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Redirect URI rules that an operator may relax (the default policy allows
/// `http` on loopback for web clients, for development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRules {
    /// Web clients may use `http://localhost`, `http://127.0.0.1`, `http://[::1]`.
    pub web_http_on_loopback: bool,
    /// Private-use schemes native clients may use although they are not in
    /// the reverse-domain form RFC 8252 §7.1 asks for (such as `cursor`),
    /// lowercase, as [`parse_scheme`] returns them.
    pub native_schemes: Vec<String>,
}

impl RedirectRules {
    /// The loosest rules, for reading back clients registered under any policy.
    pub const PERMISSIVE: Self = Self {
        web_http_on_loopback: true,
        native_schemes: Vec::new(),
    };
}

impl Default for RedirectRules {
    fn default() -> Self {
        Self::PERMISSIVE
    }
}

/// Parses a private-use scheme an operator lets native clients use: a URI
/// scheme name (RFC 3986 §3.1), lowercased; never `http`, `https` or one of
/// the schemes refused everywhere.
pub fn parse_scheme(text: &str) -> Result<String, String> {
    let scheme = text.to_ascii_lowercase();
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !well_formed {
        return Err(format!("`{text}` is not a URI scheme"));
    }
    if matches!(scheme.as_str(), "http" | "https") || FORBIDDEN_SCHEMES.contains(&scheme.as_str()) {
        return Err(format!(
            "`{text}` cannot be allowed as a private-use scheme"
        ));
    }
    Ok(scheme)
}

/// RFC 8252 §7.1: a private-use scheme is a domain name the app's owner
/// controls, in reverse order (`com.example.app`), so at least two labels.
fn is_reverse_domain(scheme: &str) -> bool {
    scheme.contains('.') && scheme.split('.').all(|label| !label.is_empty())
}

/// What the redirect URI rules depend on besides the URI itself.
#[derive(Debug, Clone, Copy)]
pub struct RedirectContext {
    /// The client is a native application (RFC 8252).
    pub native: bool,
    /// The client uses the implicit grant (tokens in the front channel).
    pub implicit: bool,
}

/// Parses one redirect URI and applies the OpenID Connect and RFC 8252 rules
/// that every stored client met. A registration also applies
/// [`check_redirect_uri`].
pub fn parse_redirect_uri(
    text: &str,
    context: RedirectContext,
    rules: &RedirectRules,
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

/// The rules a redirect URI meets at registration, on top of
/// [`parse_redirect_uri`]: the text is exactly what URL parsers read (so no
/// control characters, no Unicode or percent-encoded host, no default port
/// or dot segments), the host has no wildcard, a native client's private-use
/// scheme is in reverse-domain form or allowed by `rules`, and a web client
/// using the implicit grant does not redirect to this machine.
pub fn check_redirect_uri(
    uri: &RegisteredUri,
    context: RedirectContext,
    rules: &RedirectRules,
) -> Result<(), String> {
    uri.check_text()?;
    let text = uri.as_str();
    if uri.url.as_str() != text {
        return Err(format!(
            "`{text}` is not written as URL parsers read it (`{}`); register that form",
            uri.url
        ));
    }
    let scheme = uri.url.scheme();
    let private_use = !matches!(scheme, "http" | "https");
    if context.native
        && private_use
        && !is_reverse_domain(scheme)
        && !rules.native_schemes.iter().any(|s| s == scheme)
    {
        return Err(format!(
            "`{text}`: native clients use a private-use scheme in reverse-domain form, such as \
             `com.example.app:/cb` (RFC 8252 §7.1), http on loopback, or https"
        ));
    }
    if !context.native && context.implicit && uri.is_local_host() {
        return Err(format!(
            "`{text}`: web clients using the implicit grant may not redirect to localhost"
        ));
    }
    Ok(())
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

    fn registered(
        text: &str,
        context: RedirectContext,
        rules: &RedirectRules,
    ) -> Result<RegisteredUri, String> {
        let uri = parse_redirect_uri(text, context, rules)?;
        check_redirect_uri(&uri, context, rules)?;
        Ok(uri)
    }

    fn ok(text: &str, context: RedirectContext) -> bool {
        registered(text, context, &RedirectRules::default()).is_ok()
    }

    #[test]
    fn keeps_the_text_byte_for_byte() {
        let text = "https://app.example.com/cb?y=%7E&x=1&empty=";
        let uri = registered(text, WEB, &RedirectRules::default()).unwrap();
        assert_eq!(uri.as_str(), text);
    }

    #[test]
    fn only_the_text_parsers_read_back_is_registered() {
        for text in [
            "https://App.Example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/a/../cb",
            "https://app.example.com",
            "https://app.example.com/cb\r\nSet-Cookie: a=b",
            "https://app.example.com/cb\0",
            "https://app.example.com/c\tb",
            " https://app.example.com/cb",
            "https://app\u{ff0e}example\u{ff0e}com/cb",
            "https://app%2eexample.com/cb",
            "https://b\u{fc}cher.example/cb",
            "https://*.example.com/cb",
            "com.example.app://*.example/cb",
        ] {
            assert!(!ok(text, WEB) && !ok(text, NATIVE), "{text:?}");
        }
        assert!(ok("https://xn--bcher-kva.example/cb", WEB));
    }

    #[test]
    fn stored_clients_read_back_under_the_old_rules() {
        let rules = RedirectRules::PERMISSIVE;
        for text in ["https://App.Example.com/cb", "myapp://cb"] {
            assert!(parse_redirect_uri(text, NATIVE, &rules).is_ok(), "{text}");
        }
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
            native_schemes: Vec::new(),
        };
        assert!(registered("http://localhost/cb", WEB, &strict).is_err());
    }

    #[test]
    fn implicit_web_clients_need_https_and_no_localhost() {
        assert!(ok("https://app.example.com/cb", WEB_IMPLICIT));
        assert!(!ok("http://127.0.0.1/cb", WEB_IMPLICIT));
        // Forms of this machine (the HTTP tests try more).
        for local in [
            "https://a.localhost./cb",
            "https://0.0.0.0/cb",
            "https://[::]/cb",
        ] {
            assert!(!ok(local, WEB_IMPLICIT), "{local}");
            assert!(ok(local, WEB), "{local}");
        }
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
    fn native_private_use_schemes_are_reverse_domains_or_allowed() {
        for text in [
            "view-source:https://app.example.com/",
            "jar:https://app.example.com/a.jar!/",
            "mailto:a@example.com",
            "tel:+15550100",
            "ms-settings:privacy",
            "cursor://anysphere.cursor-retrieval/cb",
            "com.:/cb",
        ] {
            assert!(!ok(text, NATIVE), "{text}");
        }
        let rules = RedirectRules {
            native_schemes: vec![parse_scheme("Cursor").unwrap()],
            ..RedirectRules::default()
        };
        assert!(registered("cursor://anysphere.cursor-retrieval/cb", NATIVE, &rules).is_ok());
        assert!(registered("tel:+15550100", NATIVE, &rules).is_err());
    }

    #[test]
    fn operators_cannot_allow_web_or_dangerous_schemes() {
        for text in ["https", "HTTP", "javascript", "data", "1abc", "a b", ""] {
            assert!(parse_scheme(text).is_err(), "{text}");
        }
        assert_eq!(parse_scheme("Cursor").unwrap(), "cursor");
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
