//! The provider as the front sees it: its endpoints, read from its
//! discovery document, and a wrapper that registers the gateway's single
//! `{public_url}/callback` there in place of the app's redirect URIs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::{ClientId, ClientMetadata, ProviderState, RegisteredUri};
use crate::provider::{
    ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned,
};

/// What the front needs of the provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    /// The provider's issuer: the `iss` its authorization responses carry.
    pub issuer: String,
    /// Where users are sent to log in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// Where tokens are revoked (RFC 7009), when the provider has it.
    pub revocation_endpoint: Option<String>,
    /// Whether the provider says it sends `iss` (RFC 9207); then an
    /// authorization response without one is refused.
    pub sends_iss: bool,
}

impl ProviderEndpoints {
    /// Reads the endpoints out of the provider's document.
    pub fn read(document: &Value) -> Result<Self, String> {
        let text = |member: &str| {
            document
                .get(member)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let required = |member: &str| {
            text(member)
                .ok_or_else(|| format!("the provider's discovery document lacks `{member}`"))
        };
        Ok(Self {
            issuer: required("issuer")?,
            authorization_endpoint: required("authorization_endpoint")?,
            token_endpoint: required("token_endpoint")?,
            revocation_endpoint: text("revocation_endpoint"),
            sends_iss: document
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// A provider whose clients are registered with the gateway's callback as
/// their one redirect URI (clients without redirect URIs are sent as they
/// are). The app is still told, and the gateway still checks, the app's own
/// redirect URIs.
pub struct CallbackAtProvider {
    inner: Arc<dyn Provider>,
    callback: RegisteredUri,
}

impl CallbackAtProvider {
    /// Wraps `inner`, registering `callback` there.
    #[must_use]
    pub fn new(inner: Arc<dyn Provider>, callback: RegisteredUri) -> Self {
        Self { inner, callback }
    }

    /// `metadata` as the provider is to hold it.
    fn at_provider(&self, metadata: &ClientMetadata) -> ClientMetadata {
        let mut sent = metadata.clone();
        if !sent.redirect_uris.is_empty() {
            sent.redirect_uris = vec![self.callback.clone()];
        }
        sent
    }

    /// What the provider says it holds, with the app's redirect URIs in
    /// place of the callback.
    fn as_registered(
        request: &ProvisionRequest<'_>,
        result: Result<Provisioned, ProviderError>,
    ) -> Result<Provisioned, ProviderError> {
        let mut provisioned = result?;
        if let Some(held) = provisioned.held_metadata.as_mut() {
            if held.contains_key("redirect_uris") {
                let own = request.metadata.redirect_uris.iter();
                held.insert(
                    "redirect_uris".into(),
                    own.map(|uri| Value::from(uri.as_str())).collect(),
                );
            }
        }
        Ok(provisioned)
    }
}

#[async_trait]
impl Provider for CallbackAtProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn is_gateway_registry(&self) -> bool {
        self.inner.is_gateway_registry()
    }

    fn supports(&self, metadata: &ClientMetadata) -> Result<(), String> {
        self.inner.supports(&self.at_provider(metadata))
    }

    fn operation_deadline(&self) -> Option<Duration> {
        self.inner.operation_deadline()
    }

    fn clock_skew(&self) -> Duration {
        self.inner.clock_skew()
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let metadata = self.at_provider(request.metadata);
        let sent = ProvisionRequest {
            metadata: &metadata,
            ..*request
        };
        Self::as_registered(request, self.inner.create(&sent).await)
    }

    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let metadata = self.at_provider(request.metadata);
        let sent = ProvisionRequest {
            metadata: &metadata,
            ..*request
        };
        Self::as_registered(request, self.inner.replace(&sent).await)
    }

    async fn delete(
        &self,
        client_id: &ClientId,
        state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        self.inner.delete(client_id, state).await
    }

    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        let metadata = self.at_provider(client.metadata);
        let sent = ProvisionRequest {
            metadata: &metadata,
            ..*client
        };
        self.inner.discard_unconfirmed(&sent).await
    }

    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        self.inner.list_clients().await
    }

    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        self.inner.discovery().await
    }
}
