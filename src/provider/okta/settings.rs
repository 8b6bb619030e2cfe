//! `[provider] kind = "okta"`: the keys of the Okta backend (see
//! `config/okta.toml`).

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::{Okta, OktaSettings};
use crate::clock::Clock;
use crate::provider::rest::{ProviderAuth, ProviderSetupError, Resilience};
use crate::provider::settings::{BackendSettings, KindSettings, not_blank, required_url};
use crate::provider::{Credential, Provider};
use crate::settings::{Report, http_url};

const KIND: &str = "okta";

/// The keys of `kind = "okta"`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawOktaSettings {
    /// The org URL, e.g. `https://example.okta.com`. Required.
    org_url: Option<String>,
    /// The authorization server apps use, for discovery; the org's own
    /// (`org_url`) by default, or a custom one.
    issuer: Option<String>,
    /// An API token, sent as `SSWS`; or else:
    api_token: Option<String>,
    /// An OAuth access token with the `okta.clients.*` scopes, as Bearer.
    access_token: Option<String>,
}

impl BackendSettings for OktaSettings {
    fn credentialed_url(&self) -> Option<&Url> {
        Some(&self.org_url)
    }

    fn build(
        &self,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Arc<dyn Provider>>, ProviderSetupError> {
        Ok(Some(Arc::new(Okta::new(self.clone(), clock)?)))
    }

    /// The authorization server serves one at its `issuer`.
    fn has_discovery(&self) -> bool {
        true
    }

    /// Okta's `/v1/authorize` lists `scope` as required (Okta OAuth 2.0
    /// API, "authorizeCustomAS": `scope`, required: true).
    fn authorization_requires_scope(&self) -> bool {
        true
    }
}

impl KindSettings for OktaSettings {
    const KIND: &'static str = KIND;
    const SEALS: Option<&'static str> =
        Some("the names Okta holds for clients registered without one");
    type Raw = RawOktaSettings;

    fn validate(raw: RawOktaSettings, resilience: Resilience, report: &mut Report) -> Option<Self> {
        not_blank(
            &[
                ("org_url", &raw.org_url),
                ("issuer", &raw.issuer),
                ("api_token", &raw.api_token),
                ("access_token", &raw.access_token),
            ],
            report,
        );
        let org_url = required_url(raw.org_url.as_deref(), "provider.org_url", KIND, report);
        let issuer = match raw.issuer.as_deref() {
            Some(text) => http_url(text, "provider.issuer", report),
            None => org_url.clone(),
        };
        let auth = match (raw.api_token, raw.access_token) {
            (Some(token), None) => Some(ProviderAuth::Ssws(Credential::new(token))),
            (None, Some(token)) => Some(ProviderAuth::Bearer(Credential::new(token))),
            _ => {
                report.error(
                    "provider.kind = \"okta\" needs exactly one of provider.api_token and \
                     provider.access_token",
                );
                None
            }
        };
        Some(Self {
            org_url: org_url?,
            issuer: issuer?,
            auth: auth?,
            resilience,
        })
    }
}
