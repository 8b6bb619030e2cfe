//! RFC 7591 registration: the pending row, the provider, the confirmed row,
//! and giving back what a registration that made nothing had spent.

use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::domain::policy::Policy;
use crate::domain::{
    ClientId, ClientSecret, ClientState, InitialAccessTokenRecord, MetadataDocument,
    RegisteredClient, RegistrationAccessToken, RegistrationError,
};
use crate::provider::registry::Registry;
use crate::provider::{ProviderError, ProvisionRequest};
use crate::store::StoreError;

use super::core::internal;
use super::core::provider_calls::{RowClaims, as_held};
use super::{Admission, ClientInformation, RegistrationService, RequestContext, seconds};

impl RegistrationService {
    /// RFC 7591 §3: lets a registration in, or refuses it, on what it
    /// brings besides its body (the initial access token the mode
    /// requires), so that the HTTP route can refuse before reading the body.
    /// A refusal is audited like any failed registration.
    pub async fn admit_registration(
        &self,
        context: &RequestContext,
    ) -> Result<Admission, RegistrationError> {
        let admitted = self.admit(context).await;
        if let Err(error) = &admitted {
            self.audit_registration(error.code(), None, context, None);
        }
        admitted.map(Admission)
    }

    /// RFC 7591 §3.1: registers a new client that
    /// [`RegistrationService::admit_registration`] let in.
    ///
    /// The row is written as pending before the provider is called and made
    /// active after, so the answer is only sent once both hold the client. A
    /// definite provider failure removes the row; an unknown outcome leaves it
    /// pending for [`crate::reconcile::Reconciler::reconcile`].
    pub async fn register(
        &self,
        Admission(grant): Admission,
        document: MetadataDocument,
        context: &RequestContext,
    ) -> Result<ClientInformation, RegistrationError> {
        let grant_id = grant.as_ref().map(|grant| grant.id.clone());
        let result = self.register_admitted(document, grant, None).await;
        let (outcome, client) = match &result {
            Ok(info) => ("success", Some(&info.client)),
            Err(error) => (error.code(), None),
        };
        self.audit_registration(outcome, client, context, grant_id.as_deref());
        result
    }

    /// The audit event of a registration's outcome.
    fn audit_registration(
        &self,
        outcome: &'static str,
        client: Option<&RegisteredClient>,
        context: &RequestContext,
        initial_access_token_id: Option<&str>,
    ) {
        self.core.journal().audit(&AuditEvent {
            action: "register",
            outcome,
            client_id: client.map(|client| client.client_id.as_str()),
            software_id: client.and_then(|client| client.metadata.software_id.as_deref()),
            ip: context.ip,
            initial_access_token_id,
            actor: None,
        });
    }

    /// Registers a client for a caller [`RegistrationService::admit`] let
    /// in, under the initial access token `grant` it presented, if any, and
    /// the policy `policy` names (else the grant's, else the default).
    pub(super) async fn register_admitted(
        &self,
        document: MetadataDocument,
        grant: Option<InitialAccessTokenRecord>,
        policy: Option<&str>,
    ) -> Result<ClientInformation, RegistrationError> {
        let policy = self.core.policy(
            policy
                .or_else(|| grant.as_ref().and_then(|g| g.policy.as_deref()))
                .unwrap_or(&self.rules.default_policy),
        )?;
        let (metadata, vouched) = self.validate(document, policy, None).await?;
        let now = self.core.now();
        if let Some(grant) = &grant {
            if !self
                .tokens
                .spend_initial_access_token(&grant.id, now)
                .await
                .map_err(internal)?
            {
                return Err(RegistrationError::InvalidInitialAccessToken(
                    "the initial access token is used up".into(),
                ));
            }
        }
        let token = RegistrationAccessToken::generate();
        let secret = metadata.needs_client_secret().then(ClientSecret::generate);
        let pending = RegisteredClient {
            client_id: ClientId::generate(),
            metadata: Arc::new(metadata),
            issued_at: now,
            registration_token: token.hash(),
            client_secret: secret.as_ref().map(ClientSecret::hash),
            client_secret_expires_at: 0,
            state: ClientState::Pending,
            provider_state: None,
            policy: policy.name.clone(),
            expires_at: policy
                .client_lifetime
                .map(|l| now.saturating_add(seconds(l))),
            initial_access_token_id: grant.map(|g| g.id),
            revision: 0,
            lease_until: None,
            vouched,
        };
        let (client, client_secret) = match self.core.registry() {
            // The store is the registry: one durable write, nothing to confirm.
            Registry::Gateway => {
                let client = RegisteredClient {
                    state: ClientState::Active,
                    client_secret_expires_at: self.core.secret_expiry(secret.as_ref(), policy, now),
                    ..pending
                };
                self.insert(&client, policy).await?;
                (client, secret)
            }
            Registry::External { .. } => self.provision(pending, secret, policy).await?,
        };
        Ok(ClientInformation {
            client,
            registration_access_token: token,
            client_secret,
        })
    }

    /// Writes `pending`, creates the client at the provider, and activates
    /// the row with the provider's answer (an id or secret the provider chose
    /// wins). A definite provider failure removes the row and gives back the
    /// initial access token's use; an unknown outcome leaves the row pending
    /// for [`RegistrationService::reconcile`].
    async fn provision(
        &self,
        pending: RegisteredClient,
        secret: Option<ClientSecret>,
        policy: &Policy,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), RegistrationError> {
        let now = pending.issued_at;
        self.insert(&pending, policy).await?;
        let claims = RowClaims::new(self.core.store(), &pending.client_id);
        let request = ProvisionRequest {
            client_id: &pending.client_id,
            metadata: &pending.metadata,
            client_secret: secret.as_ref(),
            state: None,
            issued_at: now,
            claims: &claims,
        };
        let provisioned = match self
            .core
            .bounded("create", self.core.registry().create(&request))
            .await
        {
            Ok(provisioned) => provisioned,
            Err(error) => {
                if !matches!(error, ProviderError::Indeterminate(_)) {
                    self.core
                        .store()
                        .remove(&claims.row())
                        .await
                        .map_err(internal)?;
                    self.refund(&pending).await?;
                }
                return Err(self.core.provider_error(error));
            }
        };
        // Only a secret the provider holds is handed out.
        let secret = provisioned.client_secret;
        let row = claims.row();
        let client = RegisteredClient {
            client_id: provisioned.client_id.unwrap_or_else(|| row.clone()),
            client_secret: secret.as_ref().map(ClientSecret::hash),
            client_secret_expires_at: provisioned
                .client_secret_expires_at
                .unwrap_or_else(|| self.core.secret_expiry(secret.as_ref(), policy, now)),
            metadata: Arc::new(as_held(
                Arc::unwrap_or_clone(pending.metadata),
                provisioned.held_metadata,
            )),
            provider_state: provisioned.state,
            state: ClientState::Active,
            ..pending
        };
        match self.core.store().activate(&row, &client).await {
            Ok(true) => Ok((client, secret)),
            // The provider's id is another row's: the client stays pending
            // for reconcile, which leaves that row's client alone.
            Err(StoreError::Duplicate(id)) => {
                Err(self
                    .core
                    .provider_error(ProviderError::Indeterminate(format!(
                        "the provider's id {id} is another client's"
                    ))))
            }
            Ok(false) => Err(RegistrationError::internal(format!(
                "pending client {row} vanished before activation"
            ))),
            Err(error) => Err(internal(error)),
        }
    }

    /// Writes a new row, within the policy's cap of clients per software
    /// (enforced by the store, exactly, however many registrations race).
    async fn insert(
        &self,
        client: &RegisteredClient,
        policy: &Policy,
    ) -> Result<(), RegistrationError> {
        match self
            .core
            .store()
            .insert(client, policy.max_clients_per_software_id)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::SoftwareFull(software_id)) => {
                self.refund(client).await?;
                Err(RegistrationError::InvalidClientMetadata(format!(
                    "software `{software_id}` already has as many clients as policy `{}` \
                     allows (rule `max_clients_per_software_id`)",
                    policy.name
                )))
            }
            Err(error) => Err(internal(error)),
        }
    }

    /// Gives back the initial access token use a registration that made
    /// nothing had spent.
    async fn refund(&self, client: &RegisteredClient) -> Result<(), RegistrationError> {
        if let Some(grant) = &client.initial_access_token_id {
            self.tokens
                .refund_initial_access_token(grant)
                .await
                .map_err(internal)?;
        }
        Ok(())
    }
}
