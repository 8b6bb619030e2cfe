//! `[provider] kind = "rfc7591"`: the keys of the backend for any RFC 7591
//! server (see `config/rfc7591.toml`).

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::{Rfc7591, Rfc7591Settings};
use crate::clock::Clock;
use crate::provider::rest::{ProviderSetupError, Resilience};
use crate::provider::settings::{BackendSettings, KindSettings, not_blank, required_url};
use crate::provider::{Credential, Provider};
use crate::settings::Report;

const KIND: &str = "rfc7591";

/// The keys of `kind = "rfc7591"`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRfc7591Settings {
    /// The upstream's issuer, for discovery. Required.
    issuer: Option<String>,
    /// The upstream's registration endpoint. Required.
    registration_endpoint: Option<String>,
    /// The initial access token the upstream requires, if it does.
    initial_access_token: Option<String>,
}

impl BackendSettings for Rfc7591Settings {
    fn credentialed_url(&self) -> Option<&Url> {
        Some(&self.registration_endpoint)
    }

    fn build(&self, _: Arc<dyn Clock>) -> Result<Option<Arc<dyn Provider>>, ProviderSetupError> {
        Ok(Some(Arc::new(Rfc7591::new(self.clone())?)))
    }

    /// The upstream serves one at its `issuer`.
    fn has_discovery(&self) -> bool {
        true
    }
}

impl KindSettings for Rfc7591Settings {
    const KIND: &'static str = KIND;
    const SEALS: Option<&'static str> = Some("the upstream's registration access tokens");
    type Raw = RawRfc7591Settings;

    fn validate(
        raw: RawRfc7591Settings,
        resilience: Resilience,
        report: &mut Report,
    ) -> Option<Self> {
        not_blank(
            &[
                ("issuer", &raw.issuer),
                ("registration_endpoint", &raw.registration_endpoint),
                ("initial_access_token", &raw.initial_access_token),
            ],
            report,
        );
        let issuer = required_url(raw.issuer.as_deref(), "provider.issuer", KIND, report);
        let registration_endpoint = required_url(
            raw.registration_endpoint.as_deref(),
            "provider.registration_endpoint",
            KIND,
            report,
        );
        Some(Self {
            issuer: issuer?,
            registration_endpoint: registration_endpoint?,
            initial_access_token: raw.initial_access_token.map(Credential::new),
            resilience,
        })
    }
}
