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
use crate::provider::{Provider, ProviderError, ProvisionedClient};
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
    /// active after, so the answer is only sent once both hold the client.
    pub async fn register(
        &self,
        document: MetadataDocument,
    ) -> Result<ClientInformation, RegistrationError> {
        let metadata = self.validate(document).await?;
        let token = RegistrationAccessToken::generate();
        let secret = metadata.needs_client_secret().then(ClientSecret::generate);
        let client = RegisteredClient {
            client_id: ClientId::generate(),
            metadata,
            issued_at: self.clock.now_unix(),
            registration_token: token.hash(),
            client_secret: secret.as_ref().map(ClientSecret::hash),
            client_secret_expires_at: 0,
            state: ClientState::Pending,
        };
        self.store.insert(&client).await.map_err(internal)?;
        let provisioned = ProvisionedClient {
            client_id: &client.client_id,
            metadata: &client.metadata,
            client_secret: secret.as_ref(),
        };
        if let Err(error) = self.provider.create(&provisioned).await {
            self.store
                .remove(&client.client_id)
                .await
                .map_err(internal)?;
            return Err(self.provider_error(error));
        }
        self.store
            .set_state(&client.client_id, ClientState::Active)
            .await
            .map_err(internal)?;
        Ok(ClientInformation {
            client: RegisteredClient {
                state: ClientState::Active,
                ..client
            },
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
        let (client_secret, new_secret) =
            match (metadata.needs_client_secret(), &current.client_secret) {
                (true, Some(hash)) => (Some(hash.clone()), None),
                (true, None) => {
                    let secret = ClientSecret::generate();
                    (Some(secret.hash()), Some(secret))
                }
                (false, _) => (None, None),
            };
        let updated = RegisteredClient {
            client_secret_expires_at: if client_secret.is_some() {
                current.client_secret_expires_at
            } else {
                0
            },
            metadata,
            client_secret,
            ..current
        };
        let provisioned = ProvisionedClient {
            client_id: &updated.client_id,
            metadata: &updated.metadata,
            client_secret: new_secret.as_ref(),
        };
        self.provider
            .replace(&provisioned)
            .await
            .map_err(|e| self.provider_error(e))?;
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
        self.delete_client(&client.client_id).await
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
        self.delete_client(&client.client_id).await
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> Result<(), RegistrationError> {
        self.store.ping().await.map_err(internal)
    }

    /// Marks the client deleting, removes it at the provider, then drops the row.
    async fn delete_client(&self, client_id: &ClientId) -> Result<(), RegistrationError> {
        self.store
            .set_state(client_id, ClientState::Deleting)
            .await
            .map_err(internal)?;
        if let Err(error) = self.provider.delete(client_id).await {
            self.store
                .set_state(client_id, ClientState::Active)
                .await
                .map_err(internal)?;
            return Err(self.provider_error(error));
        }
        self.store.remove(client_id).await.map_err(internal)?;
        Ok(())
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
