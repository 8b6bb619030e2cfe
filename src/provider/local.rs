//! The built-in registry: the gateway's own store is the system of record, so
//! there is nothing further to call. This is the default backend, which lets
//! the gateway run with nothing else.

use async_trait::async_trait;

use super::{Provider, ProviderError, ProvisionedClient};
use crate::domain::ClientId;

/// The built-in registry backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalRegistry;

#[async_trait]
impl Provider for LocalRegistry {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn create(&self, _client: &ProvisionedClient<'_>) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn replace(&self, _client: &ProvisionedClient<'_>) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete(&self, _client_id: &ClientId) -> Result<(), ProviderError> {
        Ok(())
    }
}
