//! Where the gateway's clients are held, decided once at startup: the
//! gateway's own store ([`Registry::Gateway`], `kind = "local"`) or a
//! provider outside it ([`Registry::External`]). The registration service
//! matches on it once per flow (register, replace, delete) to pick the
//! write order: one durable write, or the no-loss order around the
//! provider's calls.
//!
//! Nothing wraps a provider. What used to be two wrappers, each forwarding
//! every [`Provider`] method by hand, is now:
//! - the gateway's callback registered at the provider in place of the
//!   app's redirect URIs (when the front is on): data of the external
//!   registry, applied here around the calls that send metadata
//!   ([`Registry::supports`], [`Registry::create`], [`Registry::replace`],
//!   [`Registry::discard_unconfirmed`]);
//! - the `dcr_provider_*` metrics: recorded by
//!   [`super::instrumented::measured`] around a call's future, in the one
//!   place the service calls the provider, which also bounds the call.
//!
//! The calls that send no metadata go to [`Registry::provider`] as they
//! are.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use super::local::LocalRegistry;
use super::{Presence, Provider, ProviderError, ProvisionRequest, Provisioned};
use crate::domain::{ClientMetadata, RegisteredUri};

/// Where the gateway's clients are held.
pub enum Registry {
    /// The gateway's own store is the registry: a registration is one
    /// durable write, with nothing to confirm at a provider.
    Gateway,
    /// A provider holds the clients; the gateway's rows follow the no-loss
    /// order around its calls.
    External {
        /// The backend.
        provider: Arc<dyn Provider>,
        /// The gateway's `{public_url}/callback` when the front is on: then
        /// clients with redirect URIs are registered at the provider with
        /// it as their one redirect URI. The app is still told, and the
        /// gateway still checks, the app's own.
        callback: Option<RegisteredUri>,
    },
}

impl Registry {
    /// The provider, for the calls that send no metadata: the external
    /// one, or for the gateway's own registry [`LocalRegistry`], which
    /// holds nothing outside the store (no discovery, no listing, nothing
    /// to discard or delete).
    #[must_use]
    pub fn provider(&self) -> &dyn Provider {
        match self {
            Self::Gateway => &LocalRegistry,
            Self::External { provider, .. } => provider.as_ref(),
        }
    }

    /// [`Provider::supports`], judging the metadata the provider is to hold.
    pub fn supports(&self, metadata: &ClientMetadata) -> Result<(), String> {
        self.provider().supports(&self.at_provider(metadata))
    }

    /// [`Provider::create`], sending the metadata the provider is to hold.
    pub async fn create(
        &self,
        request: &ProvisionRequest<'_>,
    ) -> Result<Provisioned, ProviderError> {
        self.provisioning(request, async |sent| self.provider().create(sent).await)
            .await
    }

    /// [`Provider::replace`], sending the metadata the provider is to hold.
    pub async fn replace(
        &self,
        request: &ProvisionRequest<'_>,
    ) -> Result<Provisioned, ProviderError> {
        self.provisioning(request, async |sent| self.provider().replace(sent).await)
            .await
    }

    /// [`Provider::discard_unconfirmed`], looking for the client with the
    /// metadata it was created with.
    pub async fn discard_unconfirmed(
        &self,
        request: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        self.sending(request, async |sent| {
            self.provider().discard_unconfirmed(sent).await
        })
        .await
    }

    /// Runs `call` with `request` as the provider is to get it.
    async fn sending<T>(
        &self,
        request: &ProvisionRequest<'_>,
        call: impl AsyncFnOnce(&ProvisionRequest<'_>) -> T,
    ) -> T {
        let metadata = self.at_provider(request.metadata);
        call(&ProvisionRequest {
            metadata: &metadata,
            ..*request
        })
        .await
    }

    /// [`Self::sending`] for a create or replace: what the provider says
    /// it holds, with the app's redirect URIs in place of the callback.
    async fn provisioning(
        &self,
        request: &ProvisionRequest<'_>,
        call: impl AsyncFnOnce(&ProvisionRequest<'_>) -> Result<Provisioned, ProviderError>,
    ) -> Result<Provisioned, ProviderError> {
        let mut provisioned = self.sending(request, call).await?;
        if self.callback().is_some()
            && let Some(held) = provisioned.held_metadata.as_mut()
            && held.contains_key("redirect_uris")
        {
            let own = request.metadata.redirect_uris.iter();
            held.insert(
                "redirect_uris".into(),
                own.map(|uri| Value::from(uri.as_str())).collect(),
            );
        }
        Ok(provisioned)
    }

    /// The callback registered at the provider, if any.
    fn callback(&self) -> Option<&RegisteredUri> {
        match self {
            Self::External {
                callback: Some(callback),
                ..
            } => Some(callback),
            _ => None,
        }
    }

    /// `metadata` as the provider is to hold it.
    fn at_provider<'m>(&self, metadata: &'m ClientMetadata) -> Cow<'m, ClientMetadata> {
        match self.callback() {
            Some(callback) if !metadata.redirect_uris.is_empty() => {
                let mut sent = metadata.clone();
                sent.redirect_uris = vec![callback.clone()];
                Cow::Owned(sent)
            }
            _ => Cow::Borrowed(metadata),
        }
    }
}
