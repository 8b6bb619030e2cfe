//! `[provider] kind = "hydra"`: the keys of the Hydra backend (see
//! `config/hydra.toml`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::{Hydra, HydraSettings, LIFESPANS};
use crate::clock::Clock;
use crate::provider::rest::{ProviderSetupError, Resilience};
use crate::provider::settings::{BackendSettings, KindSettings, not_blank, required_url};
use crate::provider::{Credential, Provider};
use crate::settings::{Report, duration};

const KIND: &str = "hydra";

/// The keys of `kind = "hydra"`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHydraSettings {
    /// Base URL of the admin API (the part before `/admin/clients`). Required.
    admin_url: Option<String>,
    /// Hydra's public issuer URL, where discovery is served. Required.
    issuer: Option<String>,
    /// An Ory Network API key, sent as a bearer token.
    api_key: Option<String>,
    /// Token lifespans set on every client, by Hydra member name
    /// ([`LIFESPANS`]), as humantime durations.
    lifespans: BTreeMap<String, String>,
    /// The `owner` written on every client the gateway makes: its mark
    /// (`dcr-gateway` by default).
    owner: Option<String>,
}

impl BackendSettings for HydraSettings {
    fn credentialed_url(&self) -> Option<&Url> {
        self.api_key.as_ref().map(|_| &self.admin_url)
    }

    fn build(&self, _: Arc<dyn Clock>) -> Result<Option<Arc<dyn Provider>>, ProviderSetupError> {
        Ok(Some(Arc::new(Hydra::new(self.clone())?)))
    }

    /// Hydra serves one at its public `issuer`.
    fn has_discovery(&self) -> bool {
        true
    }
}

impl KindSettings for HydraSettings {
    const KIND: &'static str = KIND;
    const SEALS: Option<&'static str> = None;
    type Raw = RawHydraSettings;

    fn validate(
        raw: RawHydraSettings,
        resilience: Resilience,
        report: &mut Report,
    ) -> Option<Self> {
        not_blank(
            &[
                ("issuer", &raw.issuer),
                ("admin_url", &raw.admin_url),
                ("api_key", &raw.api_key),
                ("owner", &raw.owner),
            ],
            report,
        );
        let mut lifespans = BTreeMap::new();
        for (name, text) in &raw.lifespans {
            if LIFESPANS.contains(&name.as_str()) {
                let key = format!("provider.lifespans.{name}");
                lifespans.insert(name.clone(), duration(text, &key, report));
            } else {
                report.error(format!(
                    "provider.lifespans.{name} is not a Hydra lifespan; known: {}",
                    LIFESPANS.join(", ")
                ));
            }
        }
        let admin_url = required_url(raw.admin_url.as_deref(), "provider.admin_url", KIND, report);
        let issuer = required_url(raw.issuer.as_deref(), "provider.issuer", KIND, report);
        Some(Self {
            admin_url: admin_url?,
            issuer: issuer?,
            api_key: raw.api_key.map(Credential::new),
            lifespans,
            owner: raw.owner.unwrap_or_else(|| "dcr-gateway".into()),
            resilience,
        })
    }
}
