//! The two changes both registration and reconcile make to an existing
//! client: a replace, under the client's lease while the provider works,
//! and a delete, marked first; each in the order that loses nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditEvent;
use crate::clock::seconds;
use crate::domain::policy::Policy;
use crate::domain::{
    ClientMetadata, ClientSecret, ClientState, RegisteredClient, RegistrationError, SecretHash,
};
use crate::provider::registry::Registry;
use crate::provider::{ProviderError, ProvisionRequest};

use super::provider_calls::{RowClaims, as_held};
use super::{Core, internal};

impl Core {
    /// Replaces a client at the provider and in the store, holding the
    /// client's lease meanwhile, so that two changes never race: one that
    /// comes second is refused with [`RegistrationError::Conflict`]. A
    /// definite provider failure leaves the client as it was; an unknown
    /// outcome leaves the lease, for reconcile to send the stored
    /// registration to the provider again once it lapses.
    /// `registration_token` replaces the token's hash, when it rotates.
    pub(crate) async fn replace(
        &self,
        current: RegisteredClient,
        metadata: ClientMetadata,
        generated: Option<ClientSecret>,
        registration_token: Option<SecretHash>,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), RegistrationError> {
        let now = self.clock.now_unix();
        let id = current.client_id.clone();
        if let Registry::Gateway = self.registry {
            return self
                .replace_in_registry(current, metadata, generated, registration_token, now)
                .await;
        }
        let revision = self
            .store
            .lease(
                &id,
                current.revision,
                now,
                now.saturating_add(self.lease_seconds()),
            )
            .await
            .map_err(internal)?
            .ok_or_else(changed_meanwhile)?;
        let policy = self.policy(&current.policy)?;
        let (mut client, secret) = match self
            .replace_at_provider(current, metadata, generated, policy, now)
            .await
        {
            Ok(replaced) => replaced,
            Err(error) => {
                if !matches!(error, ProviderError::Indeterminate(_)) {
                    self.store.release(&id, revision).await.map_err(internal)?;
                }
                return Err(self.provider_error(error));
            }
        };
        client.revision = revision;
        if let Some(hash) = registration_token {
            client.registration_token = hash;
        }
        if !self.store.update(&client).await.map_err(internal)? {
            return Err(RegistrationError::internal(format!(
                "client {id} changed while its lease was held"
            )));
        }
        Ok((client, secret))
    }

    /// [`Self::replace`] for the built-in registry: no provider to call, so
    /// no lease; one write, made only if the client is still at the
    /// revision read.
    async fn replace_in_registry(
        &self,
        current: RegisteredClient,
        metadata: ClientMetadata,
        generated: Option<ClientSecret>,
        registration_token: Option<SecretHash>,
        now: i64,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), RegistrationError> {
        let policy = self.policy(&current.policy)?;
        let (mut client, secret) = self
            .replace_at_provider(current, metadata, generated, policy, now)
            .await
            .map_err(|error| self.provider_error(error))?;
        if let Some(hash) = registration_token {
            client.registration_token = hash;
        }
        if !self.store.update(&client).await.map_err(internal)? {
            return Err(changed_meanwhile());
        }
        Ok((client, secret))
    }

    /// How long a replace holds its client: as long as reconcile waits, so
    /// that reconcile takes up a replace with an unknown outcome as soon as
    /// it may. The built-in registry has no wait, and its replaces end at
    /// once: half a minute covers one interrupted by a crash.
    fn lease_seconds(&self) -> i64 {
        let grace = self.reconcile_grace();
        seconds(if grace.is_zero() {
            Duration::from_secs(30)
        } else {
            grace
        })
    }

    /// Sends new metadata (and a secret the gateway generated, if any) to the
    /// provider and works out the client's secret from its answer: a secret
    /// the provider returns wins; it is new when it differs from the current.
    async fn replace_at_provider(
        &self,
        current: RegisteredClient,
        metadata: ClientMetadata,
        generated: Option<ClientSecret>,
        policy: &Policy,
        now: i64,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), ProviderError> {
        let claims = RowClaims::new(self.store.as_ref(), &current.client_id);
        let request = ProvisionRequest {
            client_id: &current.client_id,
            metadata: &metadata,
            client_secret: generated.as_ref(),
            state: current.provider_state.as_ref(),
            issued_at: current.issued_at,
            claims: &claims,
        };
        let provisioned = self
            .bounded("replace", self.registry.replace(&request))
            .await?;
        // Only a secret the provider holds is handed out, and only when new.
        let new_secret = provisioned
            .client_secret
            .filter(|s| metadata.needs_client_secret() && !is_current(&current, s));
        let (client_secret, expires_at) = match (&new_secret, metadata.needs_client_secret()) {
            (Some(secret), _) => (
                Some(secret.hash()),
                self.secret_expiry(Some(secret), policy, now),
            ),
            (None, true) => (
                current.client_secret.clone(),
                current.client_secret_expires_at,
            ),
            (None, false) => (None, 0),
        };
        let client = RegisteredClient {
            client_secret_expires_at: provisioned.client_secret_expires_at.unwrap_or(expires_at),
            metadata: Arc::new(as_held(metadata, provisioned.held_metadata)),
            client_secret,
            provider_state: provisioned.state.or(current.provider_state.clone()),
            ..current
        };
        Ok((client, new_secret))
    }

    /// Marks the client deleting, removes it at the provider, then drops the
    /// row. A client a replace holds is refused with
    /// [`RegistrationError::Conflict`]. A definite provider failure restores
    /// the client; an unknown outcome leaves it deleting for
    /// [`RegistrationService::reconcile`].
    pub(crate) async fn delete_client(
        &self,
        client: &RegisteredClient,
    ) -> Result<(), RegistrationError> {
        let id = &client.client_id;
        let now = self.clock.now_unix();
        if let Registry::Gateway = self.registry {
            // Nothing outside the store to tell: one write.
            return match self.store.delete_active(id, now).await.map_err(internal)? {
                true => Ok(()),
                false => Err(not_deletable()),
            };
        }
        if !self.store.begin_delete(id, now).await.map_err(internal)? {
            return Err(not_deletable());
        }
        let deleted = self
            .bounded(
                "delete",
                self.provider().delete(id, client.provider_state.as_ref()),
            )
            .await;
        if let Err(error) = deleted {
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

    /// Deletes `client` at the provider and in the gateway, and audits the
    /// outcome under `action`, done by `actor` when an operator did it.
    pub(crate) async fn delete_audited(
        &self,
        client: &RegisteredClient,
        action: &str,
        actor: Option<&str>,
    ) -> Result<(), RegistrationError> {
        let result = self.delete_client(client).await;
        self.journal.audit(&AuditEvent {
            action,
            outcome: result
                .as_ref()
                .map_or_else(RegistrationError::code, |()| "success"),
            client_id: Some(client.client_id.as_str()),
            software_id: client.metadata.software_id.as_deref(),
            actor,
            ..AuditEvent::default()
        });
        result
    }
}

/// Whether `secret` is the client's current secret.
fn is_current(client: &RegisteredClient, secret: &ClientSecret) -> bool {
    client
        .client_secret
        .as_ref()
        .is_some_and(|hash| hash.matches(secret.expose()))
}

/// A replace that lost the race for its client.
fn changed_meanwhile() -> RegistrationError {
    RegistrationError::Conflict(
        "another change of this client came first or is in progress; read the client again \
         and retry"
            .into(),
    )
}

/// A delete of a client that another change holds, or that is gone.
fn not_deletable() -> RegistrationError {
    RegistrationError::Conflict(
        "the client is being changed or is no longer active; read it again and retry".into(),
    )
}
