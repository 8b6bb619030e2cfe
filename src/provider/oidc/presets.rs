//! The quirks of the OpenID providers broker mode fronts, one key each, and
//! the named presets that fill them in. Each value's source is in the
//! README's section on the preset.

use std::collections::BTreeMap;

/// What to do with the RFC 8707 `resource` an app sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceRule {
    /// Send it on as `resource` (providers that implement RFC 8707).
    Pass,
    /// Leave it out (providers that refuse or ignore it).
    Drop,
    /// Send it as `audience` (Auth0).
    Audience,
    /// Turn it into a scope (Entra ID's `{app id URI}/.default`), by
    /// [`Profile::resource_scope`] and its table.
    Scope,
}

impl ResourceRule {
    /// The rule a setting names.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "pass" => Some(Self::Pass),
            "drop" => Some(Self::Drop),
            "audience" => Some(Self::Audience),
            "scope" => Some(Self::Scope),
            _ => None,
        }
    }
}

/// How the gateway speaks to one provider: a preset's values, each
/// overridable by its own key in `[provider]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `resource`: what becomes of the app's resource indicator.
    pub resource: ResourceRule,
    /// `resource_scope`: the scope a resource becomes under
    /// [`ResourceRule::Scope`], `{resource}` standing for it.
    pub resource_scope: String,
    /// `scope_map`: scopes apps ask for, written as the provider knows them
    /// (an empty value drops the scope).
    pub scope_map: BTreeMap<String, String>,
    /// `scope_params`: authorization parameters added when the app asks
    /// for a scope (Google's `access_type=offline` for `offline_access`).
    pub scope_params: BTreeMap<String, BTreeMap<String, String>>,
    /// `authorize_params`: parameters added to every authorization request.
    pub authorize_params: BTreeMap<String, String>,
    /// `refresh_scope`: whether a refresh request repeats the granted scope
    /// (Entra ID asks for it).
    pub refresh_scope: bool,
    /// Whether the provider accepts `private_key_jwt` client authentication.
    pub private_key_jwt: bool,
    /// Whether an RSA key signs client assertions with `PS256` rather than
    /// `RS256` (Entra ID's certificate credentials).
    pub rsa_pss: bool,
    /// Whether a client assertion's audience is the issuer rather than the
    /// token endpoint (Auth0).
    pub assertion_audience_is_issuer: bool,
    /// Other spellings of the issuer an ID token may carry (Google's
    /// `accounts.google.com`).
    pub issuer_aliases: Vec<String>,
}

/// A named preset: `[provider] preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Any OpenID provider that follows the specifications.
    Generic,
    /// Microsoft Entra ID (v2.0 endpoints).
    Entra,
    /// Google.
    Google,
    /// Amazon Cognito user pools.
    Cognito,
    /// Auth0.
    Auth0,
    /// Keycloak.
    Keycloak,
}

impl Preset {
    /// Every preset, by name.
    pub const ALL: [(&'static str, Self); 6] = [
        ("generic", Self::Generic),
        ("entra", Self::Entra),
        ("google", Self::Google),
        ("cognito", Self::Cognito),
        ("auth0", Self::Auth0),
        ("keycloak", Self::Keycloak),
    ];

    /// The preset `name` names.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, preset)| *preset)
    }

    /// The preset's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, preset)| *preset == self)
            .map_or("generic", |(name, _)| name)
    }

    /// The preset's values.
    #[must_use]
    pub fn profile(self) -> Profile {
        let mut profile = Profile {
            resource: ResourceRule::Pass,
            resource_scope: "{resource}/.default".into(),
            scope_map: BTreeMap::new(),
            scope_params: BTreeMap::new(),
            authorize_params: BTreeMap::new(),
            refresh_scope: false,
            private_key_jwt: true,
            rsa_pss: false,
            assertion_audience_is_issuer: false,
            issuer_aliases: Vec::new(),
        };
        let drop_offline = || BTreeMap::from([("offline_access".to_owned(), String::new())]);
        match self {
            Self::Generic | Self::Keycloak => {}
            Self::Entra => {
                profile.resource = ResourceRule::Scope;
                profile.refresh_scope = true;
                profile.rsa_pss = true;
            }
            Self::Google => {
                profile.resource = ResourceRule::Drop;
                profile.scope_map = drop_offline();
                profile.scope_params = BTreeMap::from([(
                    "offline_access".to_owned(),
                    BTreeMap::from([
                        ("access_type".to_owned(), "offline".to_owned()),
                        ("prompt".to_owned(), "consent".to_owned()),
                    ]),
                )]);
                profile.private_key_jwt = false;
                profile.issuer_aliases = vec!["accounts.google.com".to_owned()];
            }
            Self::Cognito => {
                profile.resource = ResourceRule::Drop;
                profile.scope_map = drop_offline();
                profile.private_key_jwt = false;
            }
            Self::Auth0 => {
                profile.resource = ResourceRule::Audience;
                profile.assertion_audience_is_issuer = true;
            }
        }
        profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_named_once() {
        for (name, preset) in Preset::ALL {
            assert_eq!(Preset::named(name), Some(preset));
            assert_eq!(preset.name(), name);
        }
        assert_eq!(Preset::named("okta"), None);
    }

    #[test]
    fn google_asks_for_offline_access_its_own_way() {
        let google = Preset::Google.profile();
        assert_eq!(google.scope_map["offline_access"], "");
        assert_eq!(
            google.scope_params["offline_access"]["access_type"],
            "offline"
        );
        assert_eq!(Preset::Entra.profile().resource, ResourceRule::Scope);
        assert_eq!(Preset::Auth0.profile().resource, ResourceRule::Audience);
    }
}
