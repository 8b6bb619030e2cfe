//! The operator's commands: listing, showing, removing clients and
//! rotating their secrets, initial access tokens, and the expiry of clients
//! whose lifetime has ended.

use std::time::Duration;

use futures_util::StreamExt;

use crate::audit::{self, AuditEvent};
use crate::domain::{
    ClientId, ClientSecret, ClientState, InitialAccessToken, InitialAccessTokenRecord,
    RegisteredClient, RegistrationError,
};

/// Expired clients deleted at once by the janitor.
const EXPIRY_CONCURRENCY: usize = 8;

use super::{MAX_LIST_LIMIT, RECONCILE_BATCH, RegistrationService, internal, seconds};

impl RegistrationService {
    /// Operator listing: clients in id order after `after`, at most `limit`
    /// (capped at [`MAX_LIST_LIMIT`]).
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, RegistrationError> {
        let after = after.map(ClientId::new);
        self.queries
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
        self.delete_audited(&client, "operator_delete").await
    }

    /// Operator secret rotation, through the provider. Returns the new secret.
    pub async fn rotate_secret(&self, client_id: &str) -> Result<ClientSecret, RegistrationError> {
        let current = self.show(client_id).await?;
        if current.state != ClientState::Active || !current.metadata.needs_client_secret() {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "client `{client_id}` is not an active client with a secret"
            )));
        }
        let metadata = (*current.metadata).clone();
        let (client, secret) = self
            .replace(current, metadata, Some(ClientSecret::generate()), None)
            .await?;
        let secret = secret.ok_or_else(|| {
            RegistrationError::InvalidClientMetadata(format!(
                "the {} provider keeps its own client secrets and did not change this one",
                self.provider().name()
            ))
        })?;
        audit::record(&AuditEvent {
            action: "rotate_secret",
            outcome: "success",
            client_id: Some(client_id),
            software_id: client.metadata.software_id.as_deref(),
            ..AuditEvent::default()
        });
        Ok(secret)
    }

    /// Deletes every client whose lifetime has ended, at the provider and in
    /// the gateway. A client whose deletion fails is left for the next run
    /// and does not hold up the others. Returns the ids removed.
    pub async fn expire_clients(&self) -> Result<Vec<ClientId>, RegistrationError> {
        let now = self.clock.now_unix();
        let mut removed = Vec::new();
        let mut after: Option<(i64, ClientId)> = None;
        loop {
            let expired = self
                .queries
                .list_expired(
                    now,
                    after.as_ref().map(|(at, id)| (*at, id)),
                    RECONCILE_BATCH,
                )
                .await
                .map_err(internal)?;
            let batch = expired.len();
            after = expired
                .last()
                .map(|c| (c.expires_at.unwrap_or(now), c.client_id.clone()));
            // A few deletes at once, so that their store writes share
            // commits; few enough not to flood a provider.
            let mut deletes = futures_util::stream::iter(expired)
                .map(|client| async move {
                    let outcome = self.delete_audited(&client, "expire").await;
                    (client.client_id, outcome)
                })
                .buffer_unordered(EXPIRY_CONCURRENCY);
            while let Some((client_id, outcome)) = deletes.next().await {
                match outcome {
                    Ok(()) => removed.push(client_id),
                    Err(error) => {
                        tracing::warn!(%client_id, %error, "expiry failed; retried on the next run");
                    }
                }
            }
            if batch < RECONCILE_BATCH as usize {
                return Ok(removed);
            }
        }
    }

    /// Makes an initial access token; the token is in clear only in the answer.
    pub async fn create_initial_access_token(
        &self,
        max_uses: Option<u32>,
        expires_in: Option<Duration>,
        policy: Option<String>,
        note: Option<String>,
    ) -> Result<(InitialAccessToken, InitialAccessTokenRecord), RegistrationError> {
        if let Some(name) = &policy {
            self.policy(name)?;
        }
        let token = InitialAccessToken::generate();
        let now = self.clock.now_unix();
        let record = InitialAccessTokenRecord {
            id: InitialAccessTokenRecord::new_id(),
            hash: token.hash(),
            uses_left: max_uses.map(i64::from),
            expires_at: expires_in.map(|d| now.saturating_add(seconds(d))),
            policy,
            note,
            created_at: now,
            revoked: false,
        };
        self.tokens
            .insert_initial_access_token(&record)
            .await
            .map_err(internal)?;
        Ok((token, record))
    }

    /// Every initial access token (never the tokens themselves).
    pub async fn initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, RegistrationError> {
        self.tokens
            .list_initial_access_tokens()
            .await
            .map_err(internal)
    }

    /// Revokes an initial access token.
    pub async fn revoke_initial_access_token(&self, id: &str) -> Result<(), RegistrationError> {
        if self
            .tokens
            .revoke_initial_access_token(id)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(RegistrationError::UnknownClient(format!(
                "initial access token {id}"
            )))
        }
    }

    /// Deletes `client` at the provider and in the gateway, and audits the
    /// outcome under `action`.
    pub(super) async fn delete_audited(
        &self,
        client: &RegisteredClient,
        action: &str,
    ) -> Result<(), RegistrationError> {
        let result = self.delete_client(client).await;
        audit::record(&AuditEvent {
            action,
            outcome: result
                .as_ref()
                .map_or_else(RegistrationError::code, |()| "success"),
            client_id: Some(client.client_id.as_str()),
            software_id: client.metadata.software_id.as_deref(),
            ..AuditEvent::default()
        });
        result
    }
}
