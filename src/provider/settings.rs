//! `[provider]`: the keys every backend shares (`kind`, `timeout`,
//! `retries`, `circuit_*`, `reconcile_interval`, `report_unknown_clients`),
//! and the seam through which each backend reads the keys of its own kind.
//!
//! A backend's file (or folder) owns its keys: a raw `Deserialize` struct,
//! its validation into the backend's typed settings, and their docs, joined
//! to the gateway by implementing [`KindSettings`]. The `backends!` list in
//! `provider/mod.rs` is the one place that names them all.
//!
//! A key of another kind is refused as not applying to this one; a key of
//! no kind is refused as unknown, like a misspelt key in any section.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::Provider;
use super::breaker::BreakerSettings;
use super::rest::{ProviderSetupError, Resilience};
use crate::clock::Clock;
use crate::settings::{Report, duration, field_names, http_url};

/// A backend's validated settings, as the gateway uses them once read.
pub trait BackendSettings: std::fmt::Debug + Send + Sync {
    /// The provider's base URL when the gateway sends it a credential
    /// (the gateway warns at start when that is plain http off this machine).
    fn credentialed_url(&self) -> Option<&Url>;

    /// Builds the backend's provider (`None` when the gateway's own store is
    /// the registry); `clock` is the gateway's time.
    fn build(&self, clock: Arc<dyn Clock>)
    -> Result<Option<Arc<dyn Provider>>, ProviderSetupError>;

    /// Whether the provider's authorization endpoint requires `scope`: the
    /// authorization front then refuses (`invalid_scope`) a request that
    /// sends none for a client that registered none, rather than pass the
    /// omission on.
    fn authorization_requires_scope(&self) -> bool {
        false
    }

    /// Whether the provider publishes a discovery document, from which the
    /// authorization front takes its issuer and endpoints (the front needs
    /// one).
    fn has_discovery(&self) -> bool {
        false
    }

    /// Whether the backend works only through the authorization front
    /// (broker mode: apps sign in through the gateway's one client).
    fn requires_front(&self) -> bool {
        false
    }
}

/// How a backend's settings are read from `[provider]`.
pub trait KindSettings: BackendSettings + Sized {
    /// The `kind` that picks this backend.
    const KIND: &'static str;

    /// What the backend keeps per client that is sealed with
    /// `store.encryption_key` (so that key is required), if anything.
    const SEALS: Option<&'static str>;

    /// The keys of this kind, as written (besides the shared ones). Every
    /// key is optional to serde (`#[serde(default)]`, no `flatten`), so
    /// that validation can name each missing one.
    type Raw: DeserializeOwned + Default;

    /// Validates `raw`, reporting every problem; `None` when there was any.
    /// `resilience` comes from the shared keys.
    fn validate(raw: Self::Raw, resilience: Resilience, report: &mut Report) -> Option<Self>;
}

/// Lists the provider backends, one line each: the module (whose name is
/// its `kind`), its settings type and its variant of `ProviderKind`; makes
/// the enum and the table the `[provider]` reader dispatches on. (The
/// modules are declared outside the list, where rustfmt sees them.)
macro_rules! backends {
    ($($module:ident :: $settings:ident => $variant:ident,)+) => {
        /// The provider backends, each with its validated settings:
        /// `[provider] kind` picks one.
        #[derive(Debug, Clone)]
        pub enum ProviderKind {
            $(
                #[doc = concat!("`kind = \"", stringify!($module), "\"`.")]
                $variant($module::$settings),
            )+
        }

        $(
            impl From<$module::$settings> for ProviderKind {
                fn from(settings: $module::$settings) -> Self {
                    Self::$variant(settings)
                }
            }
        )+

        impl ProviderKind {
            /// Every backend, as the `[provider]` reader sees it.
            const KINDS: &[$crate::provider::settings::Kind] = &[$($crate::provider::settings::Kind::of::<$module::$settings>(),)+];

            /// The settings, as the gateway uses them.
            #[must_use]
            pub fn settings(&self) -> &dyn $crate::provider::settings::BackendSettings {
                match self {
                    $(Self::$variant(settings) => settings,)+
                }
            }
        }

        #[cfg(test)]
        #[test]
        fn every_kind_is_named_as_its_module() {
            let names: Vec<&str> = ProviderKind::KINDS.iter().map(|kind| kind.name()).collect();
            assert_eq!(names, [$(stringify!($module)),+]);
        }
    };
}
pub(crate) use backends;

/// One backend, as the `[provider]` reader sees it.
pub struct Kind {
    name: &'static str,
    seals: Option<&'static str>,
    keys: fn() -> &'static [&'static str],
    read: fn(toml::Table, Resilience, &mut Report) -> Option<super::ProviderKind>,
}

impl Kind {
    /// The `kind` that picks this backend.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The entry of the backend whose settings are `S`.
    #[must_use]
    pub const fn of<S>() -> Self
    where
        S: KindSettings,
        super::ProviderKind: From<S>,
    {
        Self {
            name: S::KIND,
            seals: S::SEALS,
            keys: field_names::<S::Raw>,
            read: read_kind::<S>,
        }
    }
}

/// Reads the keys left after the shared ones as kind `S`.
fn read_kind<S>(
    keys: toml::Table,
    resilience: Resilience,
    report: &mut Report,
) -> Option<super::ProviderKind>
where
    S: KindSettings,
    super::ProviderKind: From<S>,
{
    let (raw, unknown) = report.keys::<S::Raw>("provider", keys);
    for key in unknown {
        let top = key.split('.').next().unwrap_or(&key);
        if of_some_kind(top) {
            report.error(format!(
                "provider.{key} does not apply to provider.kind = \"{}\"",
                S::KIND
            ));
        } else {
            report.error(format!("unknown key `provider.{key}`"));
        }
    }
    S::validate(raw, resilience, report).map(super::ProviderKind::from)
}

/// Whether some kind reads `key`.
fn of_some_kind(key: &str) -> bool {
    super::ProviderKind::KINDS
        .iter()
        .any(|kind| (kind.keys)().contains(&key))
}

/// `[provider]`: the backend that holds the clients.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Which backend, with its settings.
    pub kind: super::ProviderKind,
    /// How often the background reconcile runs (zero: never).
    pub reconcile_interval: Duration,
    /// Whether reconcile reports clients the provider holds that the gateway
    /// did not make (false where the provider is shared with other tools).
    pub report_unknown_clients: bool,
    /// The longest one provider operation may run (from `timeout` and
    /// `retries`): a request that makes one must be given longer.
    pub operation_deadline: Duration,
}

/// The keys every kind shares, as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawShared {
    /// The backend: `local` (the default), `hydra`, `rfc7591`, …
    kind: String,
    /// Bound on every attempt of a call (humantime).
    timeout: String,
    /// Extra attempts for calls that may be repeated.
    retries: u32,
    /// Failure rate above which the breaker sheds calls (0 to 1].
    circuit_failure_rate: f64,
    /// Calls the breaker's window must hold before the rate is believed.
    circuit_min_calls: u32,
    /// How far back the breaker counts calls (at least 1s).
    circuit_window: String,
    /// How often the background reconcile runs (`0s`: never).
    reconcile_interval: String,
    /// Whether reconcile reports clients the gateway did not make.
    report_unknown_clients: bool,
}

impl Default for RawShared {
    fn default() -> Self {
        Self {
            kind: "local".into(),
            timeout: "10s".into(),
            retries: 2,
            circuit_failure_rate: BreakerSettings::DEFAULT.failure_rate,
            circuit_min_calls: BreakerSettings::DEFAULT.min_calls,
            circuit_window: "30s".into(),
            reconcile_interval: "60s".into(),
            report_unknown_clients: true,
        }
    }
}

impl RawShared {
    fn resilience(&self, report: &mut Report) -> Resilience {
        let timeout = duration(&self.timeout, "provider.timeout", report);
        if !(self.circuit_failure_rate > 0.0 && self.circuit_failure_rate <= 1.0) {
            report.error(format!(
                "provider.circuit_failure_rate `{}` must be above 0 and at most 1",
                self.circuit_failure_rate
            ));
        }
        let window = duration(&self.circuit_window, "provider.circuit_window", report);
        if window < Duration::from_secs(1) {
            report.error("provider.circuit_window must be at least 1s");
        }
        Resilience {
            timeout,
            retries: self.retries,
            breaker: BreakerSettings {
                failure_rate: self.circuit_failure_rate,
                min_calls: self.circuit_min_calls,
                window,
            },
        }
    }
}

impl ProviderSettings {
    /// Reads `[provider]`: the shared keys, then the rest as the keys of
    /// its `kind`. `sealing_key` tells whether `store.encryption_key` is
    /// set, which the kinds that seal state require. `None` when the
    /// backend's settings are refused (the problems are in `report`).
    pub fn read(keys: toml::Table, sealing_key: bool, report: &mut Report) -> Option<Self> {
        let shared_keys = field_names::<RawShared>();
        let (shared, own): (toml::Table, toml::Table) = keys
            .into_iter()
            .partition(|(key, _)| shared_keys.contains(&key.as_str()));
        let shared: RawShared = report.section("provider", shared);
        let resilience = shared.resilience(report);
        let operation_deadline = resilience.operation_deadline();
        let reconcile_interval = duration(
            &shared.reconcile_interval,
            "provider.reconcile_interval",
            report,
        );
        let kind = backend(&shared.kind, own, resilience, sealing_key, report);
        Some(Self {
            kind: kind?,
            reconcile_interval,
            report_unknown_clients: shared.report_unknown_clients,
            operation_deadline,
        })
    }
}

/// Reads the backend `name`'s own `keys`.
fn backend(
    name: &str,
    keys: toml::Table,
    resilience: Resilience,
    sealing_key: bool,
    report: &mut Report,
) -> Option<super::ProviderKind> {
    let kinds = super::ProviderKind::KINDS;
    let Some(kind) = kinds.iter().find(|kind| kind.name == name) else {
        let names: Vec<&str> = kinds.iter().map(|kind| kind.name).collect();
        report.error(format!(
            "provider.kind `{name}` is not supported; supported: {}",
            names.join(", ")
        ));
        // The keys of a kind that does not exist cannot be judged, but a
        // key of no kind at all is still a misspelling.
        for key in keys.keys().filter(|key| !of_some_kind(key)) {
            report.error(format!("unknown key `provider.{key}`"));
        }
        return None;
    };
    if let (Some(sealed), false) = (kind.seals, sealing_key) {
        report.error(format!(
            "store.encryption_key is required with provider.kind = \"{name}\" (it seals \
             {sealed} at rest)"
        ));
    }
    (kind.read)(keys, resilience, report)
}

/// A key that `kind` requires, or an error naming it.
pub fn required<T>(value: Option<T>, key: &str, kind: &str, report: &mut Report) -> Option<T> {
    if value.is_none() {
        report.error(format!("{key} is required with provider.kind = \"{kind}\""));
    }
    value
}

/// A required http(s) URL with a host, or an error naming `key`.
pub fn required_url(text: Option<&str>, key: &str, kind: &str, report: &mut Report) -> Option<Url> {
    http_url(required(text, key, kind, report)?, key, report)
}

/// Reports each of `texts` (key names and values) that is present but
/// blank: it would pass as present and fail at the first call.
pub fn not_blank(texts: &[(&str, &Option<String>)], report: &mut Report) {
    for (key, value) in texts {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            report.error(format!("provider.{key} is empty"));
        }
    }
}
