//! `kind = "oidc"`: broker mode. The gateway keeps every registration
//! itself, as the built-in registry does, and signs users in at an OpenID
//! provider that has no client API (Entra ID, Google, Cognito, Auth0,
//! Keycloak) through one client the operator registered there by hand.
//! The authorization front does the signing in ([`crate::front::broker`]);
//! this module holds the keys: where the provider is, the operator's
//! client and its credential, and the provider's quirks
//! ([`presets`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::rest::{ProviderSetupError, Resilience};
use super::settings::{BackendSettings, KindSettings, not_blank, required, required_url};
use super::{Credential, Provider};
use crate::clock::Clock;
use crate::settings::{Report, http_url};

pub mod presets;
mod signing_key;

use presets::{Preset, Profile, ResourceRule};
pub use signing_key::SigningKey;

const KIND: &str = "oidc";

/// How the gateway authenticates its client to the provider.
#[derive(Debug, Clone)]
pub enum UpstreamCredential {
    /// A client secret, in the `Authorization` header.
    SecretBasic(Credential),
    /// A client secret, in the form.
    SecretPost(Credential),
    /// A JWT signed with the operator's key (RFC 7523, OpenID Connect
    /// Core §9 `private_key_jwt`).
    PrivateKeyJwt(Arc<SigningKey>),
}

/// Settings of broker mode.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer, as its discovery document names it (Entra's
    /// multi-tenant one holds `{tenantid}`).
    pub issuer: String,
    /// Where its discovery document is.
    pub discovery_url: Url,
    /// The operator's client at the provider.
    pub client_id: String,
    /// Its credential.
    pub credential: UpstreamCredential,
    /// The preset the profile started from.
    pub preset: Preset,
    /// The provider's quirks.
    pub profile: Profile,
    /// Scope asked for when the app asks for none (`openid` is always
    /// asked for).
    pub default_scope: String,
    /// `resource_scopes`: the scope of each resource, for
    /// [`ResourceRule::Scope`], before the `resource_scope` template.
    pub resource_scopes: BTreeMap<String, String>,
    /// The `audience` sent when the app names no resource, under
    /// [`ResourceRule::Audience`].
    pub audience: Option<String>,
    /// The tenants whose users may sign in, when the issuer holds
    /// `{tenantid}` (empty: any).
    pub allowed_tenants: Vec<String>,
}

/// The keys of `kind = "oidc"`, as written. No `Debug`: it holds the
/// client secret in clear.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RawOidcSettings {
    /// The provider's issuer. Required.
    issuer: Option<String>,
    /// Where the discovery document is (default: the issuer's
    /// `/.well-known/openid-configuration`).
    discovery_url: Option<String>,
    /// The operator's client id at the provider. Required.
    client_id: Option<String>,
    /// Its secret (or `private_key`).
    client_secret: Option<String>,
    /// A PEM file with its private key, for `private_key_jwt`.
    private_key: Option<String>,
    /// The key's id at the provider (`kid`).
    private_key_id: Option<String>,
    /// A PEM file with the key's certificate: its SHA-256 thumbprint goes in
    /// `x5t#S256` (Entra ID identifies certificate credentials so).
    certificate: Option<String>,
    /// `client_secret_basic` (default with a secret) or `client_secret_post`.
    token_endpoint_auth_method: Option<String>,
    /// `generic` (default), `entra`, `google`, `cognito`, `auth0`, `keycloak`.
    preset: Option<String>,
    /// Scope asked for when the app asks for none.
    default_scope: Option<String>,
    /// `pass`, `drop`, `audience` or `scope`: overrides the preset.
    resource: Option<String>,
    /// Template of a resource's scope (`{resource}` stands for it).
    resource_scope: Option<String>,
    /// Scopes of given resources.
    resource_scopes: BTreeMap<String, String>,
    /// Default `audience` (Auth0).
    audience: Option<String>,
    /// Scopes as the provider knows them; added to the preset's.
    scope_map: BTreeMap<String, String>,
    /// Parameters added for a scope; added to the preset's.
    scope_params: BTreeMap<String, BTreeMap<String, String>>,
    /// Parameters added to every authorization request.
    authorize_params: BTreeMap<String, String>,
    /// Whether a refresh repeats the granted scope.
    refresh_scope: Option<bool>,
    /// Tenants whose users may sign in (multi-tenant issuers).
    allowed_tenants: Vec<String>,
}

/// Authorization parameters the gateway sets itself: an operator's table
/// must not replace them.
const OWN_PARAMS: [&str; 12] = [
    "request",
    "request_uri",
    "response_mode",
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "resource",
];

impl BackendSettings for OidcSettings {
    fn credentialed_url(&self) -> Option<&Url> {
        Some(&self.discovery_url)
    }

    /// No provider: the gateway's store is the registry.
    fn build(&self, _: Arc<dyn Clock>) -> Result<Option<Arc<dyn Provider>>, ProviderSetupError> {
        Ok(None)
    }

    /// The front reads the provider's document itself.
    fn has_discovery(&self) -> bool {
        true
    }

    fn requires_front(&self) -> bool {
        true
    }
}

impl KindSettings for OidcSettings {
    const KIND: &'static str = KIND;
    const SEALS: Option<&'static str> = Some("the provider's refresh tokens");
    type Raw = RawOidcSettings;

    fn validate(raw: RawOidcSettings, _: Resilience, report: &mut Report) -> Option<Self> {
        not_blank(
            &[
                ("issuer", &raw.issuer),
                ("client_id", &raw.client_id),
                ("client_secret", &raw.client_secret),
                ("private_key", &raw.private_key),
            ],
            report,
        );
        let preset = match raw.preset.as_deref() {
            None => Some(Preset::Generic),
            Some(name) => Preset::named(name).or_else(|| {
                let names: Vec<&str> = Preset::ALL.iter().map(|(name, _)| *name).collect();
                report.error(format!(
                    "provider.preset `{name}` is not one of {}",
                    names.join(", ")
                ));
                None
            }),
        };
        let issuer = required(raw.issuer.clone(), "provider.issuer", KIND, report);
        let discovery_url = match (&raw.discovery_url, &issuer) {
            (Some(url), _) => http_url(url, "provider.discovery_url", report),
            (None, Some(issuer)) => required_url(
                Some(&format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                )),
                "provider.issuer",
                KIND,
                report,
            ),
            (None, None) => None,
        };
        let client_id = required(raw.client_id.clone(), "provider.client_id", KIND, report);
        let profile = preset.map(|preset| profile(preset.profile(), &raw, report));
        let credential = credential(&raw, profile.as_ref(), report);
        Some(Self {
            issuer: issuer?,
            discovery_url: discovery_url?,
            client_id: client_id?,
            credential: credential?,
            preset: preset?,
            profile: profile?,
            default_scope: raw.default_scope.unwrap_or_else(|| "openid".into()),
            resource_scopes: raw.resource_scopes,
            audience: raw.audience,
            allowed_tenants: raw.allowed_tenants,
        })
    }
}

/// The preset's profile with the operator's keys over it.
fn profile(mut profile: Profile, raw: &RawOidcSettings, report: &mut Report) -> Profile {
    if let Some(name) = &raw.resource {
        match ResourceRule::named(name) {
            Some(rule) => profile.resource = rule,
            None => report.error(format!(
                "provider.resource `{name}` must be pass, drop, audience or scope"
            )),
        }
    }
    if let Some(template) = &raw.resource_scope {
        if !template.contains("{resource}") {
            report.error("provider.resource_scope must hold `{resource}`");
        }
        profile.resource_scope.clone_from(template);
    }
    profile.scope_map.extend(raw.scope_map.clone());
    profile.scope_params.extend(raw.scope_params.clone());
    profile
        .authorize_params
        .extend(raw.authorize_params.clone());
    let added = profile
        .authorize_params
        .keys()
        .chain(profile.scope_params.values().flat_map(BTreeMap::keys));
    for name in added {
        let well_formed = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !well_formed {
            report.error(format!(
                "provider: `{}` is not an authorization parameter name",
                name.escape_debug()
            ));
        } else if OWN_PARAMS.contains(&name.to_ascii_lowercase().as_str()) {
            report.error(format!(
                "provider: the gateway sets the authorization parameter `{name}` itself \
                 (or it would replace what the gateway sets)"
            ));
        }
    }
    if let Some(refresh_scope) = raw.refresh_scope {
        profile.refresh_scope = refresh_scope;
    }
    profile
}

/// The operator's client credential: a secret or a key, never both.
fn credential(
    raw: &RawOidcSettings,
    profile: Option<&Profile>,
    report: &mut Report,
) -> Option<UpstreamCredential> {
    match (&raw.client_secret, &raw.private_key) {
        (Some(_), Some(_)) => {
            report.error("provider: give client_secret or private_key, not both");
            None
        }
        (None, None) => {
            report.error(
                "provider.client_secret or provider.private_key is required with \
                 provider.kind = \"oidc\"",
            );
            None
        }
        (Some(secret), None) => {
            let secret = Credential::new(secret.clone());
            match raw.token_endpoint_auth_method.as_deref() {
                None | Some("client_secret_basic") => Some(UpstreamCredential::SecretBasic(secret)),
                Some("client_secret_post") => Some(UpstreamCredential::SecretPost(secret)),
                Some(other) => {
                    report.error(format!(
                        "provider.token_endpoint_auth_method `{other}` must be \
                         client_secret_basic or client_secret_post with a client_secret"
                    ));
                    None
                }
            }
        }
        (None, Some(path)) => {
            if profile.is_some_and(|profile| !profile.private_key_jwt) {
                report.error(
                    "provider.private_key: this preset's provider accepts only client secrets",
                );
                return None;
            }
            let pss = profile.is_some_and(|profile| profile.rsa_pss);
            match SigningKey::read(
                path,
                raw.private_key_id.clone(),
                raw.certificate.as_deref(),
                pss,
            ) {
                Ok(key) => Some(UpstreamCredential::PrivateKeyJwt(Arc::new(key))),
                Err(error) => {
                    report.error(format!("provider.private_key: {error}"));
                    None
                }
            }
        }
    }
}
