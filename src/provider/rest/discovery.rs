//! The provider's discovery document, fetched through the backend's client
//! and kept for a while.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::Value;
use url::Url;

use super::{DEFAULT_RETRY_AFTER_SECS, ProviderHttp, ProviderSetupError, Repeat};
use crate::provider::ProviderError;

/// How long a fetched discovery document is served before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// A provider's discovery document, fetched on demand and kept for a while.
#[derive(Debug, Clone)]
pub struct DiscoveryCache {
    url: Url,
    cache: Cache<(), Value>,
}

impl DiscoveryCache {
    /// Caches `{issuer}/.well-known/openid-configuration`.
    pub fn new(issuer: &Url) -> Result<Self, ProviderSetupError> {
        let base = issuer.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .map_err(|e| ProviderSetupError(format!("issuer `{issuer}`: {e}")))?;
        Ok(Self {
            url,
            cache: Cache::builder()
                .max_capacity(1)
                .time_to_live(DISCOVERY_TTL)
                .build(),
        })
    }

    /// The document, from the cache or freshly fetched.
    pub async fn get(&self, http: &ProviderHttp) -> Result<Value, ProviderError> {
        self.cache
            .try_get_with((), async {
                let answer = http
                    .call(http.client().get(self.url.clone()), Repeat::Safe)
                    .await?;
                if !answer.status.is_success() {
                    return Err(answer.failure());
                }
                answer.json::<Value>()
            })
            .await
            .map_err(|e: Arc<ProviderError>| match &*e {
                ProviderError::Rejected(m)
                | ProviderError::Refused { detail: m, .. }
                | ProviderError::Indeterminate(m)
                | ProviderError::NotFound(m) => ProviderError::Unavailable {
                    reason: format!("discovery document: {m}"),
                    retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
                },
                ProviderError::Unavailable {
                    reason,
                    retry_after_secs,
                } => ProviderError::Unavailable {
                    reason: reason.clone(),
                    retry_after_secs: *retry_after_secs,
                },
            })
    }
}
