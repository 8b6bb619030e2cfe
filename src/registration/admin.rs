//! The operator's commands: listing, showing, removing clients and
//! rotating their secrets, and initial access tokens.

use std::time::Duration;

use crate::audit::AuditEvent;
use crate::domain::{
    ClientSecret, ClientState, InitialAccessToken, InitialAccessTokenRecord, RegisteredClient,
    RegistrationError,
};

use super::core::internal;
use super::{RegistrationService, seconds};

impl RegistrationService {
    /// Operator listing: clients in id order after `after`, at most `limit`
    /// (capped at [`super::core::MAX_LIST_LIMIT`]).
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, RegistrationError> {
        self.core.list(after, limit).await
    }

    /// Operator view of one client, in any state.
    pub async fn show(&self, client_id: &str) -> Result<RegisteredClient, RegistrationError> {
        self.core.show(client_id).await
    }

    /// Operator deletion: the same path as RFC 7592 delete, without a
    /// token, audited as done by `actor` (`cli`, `operator:alice`).
    pub async fn remove(&self, client_id: &str, actor: &str) -> Result<(), RegistrationError> {
        let client = self.show(client_id).await?;
        self.core
            .delete_audited(&client, "operator_delete", Some(actor))
            .await
    }

    /// Operator secret rotation, through the provider, audited as done by
    /// `actor`. Returns the new secret.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        actor: &str,
    ) -> Result<ClientSecret, RegistrationError> {
        let current = self.show(client_id).await?;
        if current.state != ClientState::Active || !current.metadata.needs_client_secret() {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "client `{client_id}` is not an active client with a secret"
            )));
        }
        let metadata = (*current.metadata).clone();
        let (client, secret) = self
            .core
            .replace(current, metadata, Some(ClientSecret::generate()), None)
            .await?;
        let secret = secret.ok_or_else(|| {
            RegistrationError::InvalidClientMetadata(format!(
                "the {} provider keeps its own client secrets and did not change this one",
                self.core.provider().name()
            ))
        })?;
        self.core.journal().audit(&AuditEvent {
            action: "rotate_secret",
            outcome: "success",
            client_id: Some(client_id),
            software_id: client.metadata.software_id.as_deref(),
            actor: Some(actor),
            ..AuditEvent::default()
        });
        Ok(secret)
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
            self.core.policy(name)?;
        }
        let token = InitialAccessToken::generate();
        let now = self.core.now();
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
}
