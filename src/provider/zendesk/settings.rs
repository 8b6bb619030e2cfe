//! `[provider] kind = "zendesk"`: the keys of the Zendesk backend (see
//! `config/zendesk.toml`).

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::{Zendesk, ZendeskSettings};
use crate::clock::Clock;
use crate::provider::rest::{ProviderAuth, ProviderSetupError, Resilience};
use crate::provider::settings::{BackendSettings, KindSettings, not_blank, required};
use crate::provider::{Credential, Provider};
use crate::settings::{Report, http_url};

const KIND: &str = "zendesk";

/// The keys of `kind = "zendesk"`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawZendeskSettings {
    /// The account's subdomain: `https://{subdomain}.zendesk.com`; or else:
    subdomain: Option<String>,
    /// Another base URL (tests, proxies).
    base_url: Option<String>,
    /// An admin's email, with `api_token`: Basic `{email}/token:{token}`.
    email: Option<String>,
    /// An admin's API token, with `email`.
    api_token: Option<String>,
    /// An admin's OAuth access token, alone, as Bearer.
    access_token: Option<String>,
    /// The admin user recorded as each client's creator: the gateway's
    /// mark. Required.
    user_id: Option<i64>,
}

impl BackendSettings for ZendeskSettings {
    fn credentialed_url(&self) -> Option<&Url> {
        Some(&self.base_url)
    }

    fn build(&self, _: Arc<dyn Clock>) -> Result<Option<Arc<dyn Provider>>, ProviderSetupError> {
        Ok(Some(Arc::new(Zendesk::new(self.clone())?)))
    }
}

impl KindSettings for ZendeskSettings {
    const KIND: &'static str = KIND;
    const SEALS: Option<&'static str> = Some("Zendesk's record ids");
    type Raw = RawZendeskSettings;

    fn validate(
        raw: RawZendeskSettings,
        resilience: Resilience,
        report: &mut Report,
    ) -> Option<Self> {
        not_blank(
            &[
                ("api_token", &raw.api_token),
                ("access_token", &raw.access_token),
                ("subdomain", &raw.subdomain),
                ("base_url", &raw.base_url),
                ("email", &raw.email),
            ],
            report,
        );
        if raw.user_id.is_some_and(|id| id <= 0) {
            report.error("provider.user_id must be a positive Zendesk user id");
        }
        let base_url = base_url(raw.subdomain.as_deref(), raw.base_url.as_deref(), report);
        let user_id = required(raw.user_id, "provider.user_id", KIND, report);
        let auth = match (raw.email, raw.api_token, raw.access_token) {
            (Some(email), Some(token), None) => Some(ProviderAuth::Basic {
                user: format!("{email}/token"),
                password: Credential::new(token),
            }),
            (None, None, Some(token)) => Some(ProviderAuth::Bearer(Credential::new(token))),
            _ => {
                report.error(
                    "provider.kind = \"zendesk\" needs provider.email with provider.api_token, \
                     or provider.access_token alone",
                );
                None
            }
        };
        Some(Self {
            base_url: base_url?,
            auth: auth?,
            user_id: user_id?,
            resilience,
        })
    }
}

/// The API base: from the subdomain, or given whole.
fn base_url(subdomain: Option<&str>, base_url: Option<&str>, report: &mut Report) -> Option<Url> {
    match (subdomain, base_url) {
        (Some(subdomain), None) => {
            let valid = !subdomain.is_empty()
                && subdomain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                report.error(format!(
                    "provider.subdomain `{subdomain}` must be letters, digits and hyphens"
                ));
            }
            Url::parse(&format!("https://{subdomain}.zendesk.com")).ok()
        }
        (None, Some(base)) => http_url(base, "provider.base_url", report),
        _ => {
            report.error(
                "provider.kind = \"zendesk\" needs exactly one of provider.subdomain and \
                 provider.base_url",
            );
            None
        }
    }
}
