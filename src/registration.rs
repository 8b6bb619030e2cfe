//! The registration service: everything RFC 7591 registration and RFC 7592
//! management do, in one place and in the order that loses nothing —
//! validate, write the gateway's row, call the provider, confirm the row.
//! The HTTP routes and the operator commands both go through it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

use crate::clock::Clock;
use crate::domain::{
    ClientId, ClientMetadata, ClientSecret, ClientState, MetadataDocument, RedirectRules,
    RegisteredClient, RegistrationAccessToken, RegistrationError, SecretHash,
};
use crate::provider::http_client::DEFAULT_RETRY_AFTER_SECS;
use crate::provider::{Presence, Provider, ProviderError, ProvisionRequest};
use crate::store::{ClientStore, StoreError};

/// Fetches JSON documents that apps point the gateway at (such as a
/// `sector_identifier_uri`), through a client that guards against SSRF.
#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// GETs `url` and parses the body as JSON.
    async fn fetch_json(&self, url: &Url) -> Result<Value, FetchError>;
}

/// Why a document could not be fetched, in words fit for the app.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// A client together with the credentials this one answer hands out in clear.
#[derive(Debug)]
pub struct ClientInformation {
    /// The client as registered.
    pub client: RegisteredClient,
    /// The registration access token: new on register, the presented one on read.
    pub registration_access_token: RegistrationAccessToken,
    /// The client secret, only when it was issued or changed by this request.
    pub client_secret: Option<ClientSecret>,
}

/// Members a client must not send in an update (RFC 7592 §2.2).
const SERVER_MANAGED_MEMBERS: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// The largest page the operator listing returns at once.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Rows reconcile handles per store query.
const RECONCILE_BATCH: u32 = 100;

/// What a reconcile pass did and found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Abandoned registrations removed (their app never got credentials);
    /// they had reached the provider and were deleted there too.
    pub abandoned_removed_at_provider: Vec<ClientId>,
    /// Abandoned registrations removed that had not reached the provider.
    pub abandoned_never_created: Vec<ClientId>,
    /// Abandoned registrations removed whose fate at the provider cannot be
    /// known (the provider offers no way to find them): possible orphans.
    pub abandoned_possible_orphans: Vec<ClientId>,
    /// Deletions finished at the provider and in the gateway.
    pub deletions_completed: Vec<ClientId>,
    /// Clients the provider holds that the gateway does not know.
    pub unknown_to_gateway: Vec<ClientId>,
    /// Active clients of the gateway the provider does not hold.
    pub missing_at_provider: Vec<ClientId>,
    /// Rows that could not be handled this time, with the reason.
    pub failed: Vec<String>,
}

impl ReconcileReport {
    fn record_pending(&mut self, id: &ClientId, presence: Presence) {
        let list = match presence {
            Presence::Present => &mut self.abandoned_removed_at_provider,
            Presence::Absent => &mut self.abandoned_never_created,
            Presence::Unknown => &mut self.abandoned_possible_orphans,
        };
        list.push(id.clone());
    }

    /// Whether gateway and provider disagree on anything.
    #[must_use]
    pub fn has_drift(&self) -> bool {
        !(self.unknown_to_gateway.is_empty()
            && self.missing_at_provider.is_empty()
            && self.abandoned_possible_orphans.is_empty()
            && self.failed.is_empty())
    }
}

/// Registers, reads, updates and deletes clients.
pub struct RegistrationService {
    store: Arc<dyn ClientStore>,
    provider: Arc<dyn Provider>,
    fetcher: Arc<dyn DocumentFetcher>,
    clock: Arc<dyn Clock>,
    rules: RedirectRules,
}

impl RegistrationService {
    /// Builds the service over its ports.
    pub fn new(
        store: Arc<dyn ClientStore>,
        provider: Arc<dyn Provider>,
        fetcher: Arc<dyn DocumentFetcher>,
        clock: Arc<dyn Clock>,
        rules: RedirectRules,
    ) -> Self {
        Self {
            store,
            provider,
            fetcher,
            clock,
            rules,
        }
    }

    /// RFC 7591 §3.1: registers a new client.
    ///
    /// The row is written as pending before the provider is called and made
    /// active after, so the answer is only sent once both hold the client. A
    /// definite provider failure removes the row; an unknown outcome leaves it
    /// pending for [`RegistrationService::reconcile`].
    pub async fn register(
        &self,
        document: MetadataDocument,
    ) -> Result<ClientInformation, RegistrationError> {
        let metadata = self.validate(document).await?;
        let token = RegistrationAccessToken::generate();
        let secret = metadata.needs_client_secret().then(ClientSecret::generate);
        let pending = RegisteredClient {
            client_id: ClientId::generate(),
            metadata,
            issued_at: self.clock.now_unix(),
            registration_token: token.hash(),
            client_secret: secret.as_ref().map(ClientSecret::hash),
            client_secret_expires_at: 0,
            state: ClientState::Pending,
            provider_state: None,
        };
        self.store.insert(&pending).await.map_err(internal)?;
        let request = ProvisionRequest {
            client_id: &pending.client_id,
            metadata: &pending.metadata,
            client_secret: secret.as_ref(),
            state: None,
        };
        let provisioned = match self.provider.create(&request).await {
            Ok(provisioned) => provisioned,
            Err(error) => {
                if !matches!(error, ProviderError::Indeterminate(_)) {
                    self.store
                        .remove(&pending.client_id)
                        .await
                        .map_err(internal)?;
                }
                return Err(self.provider_error(error));
            }
        };
        // A secret the provider generated is the one the app must use.
        let secret = provisioned.client_secret.or(secret);
        let client = RegisteredClient {
            client_id: provisioned
                .client_id
                .unwrap_or_else(|| pending.client_id.clone()),
            client_secret: secret.as_ref().map(ClientSecret::hash),
            provider_state: provisioned.state,
            state: ClientState::Active,
            ..pending.clone()
        };
        if !self
            .store
            .activate(&pending.client_id, &client)
            .await
            .map_err(internal)?
        {
            return Err(RegistrationError::Internal(format!(
                "pending client {} vanished before activation",
                pending.client_id
            )));
        }
        Ok(ClientInformation {
            client,
            registration_access_token: token,
            client_secret: secret,
        })
    }

    /// RFC 7592 §2.1: reads a client's current registration.
    pub async fn read(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
    ) -> Result<ClientInformation, RegistrationError> {
        let client = self.authenticate(client_id, token).await?;
        Ok(ClientInformation {
            client,
            registration_access_token: token.clone(),
            client_secret: None,
        })
    }

    /// RFC 7592 §2.2: replaces a client's whole registration.
    ///
    /// Invalid new metadata leaves the old registration untouched. A client
    /// secret is issued when the new method needs one and the client had none.
    pub async fn update(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
        document: MetadataDocument,
    ) -> Result<ClientInformation, RegistrationError> {
        let current = self.authenticate(client_id, token).await?;
        check_update_members(&document, &current)?;
        let metadata = self.validate(document).await?;
        let generated = (metadata.needs_client_secret() && current.client_secret.is_none())
            .then(ClientSecret::generate);
        let request = ProvisionRequest {
            client_id: &current.client_id,
            metadata: &metadata,
            client_secret: generated.as_ref(),
            state: current.provider_state.as_ref(),
        };
        let provisioned = self
            .provider
            .replace(&request)
            .await
            .map_err(|e| self.provider_error(e))?;
        // A secret the provider returns is new only if it differs from ours.
        let provider_secret = provisioned.client_secret.filter(|s| {
            !current
                .client_secret
                .as_ref()
                .is_some_and(|hash| hash.matches(s.expose()))
        });
        let new_secret = provider_secret
            .or(generated)
            .filter(|_| metadata.needs_client_secret());
        let client_secret = if metadata.needs_client_secret() {
            new_secret
                .as_ref()
                .map(ClientSecret::hash)
                .or_else(|| current.client_secret.clone())
        } else {
            None
        };
        let updated = RegisteredClient {
            client_secret_expires_at: if client_secret.is_some() {
                current.client_secret_expires_at
            } else {
                0
            },
            metadata,
            client_secret,
            provider_state: provisioned.state.or(current.provider_state.clone()),
            ..current
        };
        if !self.store.update(&updated).await.map_err(internal)? {
            return Err(RegistrationError::InvalidToken);
        }
        Ok(ClientInformation {
            client: updated,
            registration_access_token: token.clone(),
            client_secret: new_secret,
        })
    }

    /// RFC 7592 §2.3: deletes a client; its token stops working.
    pub async fn delete(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
    ) -> Result<(), RegistrationError> {
        let client = self.authenticate(client_id, token).await?;
        self.delete_client(&client).await
    }

    /// Operator listing: clients in id order after `after`, at most `limit`
    /// (capped at [`MAX_LIST_LIMIT`]).
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, RegistrationError> {
        let after = after.map(ClientId::new);
        self.store
            .list(after.as_ref(), limit.min(MAX_LIST_LIMIT))
            .await
            .map_err(internal)
    }

    /// Operator view of one client, in any state.
    pub async fn show(&self, client_id: &str) -> Result<RegisteredClient, RegistrationError> {
        self.store
            .get(&ClientId::new(client_id))
            .await
            .map_err(internal)?
            .ok_or_else(|| RegistrationError::UnknownClient(client_id.to_owned()))
    }

    /// Operator deletion: the same path as RFC 7592 delete, without a token.
    pub async fn remove(&self, client_id: &str) -> Result<(), RegistrationError> {
        let client = self.show(client_id).await?;
        self.delete_client(&client).await
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> Result<(), RegistrationError> {
        self.store.ping().await.map_err(internal)
    }

    /// Marks the client deleting, removes it at the provider, then drops the
    /// row. A definite provider failure restores the client; an unknown
    /// outcome leaves it deleting for [`RegistrationService::reconcile`].
    async fn delete_client(&self, client: &RegisteredClient) -> Result<(), RegistrationError> {
        let id = &client.client_id;
        self.store
            .set_state(id, ClientState::Deleting)
            .await
            .map_err(internal)?;
        if let Err(error) = self
            .provider
            .delete(id, client.provider_state.as_ref())
            .await
        {
            if !matches!(error, ProviderError::Indeterminate(_)) {
                self.store
                    .set_state(id, ClientState::Active)
                    .await
                    .map_err(internal)?;
            }
            return Err(self.provider_error(error));
        }
        self.store.remove(id).await.map_err(internal)?;
        Ok(())
    }

    /// Brings gateway and provider back in line, then reports drift.
    ///
    /// Pending rows older than `grace` belong to registrations whose app never
    /// received credentials: the client is deleted at the provider if it got
    /// there, and the row removed. Deleting rows older than `grace` are
    /// deleted at the provider and removed. Finally the provider's client ids
    /// (where it can list them) are compared with the gateway's.
    pub async fn reconcile(
        &self,
        grace: std::time::Duration,
    ) -> Result<ReconcileReport, RegistrationError> {
        let cutoff = self
            .clock
            .now_unix()
            .saturating_sub(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
        let mut report = ReconcileReport::default();
        loop {
            let stale = self
                .store
                .list_stale(ClientState::Pending, cutoff, RECONCILE_BATCH)
                .await
                .map_err(internal)?;
            let mut progressed = false;
            for client in &stale {
                match self.resolve_pending(client).await {
                    Ok(outcome) => {
                        progressed = true;
                        report.record_pending(&client.client_id, outcome);
                    }
                    Err(e) => report.failed.push(format!("{}: {e}", client.client_id)),
                }
            }
            if !progressed || stale.len() < RECONCILE_BATCH as usize {
                break;
            }
        }
        loop {
            let stale = self
                .store
                .list_stale(ClientState::Deleting, cutoff, RECONCILE_BATCH)
                .await
                .map_err(internal)?;
            let mut progressed = false;
            for client in &stale {
                match self
                    .provider
                    .delete(&client.client_id, client.provider_state.as_ref())
                    .await
                {
                    Ok(()) => {
                        self.store
                            .remove(&client.client_id)
                            .await
                            .map_err(internal)?;
                        progressed = true;
                        report.deletions_completed.push(client.client_id.clone());
                    }
                    Err(e) => report.failed.push(format!("{}: {e}", client.client_id)),
                }
            }
            if !progressed || stale.len() < RECONCILE_BATCH as usize {
                break;
            }
        }
        self.compare_with_provider(&mut report).await?;
        Ok(report)
    }

    async fn resolve_pending(&self, client: &RegisteredClient) -> Result<Presence, ProviderError> {
        let presence = self
            .provider
            .presence(&client.client_id, client.provider_state.as_ref())
            .await?;
        if presence == Presence::Present {
            self.provider
                .delete(&client.client_id, client.provider_state.as_ref())
                .await?;
        }
        self.store
            .remove(&client.client_id)
            .await
            .map_err(|e| ProviderError::Indeterminate(e.to_string()))?;
        Ok(presence)
    }

    async fn compare_with_provider(
        &self,
        report: &mut ReconcileReport,
    ) -> Result<(), RegistrationError> {
        let at_provider = match self.provider.client_ids().await {
            Ok(Some(ids)) => ids,
            Ok(None) => return Ok(()),
            Err(e) => {
                report
                    .failed
                    .push(format!("listing the provider's clients: {e}"));
                return Ok(());
            }
        };
        let mut in_gateway = std::collections::BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list(after.as_deref(), MAX_LIST_LIMIT).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.client_id.to_string());
            for client in page {
                in_gateway.insert(client.client_id.clone(), client.state);
            }
        }
        let at_provider: std::collections::BTreeSet<ClientId> = at_provider.into_iter().collect();
        report.unknown_to_gateway = at_provider
            .iter()
            .filter(|id| !in_gateway.contains_key(*id))
            .cloned()
            .collect();
        report.missing_at_provider = in_gateway
            .iter()
            .filter(|(id, state)| **state == ClientState::Active && !at_provider.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        Ok(())
    }

    /// The provider's discovery document, when it has one.
    pub async fn provider_discovery(&self) -> Result<Option<Value>, RegistrationError> {
        self.provider
            .discovery()
            .await
            .map_err(|e| self.provider_error(e))
    }

    /// Finds an active client whose token matches. Unknown clients, clients
    /// in transition and wrong tokens all get the same answer, after the same
    /// hashing work.
    async fn authenticate(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
    ) -> Result<RegisteredClient, RegistrationError> {
        let client = self
            .store
            .get(&ClientId::new(client_id))
            .await
            .map_err(internal)?;
        match client {
            Some(client)
                if client.registration_token.matches(token.expose())
                    && client.state == ClientState::Active =>
            {
                Ok(client)
            }
            Some(_) => Err(RegistrationError::InvalidToken),
            None => {
                let _ = SecretHash::of("").matches(token.expose());
                Err(RegistrationError::InvalidToken)
            }
        }
    }

    /// Applies the metadata rules, then checks what needs fetching.
    async fn validate(
        &self,
        document: MetadataDocument,
    ) -> Result<ClientMetadata, RegistrationError> {
        if document.software_statement.is_some() {
            return Err(RegistrationError::UnapprovedSoftwareStatement(
                "this gateway trusts no software statement issuers".into(),
            ));
        }
        let metadata = ClientMetadata::validate(document, self.rules)?;
        self.check_sector_identifier(&metadata).await?;
        Ok(metadata)
    }

    /// OpenID Connect Core §8.1: the sector document lists every redirect URI.
    async fn check_sector_identifier(
        &self,
        metadata: &ClientMetadata,
    ) -> Result<(), RegistrationError> {
        let Some(uri) = &metadata.sector_identifier_uri else {
            return Ok(());
        };
        let document = self.fetcher.fetch_json(uri.url()).await.map_err(|e| {
            RegistrationError::InvalidClientMetadata(format!(
                "sector_identifier_uri `{}` could not be fetched: {e}",
                uri.as_str()
            ))
        })?;
        let listed: Vec<&str> = document
            .as_array()
            .and_then(|items| items.iter().map(Value::as_str).collect())
            .ok_or_else(|| {
                RegistrationError::InvalidClientMetadata(
                    "sector_identifier_uri must return a JSON array of URI strings".into(),
                )
            })?;
        match metadata
            .redirect_uris
            .iter()
            .find(|redirect| !listed.contains(&redirect.as_str()))
        {
            Some(missing) => Err(RegistrationError::InvalidClientMetadata(format!(
                "redirect URI `{}` is not listed in the sector_identifier_uri document",
                missing.as_str()
            ))),
            None => Ok(()),
        }
    }

    fn provider_error(&self, error: ProviderError) -> RegistrationError {
        match error {
            ProviderError::Rejected(reason) => RegistrationError::InvalidClientMetadata(format!(
                "the {} provider refused the client: {reason}",
                self.provider.name()
            )),
            ProviderError::Unavailable {
                reason,
                retry_after_secs,
            } => RegistrationError::TemporarilyUnavailable {
                reason: format!(
                    "the {} provider is unavailable: {reason}",
                    self.provider.name()
                ),
                retry_after_secs,
            },
            ProviderError::Indeterminate(reason) => {
                tracing::warn!(provider = self.provider.name(), %reason, "provider outcome unknown");
                RegistrationError::TemporarilyUnavailable {
                    reason: format!(
                        "the {} provider did not answer in time; retry later",
                        self.provider.name()
                    ),
                    retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
                }
            }
        }
    }
}

/// RFC 7592 §2.2: the body names this client, proves any secret it carries,
/// and leaves server-managed members out.
fn check_update_members(
    document: &MetadataDocument,
    current: &RegisteredClient,
) -> Result<(), RegistrationError> {
    let invalid = |m: String| Err(RegistrationError::InvalidClientMetadata(m));
    match document.other.get("client_id") {
        Some(Value::String(id)) if id == current.client_id.as_str() => {}
        Some(_) => return invalid("client_id in the body must equal the client's id".into()),
        None => return invalid("an update must carry the client_id".into()),
    }
    if let Some(member) = SERVER_MANAGED_MEMBERS
        .iter()
        .find(|m| document.other.contains_key(**m))
    {
        return invalid(format!("{member} must not be sent in an update"));
    }
    if let Some(sent) = document.other.get("client_secret") {
        let matches = match (sent.as_str(), &current.client_secret) {
            (Some(secret), Some(hash)) => hash.matches(secret),
            _ => false,
        };
        if !matches {
            return invalid("client_secret does not match the client's current secret".into());
        }
    }
    Ok(())
}

fn internal(error: StoreError) -> RegistrationError {
    RegistrationError::Internal(error.to_string())
}
