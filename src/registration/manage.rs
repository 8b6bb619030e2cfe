//! RFC 7592 management: the registration access token, read, replace under
//! the client's lease, delete.

use serde_json::Value;

use crate::audit::{self, AuditEvent};
use crate::domain::client::counted_software_id;
use crate::domain::policy::Policy;
use crate::domain::{
    ClientId, ClientSecret, MetadataDocument, RegisteredClient, RegistrationAccessToken,
    RegistrationError, SecretHash,
};

use super::core::internal;
use super::{
    Authenticated, ClientInformation, ManageAction, RegistrationService, RequestContext,
    TokenRotation, seconds,
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
        let policy = self.core.policy(&current.policy)?;
        let (metadata, vouched) = self
            .validate(document, policy, current.vouched.as_ref())
            .await?;
        let counted = counted_software_id(vouched.as_ref(), &metadata);
        if counted != current.counted_software_id() {
            self.check_software_limit(counted, policy).await?;
        }
        let current = RegisteredClient { vouched, ..current };
        let now = self.core.now();
        let renew = self.secret_needs_renewal(&current, policy, now);
        let generated = (metadata.needs_client_secret()
            && (current.client_secret.is_none() || renew))
            .then(ClientSecret::generate);
        let fresh_token = match self.rules.rotation {
            TokenRotation::OnUpdate => Some(RegistrationAccessToken::generate()),
            TokenRotation::Never => None,
        };
        let (client, client_secret) = self
            .core
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

    /// RFC 7592 §2.3: deletes a client; its token stops working.
    pub async fn delete(
        &self,
        client: Authenticated,
        context: &RequestContext,
    ) -> Result<(), RegistrationError> {
        let client = client.client;
        let result = self.core.delete_client(&client).await;
        self.audit_managed(
            ManageAction::Delete,
            &client.client_id,
            result.as_ref().map(|()| &client),
            context,
        );
        result
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
        self.core
            .journal()
            .audit(&managed_event(action, client_id, result, context));
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
            .core
            .store()
            .get(&ClientId::new(client_id))
            .await
            .map_err(internal)?;
        match client {
            Some(client) if client.answers_to(token) => Ok(client),
            Some(_) => {
                // Equal work: an unknown id costs a store read that finds
                // nothing, so a refused known client pays for one too, and
                // the answer's timing does not tell which clients exist.
                let _ = self.core.store().get(&ClientId::generate()).await;
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
        ..AuditEvent::default()
    }
}
