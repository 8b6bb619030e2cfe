//! RFC 7592 management: the registration access token, read, replace under
//! the client's lease, delete.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::audit::{self, AuditEvent};
use crate::domain::client::counted_software_id;
use crate::domain::policy::Policy;
use crate::domain::{
    ClientId, ClientMetadata, ClientSecret, ClientState, MetadataDocument, RegisteredClient,
    RegistrationAccessToken, RegistrationError, SecretHash,
};
use crate::provider::registry::Registry;
use crate::provider::{ProviderError, ProvisionRequest};

use super::provider_calls::{RowClaims, as_held};
use super::{
    Authenticated, ClientInformation, ManageAction, RegistrationService, RequestContext,
    TokenRotation, internal, seconds,
};

/// Members a client must not send in an update (RFC 7592 §2.2).
const SERVER_MANAGED_MEMBERS: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

impl RegistrationService {
    /// RFC 7592 §2.1: reads a client's current registration.
    pub fn read(&self, client: Authenticated, context: &RequestContext) -> ClientInformation {
        audit::record_routine(&managed_event(
            ManageAction::Read,
            &client.client.client_id,
            Ok(&client.client),
            context,
        ));
        ClientInformation {
            client: client.client,
            registration_access_token: client.token,
            client_secret: None,
        }
    }

    /// RFC 7592 §2: finds the client whose registration access token this
    /// request presents, for `action`. Unknown clients, clients in
    /// transition and wrong tokens all get the same `invalid_token`, which is
    /// audited.
    pub async fn authenticate(
        &self,
        action: ManageAction,
        client_id: &str,
        token: &RegistrationAccessToken,
        context: &RequestContext,
    ) -> Result<Authenticated, RegistrationError> {
        match self.verify_token(client_id, token).await {
            Ok(client) => Ok(Authenticated {
                client,
                token: token.clone(),
            }),
            Err(error) => {
                self.audit_managed(action, &ClientId::new(client_id), Err(&error), context);
                Err(error)
            }
        }
    }

    /// RFC 7592 §2.2: replaces a client's whole registration.
    ///
    /// Invalid new metadata leaves the old registration untouched. A client
    /// secret is issued when the new method needs one and the client had none,
    /// or when the current one has expired or is about to.
    pub async fn update(
        &self,
        client: Authenticated,
        document: MetadataDocument,
        context: &RequestContext,
    ) -> Result<ClientInformation, RegistrationError> {
        let id = client.client.client_id.clone();
        let result = self.update_authenticated(client, document).await;
        self.audit_managed(
            ManageAction::Replace,
            &id,
            result.as_ref().map(|i| &i.client),
            context,
        );
        result
    }

    async fn update_authenticated(
        &self,
        client: Authenticated,
        document: MetadataDocument,
    ) -> Result<ClientInformation, RegistrationError> {
        let Authenticated {
            client: current,
            token,
        } = client;
        check_update_members(&document, &current)?;
        let policy = self.policy(&current.policy)?;
        let (metadata, vouched) = self
            .validate(document, policy, current.vouched.as_ref())
            .await?;
        let counted = counted_software_id(vouched.as_ref(), &metadata);
        if counted != current.counted_software_id() {
            self.check_software_limit(counted, policy).await?;
        }
        let current = RegisteredClient { vouched, ..current };
        let now = self.clock.now_unix();
        let renew = self.secret_needs_renewal(&current, policy, now);
        let generated = (metadata.needs_client_secret()
            && (current.client_secret.is_none() || renew))
            .then(ClientSecret::generate);
        let fresh_token = match self.settings.rotation {
            TokenRotation::OnUpdate => Some(RegistrationAccessToken::generate()),
            TokenRotation::Never => None,
        };
        let (client, client_secret) = self
            .replace(
                current,
                metadata,
                generated,
                fresh_token.as_ref().map(RegistrationAccessToken::hash),
            )
            .await?;
        Ok(ClientInformation {
            client,
            registration_access_token: fresh_token.unwrap_or(token),
            client_secret,
        })
    }

    /// Replaces a client at the provider and in the store, holding the
    /// client's lease meanwhile, so that two changes never race: one that
    /// comes second is refused with [`RegistrationError::Conflict`]. A
    /// definite provider failure leaves the client as it was; an unknown
    /// outcome leaves the lease, for reconcile to send the stored
    /// registration to the provider again once it lapses.
    /// `registration_token` replaces the token's hash, when it rotates.
    pub(super) async fn replace(
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
            return Err(RegistrationError::Internal(format!(
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

    /// RFC 7592 §2.3: deletes a client; its token stops working.
    pub async fn delete(
        &self,
        client: Authenticated,
        context: &RequestContext,
    ) -> Result<(), RegistrationError> {
        let client = client.client;
        let result = self.delete_client(&client).await;
        self.audit_managed(
            ManageAction::Delete,
            &client.client_id,
            result.as_ref().map(|()| &client),
            context,
        );
        result
    }

    /// Marks the client deleting, removes it at the provider, then drops the
    /// row. A client a replace holds is refused with
    /// [`RegistrationError::Conflict`]. A definite provider failure restores
    /// the client; an unknown outcome leaves it deleting for
    /// [`RegistrationService::reconcile`].
    pub(super) async fn delete_client(
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

    /// A secret is renewed on update once it has expired or is within a tenth
    /// of its lifetime of expiring.
    fn secret_needs_renewal(&self, client: &RegisteredClient, policy: &Policy, now: i64) -> bool {
        if client.client_secret_expires_at == 0 {
            return false;
        }
        let window = policy.client_secret_lifetime.map_or(0, |l| seconds(l) / 10);
        now >= client.client_secret_expires_at.saturating_sub(window)
    }

    /// Audits an RFC 7592 action on `client_id`.
    fn audit_managed(
        &self,
        action: ManageAction,
        client_id: &ClientId,
        result: Result<&RegisteredClient, &RegistrationError>,
        context: &RequestContext,
    ) {
        audit::record(&managed_event(action, client_id, result, context));
    }

    /// Finds an active client whose token matches. Unknown clients, clients
    /// in transition and wrong tokens all get the same answer, after the same
    /// hashing work.
    async fn verify_token(
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
            Some(client) if client.answers_to(token) => Ok(client),
            Some(_) => {
                // Equal work: an unknown id costs a store read that finds
                // nothing, so a refused known client pays for one too, and
                // the answer's timing does not tell which clients exist.
                let _ = self.store.get(&ClientId::generate()).await;
                Err(RegistrationError::InvalidToken)
            }
            None => {
                let _ = SecretHash::of("").matches(token.expose());
                Err(RegistrationError::InvalidToken)
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

/// The audit event of an RFC 7592 request.
fn managed_event<'a>(
    action: ManageAction,
    client_id: &'a ClientId,
    result: Result<&'a RegisteredClient, &RegistrationError>,
    context: &RequestContext,
) -> AuditEvent<'a> {
    AuditEvent {
        action: action.as_str(),
        outcome: result.map_or_else(|e| e.code(), |_| "success"),
        client_id: Some(client_id.as_str()),
        software_id: result.ok().and_then(|c| c.metadata.software_id.as_deref()),
        ip: context.ip,
        initial_access_token_id: None,
    }
}
