//! `[provider] kind = "billforward"`: the keys of the BillForward backend
//! (see `config/billforward.toml`).

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::{BillForward, BillForwardSettings};
use crate::clock::Clock;
use crate::provider::rest::{ProviderSetupError, Resilience};
use crate::provider::settings::{BackendSettings, KindSettings, not_blank, required, required_url};
use crate::provider::{Credential, Provider};
use crate::settings::Report;

const KIND: &str = "billforward";

/// The keys of `kind = "billforward"`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawBillForwardSettings {
    /// API base, e.g. `https://api.billforward.net/v1`. Required.
    base_url: Option<String>,
    /// Private API token, sent as Bearer. Required.
    api_token: Option<String>,
    /// `organizationID` of every client. Required.
    organization_id: Option<String>,
    /// `resourceIds` of every client. Required, not empty.
    resource_ids: Vec<String>,
    /// `authorities` of every client. Required, not empty.
    authorities: Vec<String>,
    /// `accessTokenValiditySeconds` of every client (12 hours by default).
    access_token_validity_seconds: Option<u32>,
    /// `refreshTokenValiditySeconds` of every client (30 days by default).
    refresh_token_validity_seconds: Option<u32>,
    /// How multi-valued members are joined into one string (`,` by
    /// default); no `resource_ids` or `authorities` value may hold it.
    list_separator: Option<String>,
}

impl BackendSettings for BillForwardSettings {
    fn credentialed_url(&self) -> Option<&Url> {
        Some(&self.base_url)
    }

    fn build(&self, _: Arc<dyn Clock>) -> Result<Option<Arc<dyn Provider>>, ProviderSetupError> {
        Ok(Some(Arc::new(BillForward::new(self.clone())?)))
    }
}

impl KindSettings for BillForwardSettings {
    const KIND: &'static str = KIND;
    const SEALS: Option<&'static str> = None;
    type Raw = RawBillForwardSettings;

    fn validate(
        raw: RawBillForwardSettings,
        resilience: Resilience,
        report: &mut Report,
    ) -> Option<Self> {
        not_blank(
            &[
                ("base_url", &raw.base_url),
                ("api_token", &raw.api_token),
                ("organization_id", &raw.organization_id),
            ],
            report,
        );
        let base_url = required_url(raw.base_url.as_deref(), "provider.base_url", KIND, report);
        let api_token = required(raw.api_token, "provider.api_token", KIND, report);
        let organization_id = required(
            raw.organization_id,
            "provider.organization_id",
            KIND,
            report,
        );
        let listed = |values: Vec<String>, key: &str, report: &mut Report| {
            required(Some(values).filter(|v| !v.is_empty()), key, KIND, report)
        };
        let resource_ids = listed(raw.resource_ids, "provider.resource_ids", report);
        let authorities = listed(raw.authorities, "provider.authorities", report);
        let list_separator = raw.list_separator.unwrap_or_else(|| ",".into());
        check_separator(
            &list_separator,
            resource_ids.iter().chain(authorities.iter()).flatten(),
            report,
        );
        Some(Self {
            base_url: base_url?,
            api_token: Credential::new(api_token?),
            organization_id: organization_id?,
            resource_ids: resource_ids?,
            authorities: authorities?,
            // Spring Security OAuth's defaults: 12 hours and 30 days.
            access_token_validity_seconds: raw.access_token_validity_seconds.unwrap_or(43_200),
            refresh_token_validity_seconds: raw.refresh_token_validity_seconds.unwrap_or(2_592_000),
            list_separator,
            resilience,
        })
    }
}

/// The separator must be something, and no joined value may hold it.
fn check_separator<'a>(
    separator: &str,
    values: impl Iterator<Item = &'a String>,
    report: &mut Report,
) {
    if separator.is_empty() {
        report.error("provider.list_separator must not be empty");
    }
    for value in values {
        if value.contains(separator) {
            report.error(format!(
                "provider.resource_ids and provider.authorities values must not contain the \
                 list separator `{separator}` (`{value}`)"
            ));
        }
    }
}
