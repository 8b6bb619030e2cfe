//! The seam to the identity provider that holds the clients: one trait,
//! [`Provider`], and one implementation per backend.

use async_trait::async_trait;

use crate::domain::{ClientId, ClientMetadata, ClientSecret};

pub mod local;

/// A client as the gateway asks a provider to hold it.
#[derive(Debug)]
pub struct ProvisionedClient<'a> {
    /// The gateway-chosen identifier.
    pub client_id: &'a ClientId,
    /// Validated metadata.
    pub metadata: &'a ClientMetadata,
    /// The client secret in clear, when the gateway issued one in this call.
    pub client_secret: Option<&'a ClientSecret>,
}

/// Why a provider call failed, classified by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the metadata; the app must change its request.
    #[error("the provider refused the client: {0}")]
    Rejected(String),
    /// The provider is down, slow or rate limiting; a retry later may succeed.
    #[error("the provider is unavailable: {reason}")]
    Unavailable {
        /// What happened, in words.
        reason: String,
        /// Seconds after which a retry makes sense.
        retry_after_secs: u64,
    },
}

/// A backing identity provider's client API.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;

    /// Creates the client at the provider.
    async fn create(&self, client: &ProvisionedClient<'_>) -> Result<(), ProviderError>;

    /// Replaces the client's registration at the provider.
    async fn replace(&self, client: &ProvisionedClient<'_>) -> Result<(), ProviderError>;

    /// Deletes the client at the provider; deleting an absent client succeeds.
    async fn delete(&self, client_id: &ClientId) -> Result<(), ProviderError>;
}
