//! The built-in registry: the gateway's own store is the system of record, so
//! there is nothing further to call. This is the default backend, which lets
//! the gateway run with nothing else: it builds no provider, and the service
//! holds [`super::registry::Registry::Gateway`].

use async_trait::async_trait;
use serde_json::Value;

use super::{ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned};
use crate::domain::{ClientId, ProviderState};

// Settings: `kind = "local"` has no keys of its own.
mod settings {
    use std::sync::Arc;

    use serde::Deserialize;
    use url::Url;

    use crate::clock::Clock;
    use crate::provider::Provider;
    use crate::provider::rest::{ProviderSetupError, Resilience};
    use crate::provider::settings::{BackendSettings, KindSettings};
    use crate::settings::Report;

    /// Settings of the built-in registry: none.
    #[derive(Debug, Clone, Default, Deserialize)]
    pub struct LocalSettings {}

    impl BackendSettings for LocalSettings {
        fn credentialed_url(&self) -> Option<&Url> {
            None
        }

        /// No provider: the gateway's store is the registry.
        fn build(
            &self,
            _clock: Arc<dyn Clock>,
        ) -> Result<Option<Arc<dyn Provider>>, ProviderSetupError> {
            Ok(None)
        }
    }

    impl KindSettings for LocalSettings {
        const KIND: &'static str = "local";
        const SEALS: Option<&'static str> = None;
        type Raw = Self;

        fn validate(raw: Self, _: Resilience, _: &mut Report) -> Option<Self> {
            Some(raw)
        }
    }
}
pub use settings::LocalSettings;

/// What [`super::registry::Registry::provider`] is for the built-in
/// registry: a provider that holds nothing, for what the service asks of
/// any registry (reconcile, discovery, a replace's answer).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalRegistry;

#[async_trait]
impl Provider for LocalRegistry {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        Ok(Provisioned::keeping_secret_of(request))
    }

    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        Ok(Provisioned::keeping_secret_of(request))
    }

    async fn delete(
        &self,
        _client_id: &ClientId,
        _state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Nothing exists outside the gateway's own store.
    async fn discard_unconfirmed(
        &self,
        _client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        Ok(Presence::Absent)
    }

    /// The store is the registry: there is nothing else to compare with.
    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        Ok(None)
    }

    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        Ok(None)
    }
}
