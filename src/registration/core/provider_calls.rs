//! Calling the provider: within its deadline, measured (the
//! `dcr_provider_*` metrics), with [`RowClaims`] for the ids it picks, and
//! its failures told to apps in the gateway's own words.

use std::future::Future;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::domain::{ClientId, ClientMetadata, MetadataDocument, ProviderState, RegistrationError};
use crate::provider::{IdClaims, Provider, ProviderError, instrumented};
use crate::store::{ClientStore, StoreError};

use super::Core;

/// Seconds to suggest retrying after when the provider gives no hint.
const RETRY_AFTER_SECS: u64 = 5;

impl Core {
    /// The provider: the registry's backend, or the built-in registry's,
    /// which holds nothing.
    pub(crate) fn provider(&self) -> &dyn Provider {
        self.registry.provider()
    }

    /// Runs the provider operation `name`, measured.
    pub(crate) async fn measured<T>(
        &self,
        name: &'static str,
        operation: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        instrumented::measured(self.provider().name(), name, operation).await
    }

    /// Runs the provider operation `name`, measured, within its deadline;
    /// past it, the outcome is unknown.
    pub(crate) async fn bounded<T>(
        &self,
        name: &'static str,
        operation: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let operation = self.measured(name, operation);
        match self.provider().operation_deadline() {
            Some(deadline) => tokio::time::timeout(deadline, operation)
                .await
                .unwrap_or_else(|_| {
                    Err(ProviderError::Indeterminate(format!(
                        "the provider operation ran past its deadline of {}s",
                        deadline.as_secs()
                    )))
                }),
            None => operation.await,
        }
    }

    /// A provider failure as the app is told it: in the gateway's own
    /// words. What the provider said goes to the log.
    pub(crate) fn provider_error(&self, error: ProviderError) -> RegistrationError {
        let provider = self.provider().name();
        match error {
            ProviderError::Rejected(reason) => RegistrationError::InvalidClientMetadata(format!(
                "the {provider} provider cannot hold this client: {reason}"
            )),
            ProviderError::Refused { status, detail } => {
                tracing::warn!(provider, status, %detail, "the provider refused a client");
                RegistrationError::InvalidClientMetadata(format!(
                    "the {provider} provider refused this client (HTTP {status}); the gateway's \
                     log holds its reason under this request's x-request-id"
                ))
            }
            ProviderError::Unavailable {
                reason,
                retry_after_secs,
            } => {
                tracing::warn!(provider, %reason, "the provider is unavailable");
                RegistrationError::TemporarilyUnavailable {
                    reason: format!(
                        "the {provider} provider is unavailable; retry in {retry_after_secs} s"
                    ),
                    retry_after_secs,
                }
            }
            ProviderError::NotFound(reason) => {
                // RFC 7592 §2: a client that does not exist is answered 401. The
                // row stays for the operator; reconcile reports it as missing.
                tracing::warn!(provider, %reason, "client missing at the provider");
                RegistrationError::InvalidToken
            }
            ProviderError::Indeterminate(reason) => {
                tracing::warn!(provider, %reason, "provider outcome unknown");
                RegistrationError::TemporarilyUnavailable {
                    reason: format!("the {provider} provider did not answer in time; retry later"),
                    retry_after_secs: RETRY_AFTER_SECS,
                }
            }
        }
    }
}

/// `metadata` as the provider holds it: the members it answered with
/// replace what was sent (the rest is the gateway's to keep). The result is
/// read as stored metadata is, without the registration rules: those were
/// applied to what the app sent, with the policy and compatibility rules of
/// that request, which a second check here would not know. Should the
/// provider's values not make metadata at all, what was registered stays,
/// and the log says so.
pub(crate) fn as_held(
    metadata: ClientMetadata,
    held: Option<Map<String, Value>>,
) -> ClientMetadata {
    let Some(held) = held else {
        return metadata;
    };
    // Extension members are the operator's: kept as registered.
    let extra_metadata = metadata.extra_metadata.clone();
    let Ok(Value::Object(mut document)) = serde_json::to_value(metadata.to_document()) else {
        return metadata;
    };
    document.extend(held);
    let read = serde_json::from_value::<MetadataDocument>(Value::Object(document))
        .map_err(|e| e.to_string())
        .and_then(|document| ClientMetadata::from_stored(document).map_err(|e| e.to_string()));
    match read {
        Ok(held) => ClientMetadata {
            extra_metadata,
            ..held
        },
        Err(error) => {
            tracing::warn!(%error, "the provider's metadata is not valid; the registered metadata is kept");
            metadata
        }
    }
}

/// A store failure in the middle of a provider operation: whether the
/// gateway's side was written is unknown, so the operation's is too.
pub(crate) fn store_trouble(error: StoreError) -> ProviderError {
    ProviderError::Indeterminate(format!("the gateway's store: {error}"))
}

/// [`IdClaims`] for one row: ids are looked up in the store, and a claim
/// gives the pending row the provider's id (atomically, so that no two rows
/// ever hold it).
pub(crate) struct RowClaims<'s> {
    store: &'s dyn ClientStore,
    row: Mutex<ClientId>,
}

impl<'s> RowClaims<'s> {
    /// Claims for the row `row`.
    pub(crate) fn new(store: &'s dyn ClientStore, row: &ClientId) -> Self {
        Self {
            store,
            row: Mutex::new(row.clone()),
        }
    }

    /// The row's id now: the provider's, once one was claimed.
    pub(crate) fn row(&self) -> ClientId {
        self.row
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for RowClaims<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowClaims")
            .field("row", &self.row())
            .finish()
    }
}

#[async_trait]
impl IdClaims for RowClaims<'_> {
    async fn held(&self, id: &ClientId) -> Result<bool, ProviderError> {
        Ok(self.store.get(id).await.map_err(store_trouble)?.is_some())
    }

    async fn claim(&self, id: &ClientId, state: ProviderState) -> Result<bool, ProviderError> {
        let row = self.row();
        if &row == id {
            return Ok(true);
        }
        let claimed = self
            .store
            .claim_pending(&row, id, &state)
            .await
            .map_err(store_trouble)?;
        if claimed {
            *self
                .row
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = id.clone();
        }
        Ok(claimed)
    }
}
