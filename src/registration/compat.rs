//! Client compatibility: `[registration.compat]`, rules that let the
//! registrations current MCP clients send pass as they are, where a strict
//! OpenID Connect server would refuse them. Each rule is on by default and
//! can be switched off on its own; [`CompatRules::STRICT`] switches all of
//! them off.
//!
//! Most rules rewrite the submitted document before it is validated
//! ([`CompatRules::normalise`]); one widens the policy's redirect URI rules
//! ([`CompatRules::redirect_rules`]), and one fits the validated metadata to
//! what the back end can hold ([`CompatRules::fit_provider`]).

use serde::Deserialize;

use crate::domain::metadata::ClientMetadata;
use crate::domain::values::{ApplicationType, AuthMethod, GrantType};
use crate::domain::{MetadataDocument, RedirectRules, RegisteredUri};

/// Private-use schemes of MCP clients that are not in the reverse-domain
/// form RFC 8252 §7.1 asks for, each with the client that registers it.
const CLIENT_SCHEMES: [&str; 2] = [
    // Cursor: `cursor://anysphere.cursor-mcp/oauth/callback`
    // (better-auth/better-auth#10956, paradigmxyz/centaur#1452).
    "cursor",
    // WorkBuddy: `workbuddy://workbuddy/mcp/…/oauth/callback`
    // (liketrek/TREK#2227).
    "workbuddy",
];

/// `[registration.compat]`: one switch per rule, all on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[allow(clippy::struct_excessive_bools)] // one switch per rule, by design
pub struct CompatRules {
    /// `empty_scope_is_absent`: `"scope": ""` is read as no scope (the
    /// policy's default scope then applies). MCP Inspector sends an empty
    /// scope when the server's metadata names none
    /// (modelcontextprotocol/inspector `client/src/lib/auth.ts`); RFC 6749
    /// §3.3 makes a scope at least one token, so strict servers refuse it.
    pub empty_scope_is_absent: bool,
    /// `native_by_redirect_uris`: without `application_type`, a client whose
    /// redirect URIs are all http on loopback or private-use schemes, and
    /// that does not ask for the implicit grant, is registered as `native`
    /// (an explicit `web` keeps the web rules).
    /// Cursor sends `cursor://anysphere.cursor-mcp/oauth/callback` and no
    /// `application_type` (better-auth/better-auth#10956); OpenID Connect
    /// DCR's default, `web`, refuses such a scheme.
    pub native_by_redirect_uris: bool,
    /// `client_schemes`: native clients may use the private-use schemes of
    /// known MCP clients that are not reverse domain names (`cursor`,
    /// `workbuddy`), besides the policy's `native_schemes`.
    pub client_schemes: bool,
    /// `device_code_for_native`: a public native client may ask for the
    /// device-code grant beside its others even where the back end cannot
    /// issue it; there the grant is left out of the registration (RFC 7591
    /// §3.2.1 lets the server replace requested values). VS Code asks for
    /// authorization_code, refresh_token and device_code
    /// (microsoft/vscode `src/vs/base/common/oauth.ts`) and uses the device
    /// flow only where the server's metadata offers it.
    pub device_code_for_native: bool,
}

impl Default for CompatRules {
    fn default() -> Self {
        Self {
            empty_scope_is_absent: true,
            native_by_redirect_uris: true,
            client_schemes: true,
            device_code_for_native: true,
        }
    }
}

impl CompatRules {
    /// Every rule off: registrations are judged as a strict OpenID Connect
    /// server judges them.
    pub const STRICT: Self = Self {
        empty_scope_is_absent: false,
        native_by_redirect_uris: false,
        client_schemes: false,
        device_code_for_native: false,
    };

    /// Rewrites a submitted document as the rules that are on read it.
    pub fn normalise(&self, document: &mut MetadataDocument) {
        if self.empty_scope_is_absent && document.scope.as_deref() == Some("") {
            document.scope = None;
        }
        if self.native_by_redirect_uris
            && document.application_type.is_none()
            && !asks_for_implicit(document)
            && native_redirects_only(document.redirect_uris.as_deref())
        {
            document.application_type = Some(ApplicationType::Native.to_string());
        }
    }

    /// The policy's redirect URI `rules`, widened by the rules that are on.
    #[must_use]
    pub fn redirect_rules(&self, mut rules: RedirectRules) -> RedirectRules {
        if self.client_schemes {
            for scheme in CLIENT_SCHEMES {
                if !rules.native_schemes.iter().any(|s| s == scheme) {
                    rules.native_schemes.push(scheme.to_owned());
                }
            }
        }
        rules
    }

    /// Checks `metadata` with the back end's `supports`; where the back end
    /// refuses only a public native client's device-code grant, the grant
    /// is left out instead. Otherwise the back end's first refusal stands.
    pub fn fit_provider(
        &self,
        metadata: &mut ClientMetadata,
        supports: impl Fn(&ClientMetadata) -> Result<(), String>,
    ) -> Result<(), String> {
        let Err(refusal) = supports(metadata) else {
            return Ok(());
        };
        let eligible = self.device_code_for_native
            && metadata.application_type == ApplicationType::Native
            && metadata.token_endpoint_auth_method == AuthMethod::None
            && metadata.grant_types.len() > 1
            && metadata.grant_types.contains(&GrantType::DeviceCode);
        if !eligible {
            return Err(refusal);
        }
        let mut fitted = metadata.clone();
        fitted.grant_types.retain(|g| *g != GrantType::DeviceCode);
        supports(&fitted).map_err(|_| refusal)?;
        *metadata = fitted;
        Ok(())
    }
}

/// Whether a document asks for the implicit grant, by grant or response
/// type: native apps do not use it (RFC 8252 §8.2), browser apps may.
fn asks_for_implicit(document: &MetadataDocument) -> bool {
    let mut grants = document.grant_types.iter().flatten();
    let mut responses = document.response_types.iter().flatten();
    grants.any(|g| g == GrantType::Implicit.as_str())
        || responses.any(|r| !matches!(r.as_str(), "code" | "none"))
}

/// Whether there are redirect URIs and each is http on loopback or a
/// private-use scheme (RFC 8252 §7.1, §7.3): URIs only a native app can
/// receive.
fn native_redirects_only(uris: Option<&[String]>) -> bool {
    let Some(uris) = uris.filter(|uris| !uris.is_empty()) else {
        return false;
    };
    uris.iter().all(|text| {
        RegisteredUri::parse(text).is_ok_and(|uri| match uri.url().scheme() {
            "http" => uri.is_loopback(),
            "https" => false,
            _ => true,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(uris: &[&str]) -> MetadataDocument {
        MetadataDocument {
            redirect_uris: Some(uris.iter().map(|u| (*u).to_owned()).collect()),
            ..MetadataDocument::default()
        }
    }

    #[test]
    fn loopback_and_private_use_redirects_make_a_native_client() {
        for uris in [
            &["cursor://anysphere.cursor-mcp/oauth/callback"][..],
            &["http://localhost:6274/oauth/callback", "http://127.0.0.1/"],
        ] {
            let mut doc = document(uris);
            CompatRules::default().normalise(&mut doc);
            assert_eq!(doc.application_type.as_deref(), Some("native"), "{uris:?}");
        }
        let mut implicit = document(&["http://localhost/cb"]);
        implicit.response_types = Some(vec!["id_token".into()]);
        CompatRules::default().normalise(&mut implicit);
        assert_eq!(implicit.application_type, None, "implicit stays web");
        for uris in [
            &["https://claude.ai/api/mcp/auth_callback"][..],
            &["http://localhost/cb", "https://app.example.com/cb"],
            &[],
        ] {
            let mut doc = document(uris);
            CompatRules::default().normalise(&mut doc);
            assert_eq!(doc.application_type, None, "{uris:?}");
        }
    }

    #[test]
    fn an_explicit_application_type_and_strict_rules_are_kept() {
        let mut doc = document(&["cursor://anysphere.cursor-mcp/oauth/callback"]);
        doc.application_type = Some("web".into());
        CompatRules::default().normalise(&mut doc);
        assert_eq!(doc.application_type.as_deref(), Some("web"));

        let mut doc = document(&["cursor://anysphere.cursor-mcp/oauth/callback"]);
        doc.scope = Some(String::new());
        CompatRules::STRICT.normalise(&mut doc);
        assert_eq!(doc.application_type, None);
        assert_eq!(doc.scope.as_deref(), Some(""));
        assert!(
            CompatRules::STRICT
                .redirect_rules(RedirectRules::default())
                .native_schemes
                .is_empty()
        );
    }
}
