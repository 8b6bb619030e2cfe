//! `[registration]` and `[policies.*]`: who may register, and what.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::metadata::{ExtraMetadata, is_scope_token};
use crate::domain::policy::{HostPattern, Policy, is_response_type};
use crate::domain::uri::parse_scheme;
use crate::domain::values::{AuthMethod, GrantType};
use crate::registration::compat::CompatRules;
use crate::registration::{RegistrationMode, TokenRotation};
use crate::settings::{Report, duration};

/// `[registration]` and `[policies.*]`.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    /// Open, or protected by initial access tokens.
    pub mode: RegistrationMode,
    /// Whether updates rotate the registration access token.
    pub rotation: TokenRotation,
    /// Policies by name (a permissive `default` when none is configured).
    pub policies: BTreeMap<String, Policy>,
    /// The policy of registrations without a token naming one.
    pub default_policy: String,
    /// `[registration.compat]`: the client-compatibility rules that are on.
    pub compat: CompatRules,
}

/// `[registration]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawRegistration {
    mode: RegistrationMode,
    rotate_registration_access_token: TokenRotation,
    default_policy: String,
    compat: CompatRules,
    extra_metadata: Vec<String>,
}

impl Default for RawRegistration {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Open,
            rotate_registration_access_token: TokenRotation::Never,
            default_policy: "default".into(),
            compat: CompatRules::default(),
            extra_metadata: Vec::new(),
        }
    }
}

/// One `[policies.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawPolicy {
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    token_endpoint_auth_methods: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    default_scope: Option<String>,
    https_only: bool,
    redirect_hosts: Vec<String>,
    native_loopback_http: bool,
    native_custom_schemes: bool,
    native_schemes: Vec<String>,
    max_clients_per_software_id: Option<u64>,
    client_lifetime: Option<String>,
    idle_lifetime: Option<String>,
    client_secret_lifetime: Option<String>,
}

impl Default for RawPolicy {
    /// Keys left out mean what [`Policy::permissive`] means.
    fn default() -> Self {
        let permissive = Policy::permissive("");
        Self {
            grant_types: None,
            response_types: None,
            token_endpoint_auth_methods: None,
            scopes: None,
            default_scope: None,
            https_only: permissive.https_only,
            redirect_hosts: Vec::new(),
            native_loopback_http: permissive.native_loopback_http,
            native_custom_schemes: permissive.native_custom_schemes,
            native_schemes: Vec::new(),
            max_clients_per_software_id: None,
            client_lifetime: None,
            idle_lifetime: None,
            client_secret_lifetime: None,
        }
    }
}

impl RegistrationSettings {
    /// Reads `[registration]` and `[policies.*]`, reporting every problem.
    pub(super) fn read(
        registration: toml::Table,
        policies: toml::Table,
        report: &mut Report,
    ) -> Self {
        let raw: RawRegistration = report.section("registration", registration);
        let raw_policies: BTreeMap<String, RawPolicy> = report.section("policies", policies);
        let mut policies: BTreeMap<String, Policy> = raw_policies
            .into_iter()
            .map(|(name, raw)| {
                let policy = raw.validate(&name, report);
                (name, policy)
            })
            .collect();
        if policies.is_empty() {
            policies.insert("default".into(), Policy::permissive("default"));
        }
        let extra_metadata = extra_metadata(raw.extra_metadata, report);
        for policy in policies.values_mut() {
            policy.extra_metadata.clone_from(&extra_metadata);
        }
        if !policies.contains_key(&raw.default_policy) {
            report.error(format!(
                "registration.default_policy `{}` is not a configured policy",
                raw.default_policy
            ));
        }
        Self {
            mode: raw.mode,
            rotation: raw.rotate_registration_access_token,
            policies,
            default_policy: raw.default_policy,
            compat: raw.compat,
        }
    }
}

impl RawPolicy {
    fn validate(self, name: &str, report: &mut Report) -> Policy {
        let key = |k: &str| format!("policies.{name}.{k}");
        let grant_types = known(
            self.grant_types,
            &key("grant_types"),
            report,
            GrantType::parse,
        );
        let response_types = known(
            self.response_types,
            &key("response_types"),
            report,
            |v: &str| is_response_type(v).then(|| v.to_owned()),
        );
        let token_endpoint_auth_methods = known(
            self.token_endpoint_auth_methods,
            &key("token_endpoint_auth_methods"),
            report,
            AuthMethod::parse,
        );
        let redirect_hosts = parsed(&self.redirect_hosts, &key("redirect_hosts"), report, |h| {
            HostPattern::parse(h)
        });
        check_scopes(
            name,
            self.scopes.as_deref(),
            self.default_scope.as_deref(),
            report,
        );
        let native_schemes = parsed(&self.native_schemes, &key("native_schemes"), report, |s| {
            parse_scheme(s)
        });
        let mut lifetime =
            |text: Option<String>, k: &str| text.map(|t| duration(&t, &key(k), report));
        let client_lifetime = lifetime(self.client_lifetime, "client_lifetime");
        let idle_lifetime = lifetime(self.idle_lifetime, "idle_lifetime");
        let client_secret_lifetime =
            lifetime(self.client_secret_lifetime, "client_secret_lifetime");
        Policy {
            name: name.to_owned(),
            grant_types,
            response_types,
            token_endpoint_auth_methods,
            scopes: self.scopes,
            default_scope: self.default_scope,
            https_only: self.https_only,
            redirect_hosts,
            native_loopback_http: self.native_loopback_http,
            native_custom_schemes: self.native_custom_schemes,
            native_schemes,
            max_clients_per_software_id: self.max_clients_per_software_id,
            client_lifetime,
            idle_lifetime,
            client_secret_lifetime,
            extra_metadata: Vec::new(),
        }
    }
}

/// `registration.extra_metadata`: extension member names, each reported
/// when it cannot be one (see [`ExtraMetadata::refusal`]).
fn extra_metadata(names: Vec<String>, report: &mut Report) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| match ExtraMetadata::refusal(name) {
            Some(why) => {
                report.error(format!("registration.extra_metadata: {why}"));
                false
            }
            None => true,
        })
        .collect()
}

/// The names of `list` that `parse` knows, reporting each other one.
fn known<T>(
    list: Option<Vec<String>>,
    key: &str,
    report: &mut Report,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<Vec<T>> {
    let list = list?;
    let mut values = Vec::new();
    for name in &list {
        match parse(name) {
            Some(value) => values.push(value),
            None => report.error(format!("{key}: `{name}` is not supported")),
        }
    }
    Some(values)
}

/// Each of `list` parsed, reporting each that does not parse.
fn parsed<T>(
    list: &[String],
    key: &str,
    report: &mut Report,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    list.iter()
        .filter_map(|text| {
            parse(text)
                .map_err(|e| report.error(format!("{key}: {e}")))
                .ok()
        })
        .collect()
}

/// Scope values must be RFC 6749 scope tokens, and the default scope must
/// be among them, or every registration without a scope would be refused.
fn check_scopes(name: &str, scopes: Option<&[String]>, default: Option<&str>, report: &mut Report) {
    let key = |k: &str| format!("policies.{name}.{k}");
    for scope in scopes
        .unwrap_or_default()
        .iter()
        .filter(|s| !is_scope_token(s))
    {
        report.error(format!(
            "{}: `{}` is not a scope token (printable ASCII without space, `\"` or `\\`)",
            key("scopes"),
            scope.escape_debug()
        ));
    }
    let Some(default) = default else {
        return;
    };
    if !default.split(' ').all(is_scope_token) {
        report.error(format!(
            "{} `{}` must be scope tokens separated by single spaces",
            key("default_scope"),
            default.escape_debug()
        ));
    } else if let Some(scopes) = scopes {
        for word in default
            .split(' ')
            .filter(|w| !scopes.iter().any(|s| s == w))
        {
            report.error(format!(
                "{}: `{word}` is not in {}, so every registration without a scope \
                 would be refused",
                key("default_scope"),
                key("scopes")
            ));
        }
    }
}
