//! Registration policies: what an operator lets apps register. A refusal
//! names the policy and the rule, so an operator can tell which one fired.

use std::time::Duration;

use url::Host;

use super::metadata::{ClientMetadata, MetadataError};
use super::uri::RedirectRules;
use super::values::{ApplicationType, AuthMethod, GrantType, ResponseType};

/// A host name, or `*.` and a suffix that matches any subdomain of it, kept
/// in the IDNA ASCII form URL parsers give hosts (`bücher.example` is
/// `xn--bcher-kva.example`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    /// Parses `app.example.com` or `*.example.com` (case-insensitive, any
    /// IDNA form), or an IP address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a host or `*.domain` pattern");
        let (wildcard, host) = match text.strip_prefix("*.") {
            Some(suffix) => ("*.", suffix),
            None => ("", text),
        };
        let ascii = match Host::parse(host).map_err(|_| bad())? {
            Host::Domain(domain) if !domain.is_empty() && !domain.contains('*') => domain,
            Host::Domain(_) => return Err(bad()),
            address if wildcard.is_empty() => address.to_string(),
            _ => return Err(bad()),
        };
        Ok(Self(format!("{wildcard}{ascii}")))
    }

    /// Whether `host` matches.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self.0.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            None => host == self.0,
        }
    }
}

/// One named policy. `None` lists allow everything the gateway supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name in the configuration.
    pub name: String,
    /// Allowed grant types.
    pub grant_types: Option<Vec<GrantType>>,
    /// Allowed response types, as space-separated words in any order.
    pub response_types: Option<Vec<String>>,
    /// Allowed token endpoint authentication methods.
    pub token_endpoint_auth_methods: Option<Vec<AuthMethod>>,
    /// Allowed scope values.
    pub scopes: Option<Vec<String>>,
    /// Scope given to clients that ask for none.
    pub default_scope: Option<String>,
    /// Web clients must use https even on loopback.
    pub https_only: bool,
    /// Hosts http(s) redirect URIs may point at; empty allows any.
    pub redirect_hosts: Vec<HostPattern>,
    /// Native clients may use http on loopback (RFC 8252 §7.3).
    pub native_loopback_http: bool,
    /// Native clients may use private-use URI schemes (RFC 8252 §7.1).
    pub native_custom_schemes: bool,
    /// Private-use schemes allowed although not in reverse-domain form.
    pub native_schemes: Vec<String>,
    /// Most active clients per `software_id`.
    pub max_clients_per_software_id: Option<u64>,
    /// How long a client lives before the janitor removes it.
    pub client_lifetime: Option<Duration>,
    /// How long a client may go unused (no RFC 7592 call, no `/authorize`
    /// or `/token` at the front) before the janitor removes it.
    pub idle_lifetime: Option<Duration>,
    /// How long a client secret lives (`client_secret_expires_at`).
    pub client_secret_lifetime: Option<Duration>,
    /// Extension members kept beyond the registry's (`[registration]
    /// extra_metadata`, the same for every policy).
    pub extra_metadata: Vec<String>,
}

impl Policy {
    /// A policy that adds nothing to the RFC rules.
    #[must_use]
    pub fn permissive(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            grant_types: None,
            response_types: None,
            token_endpoint_auth_methods: None,
            scopes: None,
            default_scope: None,
            https_only: false,
            redirect_hosts: Vec::new(),
            native_loopback_http: true,
            native_custom_schemes: true,
            native_schemes: Vec::new(),
            max_clients_per_software_id: None,
            client_lifetime: None,
            idle_lifetime: None,
            client_secret_lifetime: None,
            extra_metadata: Vec::new(),
        }
    }

    /// The redirect URI rules metadata validation runs with.
    #[must_use]
    pub fn redirect_rules(&self) -> RedirectRules {
        RedirectRules {
            web_http_on_loopback: !self.https_only,
            native_schemes: self.native_schemes.clone(),
        }
    }

    fn refuse(&self, rule: &str, what: String) -> MetadataError {
        MetadataError::InvalidClientMetadata(format!(
            "{what} (policy `{}`, rule `{rule}`)",
            self.name
        ))
    }

    fn refuse_redirect(&self, rule: &str, what: String) -> MetadataError {
        MetadataError::InvalidRedirectUri(format!("{what} (policy `{}`, rule `{rule}`)", self.name))
    }

    /// Checks validated metadata against the policy, filling in the default
    /// scope when the client asked for none.
    pub fn apply(&self, metadata: &mut ClientMetadata) -> Result<(), MetadataError> {
        if let Some(allowed) = &self.grant_types {
            if let Some(grant) = metadata.grant_types.iter().find(|g| !allowed.contains(g)) {
                return Err(self.refuse(
                    "grant_types",
                    format!("grant type `{grant}` is not allowed"),
                ));
            }
        }
        if let Some(allowed) = &self.response_types {
            let normalized: Vec<String> = allowed.iter().map(|r| sorted_words(r)).collect();
            if let Some(response) = metadata
                .response_types
                .iter()
                .find(|r| !normalized.contains(&sorted_words(&r.to_string())))
            {
                return Err(self.refuse(
                    "response_types",
                    format!("response type `{response}` is not allowed"),
                ));
            }
        }
        if let Some(allowed) = &self.token_endpoint_auth_methods {
            let method = metadata.token_endpoint_auth_method;
            if !allowed.contains(&method) {
                return Err(self.refuse(
                    "token_endpoint_auth_methods",
                    format!("token_endpoint_auth_method `{method}` is not allowed"),
                ));
            }
        }
        if metadata.scope.is_none() {
            metadata.scope.clone_from(&self.default_scope);
        }
        if let (Some(allowed), Some(scope)) = (&self.scopes, &metadata.scope) {
            if let Some(value) = scope.split(' ').find(|s| !allowed.iter().any(|a| a == s)) {
                return Err(self.refuse("scopes", format!("scope `{value}` is not allowed")));
            }
        }
        self.check_redirects(metadata)
    }

    fn check_redirects(&self, metadata: &ClientMetadata) -> Result<(), MetadataError> {
        let native = metadata.application_type == ApplicationType::Native;
        for uri in &metadata.redirect_uris {
            let scheme = uri.url().scheme();
            let web_scheme = matches!(scheme, "http" | "https");
            if native && !web_scheme && !self.native_custom_schemes {
                return Err(self.refuse_redirect(
                    "native_custom_schemes",
                    format!("`{}`: private-use schemes are not allowed", uri.as_str()),
                ));
            }
            if native && scheme == "http" && !self.native_loopback_http {
                return Err(self.refuse_redirect(
                    "native_loopback_http",
                    format!(
                        "`{}`: loopback http redirects are not allowed",
                        uri.as_str()
                    ),
                ));
            }
            if web_scheme && !self.redirect_hosts.is_empty() {
                let host = uri.url().host_str().unwrap_or_default();
                let loopback_native = native && scheme == "http" && uri.is_loopback();
                if !loopback_native && !self.redirect_hosts.iter().any(|p| p.matches(host)) {
                    return Err(self.refuse_redirect(
                        "redirect_hosts",
                        format!("`{}`: host `{host}` is not allowed", uri.as_str()),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn sorted_words(response_type: &str) -> String {
    let mut words: Vec<&str> = response_type.split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

/// Whether a response type string is one the gateway knows.
#[must_use]
pub fn is_response_type(text: &str) -> bool {
    ResponseType::parse(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let any_sub = HostPattern::parse("*.example.com").unwrap();
        assert!(any_sub.matches("app.example.com"));
        assert!(any_sub.matches("A.B.Example.com"));
        assert!(!any_sub.matches("example.com"));
        assert!(!any_sub.matches("evil-example.com"));
        let exact = HostPattern::parse("app.example.com").unwrap();
        assert!(exact.matches("APP.example.com"));
        assert!(!exact.matches("x.app.example.com"));
        assert!(HostPattern::parse("*").is_err());
        assert!(HostPattern::parse("a/b").is_err());
        assert!(HostPattern::parse("*.*.example.com").is_err());
        assert!(HostPattern::parse("*.127.0.0.1").is_err());
    }

    #[test]
    fn host_patterns_compare_in_ascii_form() {
        let idn = HostPattern::parse("*.B\u{fc}cher.example").unwrap();
        assert!(idn.matches("app.xn--bcher-kva.example"));
        let fullwidth = HostPattern::parse("app\u{ff0e}example\u{ff0e}com").unwrap();
        assert!(fullwidth.matches("app.example.com"));
        assert!(
            HostPattern::parse("127.0.0.1")
                .unwrap()
                .matches("127.0.0.1")
        );
    }
}
