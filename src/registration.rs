//! The registration service: everything RFC 7591 registration and RFC 7592
//! management do, in one place and in the order that loses nothing —
//! admit (initial access token), apply the software statement, validate and
//! apply the policy, write the gateway's row, call the provider, confirm the
//! row. The HTTP routes and the operator commands both go through it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use crate::audit::{self, AuditEvent};
use crate::clock::Clock;
use crate::domain::policy::Policy;
use crate::domain::{
    ClientId, ClientMetadata, ClientSecret, ClientState, InitialAccessToken,
    InitialAccessTokenRecord, MetadataDocument, RegisteredClient, RegistrationAccessToken,
    RegistrationError, SecretHash,
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

/// Verifies software statements (RFC 7591 §2.3) against trusted issuers.
#[async_trait]
pub trait StatementVerifier: Send + Sync {
    /// The verified claims, or `invalid_software_statement` (malformed, bad
    /// signature, expired) / `unapproved_software_statement` (untrusted
    /// issuer, refused software).
    async fn verify(&self, statement: &str) -> Result<Map<String, Value>, RegistrationError>;
}

/// How registration is opened (RFC 7591 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    /// Anyone may register.
    Open,
    /// A valid initial access token is required.
    InitialAccessToken,
}

/// When the registration access token is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRotation {
    /// Never.
    Never,
    /// On every successful update (RFC 7592 §2.2); the old one dies.
    OnUpdate,
}

/// The operator's rules for registration.
#[derive(Clone)]
pub struct RegistrationSettings {
    /// Open, or protected by initial access tokens.
    pub mode: RegistrationMode,
    /// Registration access token rotation.
    pub rotation: TokenRotation,
    /// Policies by name.
    pub policies: BTreeMap<String, Policy>,
    /// The policy of registrations without a token that names one.
    pub default_policy: String,
    /// Software statement verification; `None` trusts no issuer.
    pub statements: Option<Arc<dyn StatementVerifier>>,
    /// Whether every registration must carry a software statement.
    pub statement_required: bool,
    /// Whether reconcile reports clients at the provider the gateway did
    /// not make (noise where the provider also holds other tools' clients).
    pub report_unknown_clients: bool,
}

impl RegistrationSettings {
    /// Open registration under a permissive `default` policy.
    #[must_use]
    pub fn open() -> Self {
        let default = Policy::permissive("default");
        Self {
            mode: RegistrationMode::Open,
            rotation: TokenRotation::Never,
            policies: BTreeMap::from([("default".to_owned(), default)]),
            default_policy: "default".to_owned(),
            statements: None,
            statement_required: false,
            report_unknown_clients: true,
        }
    }
}

/// What the caller brought besides the body.
#[derive(Debug, Default, Clone)]
pub struct RequestContext {
    /// The caller's address.
    pub ip: Option<IpAddr>,
    /// The initial access token presented at the registration endpoint.
    pub initial_access_token: Option<InitialAccessToken>,
}

/// A client together with the credentials this one answer hands out in clear.
#[derive(Debug)]
pub struct ClientInformation {
    /// The client as registered.
    pub client: RegisteredClient,
    /// The registration access token: new on register (and on a rotating
    /// update), the presented one on read.
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

/// JWT claims of a software statement that are not client metadata.
const JWT_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

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
    settings: RegistrationSettings,
}

impl RegistrationService {
    /// Builds the service over its ports.
    pub fn new(
        store: Arc<dyn ClientStore>,
        provider: Arc<dyn Provider>,
        fetcher: Arc<dyn DocumentFetcher>,
        clock: Arc<dyn Clock>,
        settings: RegistrationSettings,
    ) -> Self {
        Self {
            store,
            provider,
            fetcher,
            clock,
            settings,
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
        context: &RequestContext,
    ) -> Result<ClientInformation, RegistrationError> {
        let mut grant_id = None;
        let result = self
            .register_admitted(document, context, &mut grant_id)
            .await;
        let (client_id, software_id) = match &result {
            Ok(info) => (
                Some(info.client.client_id.as_str()),
                info.client.metadata.software_id.as_deref(),
            ),
            Err(_) => (None, None),
        };
        audit::record(&AuditEvent {
            action: "register",
            outcome: result
                .as_ref()
                .map_or_else(RegistrationError::code, |_| "success"),
            client_id,
            software_id,
            ip: context.ip,
            initial_access_token_id: grant_id.as_deref(),
        });
        result
    }

    async fn register_admitted(
        &self,
        document: MetadataDocument,
        context: &RequestContext,
        grant_id: &mut Option<String>,
    ) -> Result<ClientInformation, RegistrationError> {
        let grant = self.admit(context).await?;
        *grant_id = grant.as_ref().map(|g| g.id.clone());
        let policy = self.policy(
            grant
                .as_ref()
                .and_then(|g| g.policy.as_deref())
                .unwrap_or(&self.settings.default_policy),
        )?;
        let metadata = self.validate(document, policy).await?;
        self.check_software_limit(&metadata, policy, None).await?;
        let now = self.clock.now_unix();
        if let Some(grant) = &grant {
            if !self
                .store
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
            metadata,
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
        };
        if self.provider.is_gateway_registry() {
            // The store is the registry: one durable write, nothing to confirm.
            let client = RegisteredClient {
                state: ClientState::Active,
                client_secret_expires_at: self.secret_expiry(secret.as_ref(), policy, now),
                ..pending
            };
            self.store.insert(&client).await.map_err(internal)?;
            return Ok(ClientInformation {
                client,
                registration_access_token: token,
                client_secret: secret,
            });
        }
        let (client, client_secret) = self.provision(pending, secret, policy).await?;
        Ok(ClientInformation {
            client,
            registration_access_token: token,
            client_secret,
        })
    }

    /// Writes `pending`, creates the client at the provider, and activates
    /// the row with the provider's answer (an id or secret the provider chose
    /// wins). A definite provider failure removes the row; an unknown outcome
    /// leaves it pending for [`RegistrationService::reconcile`].
    async fn provision(
        &self,
        pending: RegisteredClient,
        secret: Option<ClientSecret>,
        policy: &Policy,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), RegistrationError> {
        let now = pending.issued_at;
        self.store.insert(&pending).await.map_err(internal)?;
        let request = ProvisionRequest {
            client_id: &pending.client_id,
            metadata: &pending.metadata,
            client_secret: secret.as_ref(),
            state: None,
            issued_at: now,
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
        let secret = provisioned.client_secret.or(secret);
        let pending_id = pending.client_id.clone();
        let client = RegisteredClient {
            client_id: provisioned.client_id.unwrap_or_else(|| pending_id.clone()),
            client_secret: secret.as_ref().map(ClientSecret::hash),
            client_secret_expires_at: self.secret_expiry(secret.as_ref(), policy, now),
            provider_state: provisioned.state,
            state: ClientState::Active,
            ..pending
        };
        if !self
            .store
            .activate(&pending_id, &client)
            .await
            .map_err(internal)?
        {
            return Err(RegistrationError::Internal(format!(
                "pending client {pending_id} vanished before activation"
            )));
        }
        Ok((client, secret))
    }

    /// RFC 7592 §2.1: reads a client's current registration.
    pub async fn read(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
        context: &RequestContext,
    ) -> Result<ClientInformation, RegistrationError> {
        let result = self.authenticate(client_id, token).await;
        self.audit_managed("read", client_id, result.as_ref(), context);
        Ok(ClientInformation {
            client: result?,
            registration_access_token: token.clone(),
            client_secret: None,
        })
    }

    /// RFC 7592 §2.2: replaces a client's whole registration.
    ///
    /// Invalid new metadata leaves the old registration untouched. A client
    /// secret is issued when the new method needs one and the client had none,
    /// or when the current one has expired or is about to.
    pub async fn update(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
        document: MetadataDocument,
        context: &RequestContext,
    ) -> Result<ClientInformation, RegistrationError> {
        let result = self.update_authenticated(client_id, token, document).await;
        self.audit_managed(
            "replace",
            client_id,
            result.as_ref().map(|i| &i.client),
            context,
        );
        result
    }

    async fn update_authenticated(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
        document: MetadataDocument,
    ) -> Result<ClientInformation, RegistrationError> {
        let current = self.authenticate(client_id, token).await?;
        check_update_members(&document, &current)?;
        let policy = self.policy(&current.policy)?;
        let metadata = self.validate(document, policy).await?;
        self.check_software_limit(&metadata, policy, Some(&current))
            .await?;
        let now = self.clock.now_unix();
        let renew = self.secret_needs_renewal(&current, policy, now);
        let generated = (metadata.needs_client_secret()
            && (current.client_secret.is_none() || renew))
            .then(ClientSecret::generate);
        let (client, client_secret) = self
            .replace_at_provider(current, metadata, generated, now)
            .await?;
        let (client, token) = match self.settings.rotation {
            TokenRotation::OnUpdate => {
                let fresh = RegistrationAccessToken::generate();
                let client = RegisteredClient {
                    registration_token: fresh.hash(),
                    ..client
                };
                (client, fresh)
            }
            TokenRotation::Never => (client, token.clone()),
        };
        if !self.store.update(&client).await.map_err(internal)? {
            return Err(RegistrationError::InvalidToken);
        }
        Ok(ClientInformation {
            client,
            registration_access_token: token,
            client_secret,
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
        now: i64,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), RegistrationError> {
        let request = ProvisionRequest {
            client_id: &current.client_id,
            metadata: &metadata,
            client_secret: generated.as_ref(),
            state: current.provider_state.as_ref(),
            issued_at: current.issued_at,
        };
        let provisioned = self
            .provider
            .replace(&request)
            .await
            .map_err(|e| self.provider_error(e))?;
        let policy = self.policy(&current.policy)?;
        let new_secret = provisioned
            .client_secret
            .or(generated)
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
            metadata,
            client_secret,
            client_secret_expires_at: expires_at,
            provider_state: provisioned.state.or(current.provider_state.clone()),
            ..current
        };
        Ok((client, new_secret))
    }

    /// RFC 7592 §2.3: deletes a client; its token stops working.
    pub async fn delete(
        &self,
        client_id: &str,
        token: &RegistrationAccessToken,
        context: &RequestContext,
    ) -> Result<(), RegistrationError> {
        let result = match self.authenticate(client_id, token).await {
            Ok(client) => self.delete_client(&client).await.map(|()| client),
            Err(error) => Err(error),
        };
        self.audit_managed("delete", client_id, result.as_ref(), context);
        result.map(|_| ())
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

    /// Operator secret rotation, through the provider. Returns the new secret.
    pub async fn rotate_secret(&self, client_id: &str) -> Result<ClientSecret, RegistrationError> {
        let current = self.show(client_id).await?;
        if current.state != ClientState::Active || !current.metadata.needs_client_secret() {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "client `{client_id}` is not an active client with a secret"
            )));
        }
        let metadata = current.metadata.clone();
        let now = self.clock.now_unix();
        let (client, secret) = self
            .replace_at_provider(current, metadata, Some(ClientSecret::generate()), now)
            .await?;
        let secret = secret.ok_or_else(|| {
            RegistrationError::InvalidClientMetadata(format!(
                "the {} provider keeps its own client secrets and did not change this one",
                self.provider.name()
            ))
        })?;
        if !self.store.update(&client).await.map_err(internal)? {
            return Err(RegistrationError::UnknownClient(client_id.to_owned()));
        }
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
    /// the gateway. Returns the ids removed.
    pub async fn expire_clients(&self) -> Result<Vec<ClientId>, RegistrationError> {
        let now = self.clock.now_unix();
        let mut removed = Vec::new();
        loop {
            let expired = self
                .store
                .list_expired(now, RECONCILE_BATCH)
                .await
                .map_err(internal)?;
            let batch = expired.len();
            for client in expired {
                let result = self.delete_client(&client).await;
                audit::record(&AuditEvent {
                    action: "expire",
                    outcome: result
                        .as_ref()
                        .map_or_else(RegistrationError::code, |()| "success"),
                    client_id: Some(client.client_id.as_str()),
                    software_id: client.metadata.software_id.as_deref(),
                    ..AuditEvent::default()
                });
                match result {
                    Ok(()) => removed.push(client.client_id),
                    Err(error) => {
                        tracing::warn!(client_id = %client.client_id, %error, "expiry failed");
                        return Ok(removed);
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
        self.store
            .insert_initial_access_token(&record)
            .await
            .map_err(internal)?;
        Ok((token, record))
    }

    /// Every initial access token (never the tokens themselves).
    pub async fn initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, RegistrationError> {
        self.store
            .list_initial_access_tokens()
            .await
            .map_err(internal)
    }

    /// Revokes an initial access token.
    pub async fn revoke_initial_access_token(&self, id: &str) -> Result<(), RegistrationError> {
        if self
            .store
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
        for (kind, count) in [
            ("unknown_to_gateway", report.unknown_to_gateway.len()),
            ("missing_at_provider", report.missing_at_provider.len()),
            ("possible_orphans", report.abandoned_possible_orphans.len()),
        ] {
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            metrics::gauge!("dcr_reconcile_drift", "kind" => kind).set(count as f64);
        }
        Ok(report)
    }

    async fn resolve_pending(&self, client: &RegisteredClient) -> Result<Presence, ProviderError> {
        let presence = self
            .provider
            .discard_unconfirmed(&ProvisionRequest {
                client_id: &client.client_id,
                metadata: &client.metadata,
                client_secret: None,
                state: client.provider_state.as_ref(),
                issued_at: client.issued_at,
            })
            .await?;
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
        if self.settings.report_unknown_clients {
            report.unknown_to_gateway = at_provider
                .iter()
                .filter(|id| !in_gateway.contains_key(*id))
                .cloned()
                .collect();
        }
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

    /// Checks the initial access token the mode requires (or the one
    /// presented in open mode). Its use is spent later, just before the write.
    async fn admit(
        &self,
        context: &RequestContext,
    ) -> Result<Option<InitialAccessTokenRecord>, RegistrationError> {
        let Some(presented) = &context.initial_access_token else {
            return match self.settings.mode {
                RegistrationMode::Open => Ok(None),
                RegistrationMode::InitialAccessToken => {
                    Err(RegistrationError::InvalidInitialAccessToken(
                        "registration requires an initial access token (Authorization: Bearer)"
                            .into(),
                    ))
                }
            };
        };
        let record = self
            .store
            .find_initial_access_token(&presented.hash())
            .await
            .map_err(internal)?;
        match record {
            Some(record) if record.usable(self.clock.now_unix()) => Ok(Some(record)),
            _ => Err(RegistrationError::InvalidInitialAccessToken(
                "the initial access token is unknown, expired, revoked or used up".into(),
            )),
        }
    }

    fn policy(&self, name: &str) -> Result<&Policy, RegistrationError> {
        self.settings.policies.get(name).ok_or_else(|| {
            RegistrationError::Internal(format!("policy `{name}` is not configured"))
        })
    }

    /// `client_secret_expires_at` for a secret issued at `now`.
    fn secret_expiry(&self, secret: Option<&ClientSecret>, policy: &Policy, now: i64) -> i64 {
        match (secret, policy.client_secret_lifetime) {
            (Some(_), Some(lifetime)) => now.saturating_add(seconds(lifetime)),
            _ => 0,
        }
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

    async fn check_software_limit(
        &self,
        metadata: &ClientMetadata,
        policy: &Policy,
        current: Option<&RegisteredClient>,
    ) -> Result<(), RegistrationError> {
        let (Some(limit), Some(software_id)) =
            (policy.max_clients_per_software_id, &metadata.software_id)
        else {
            return Ok(());
        };
        if current.is_some_and(|c| c.metadata.software_id.as_ref() == Some(software_id)) {
            return Ok(());
        }
        let count = self
            .store
            .count_software(software_id)
            .await
            .map_err(internal)?;
        if count >= limit {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "software `{software_id}` already has {count} clients (policy `{}`, rule `max_clients_per_software_id`)",
                policy.name
            )));
        }
        Ok(())
    }

    fn audit_managed(
        &self,
        action: &str,
        client_id: &str,
        result: Result<&RegisteredClient, &RegistrationError>,
        context: &RequestContext,
    ) {
        audit::record(&AuditEvent {
            action,
            outcome: result.map_or_else(|e| e.code(), |_| "success"),
            client_id: Some(client_id),
            software_id: result.ok().and_then(|c| c.metadata.software_id.as_deref()),
            ip: context.ip,
            initial_access_token_id: None,
        });
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

    /// Applies the software statement, the metadata rules and the policy,
    /// then checks what needs fetching.
    async fn validate(
        &self,
        document: MetadataDocument,
        policy: &Policy,
    ) -> Result<ClientMetadata, RegistrationError> {
        let document = self.apply_software_statement(document).await?;
        let mut metadata = ClientMetadata::validate(document, policy.redirect_rules())?;
        policy.apply(&mut metadata)?;
        self.provider
            .supports(&metadata)
            .map_err(RegistrationError::InvalidClientMetadata)?;
        self.check_sector_identifier(&metadata).await?;
        Ok(metadata)
    }

    /// RFC 7591 §2.3: a verified statement's claims take precedence over the
    /// same members in the body.
    async fn apply_software_statement(
        &self,
        document: MetadataDocument,
    ) -> Result<MetadataDocument, RegistrationError> {
        let Some(statement) = &document.software_statement else {
            if self.settings.statement_required {
                return Err(RegistrationError::InvalidSoftwareStatement(
                    "a software_statement is required".into(),
                ));
            }
            return Ok(document);
        };
        let Some(verifier) = &self.settings.statements else {
            return Err(RegistrationError::UnapprovedSoftwareStatement(
                "this gateway trusts no software statement issuers".into(),
            ));
        };
        let claims = verifier.verify(statement).await?;
        let mut merged = match serde_json::to_value(&document) {
            Ok(Value::Object(members)) => members,
            _ => Map::new(),
        };
        for (claim, value) in claims {
            if !JWT_CLAIMS.contains(&claim.as_str()) {
                merged.insert(claim, value);
            }
        }
        serde_json::from_value(Value::Object(merged)).map_err(|e| {
            RegistrationError::InvalidSoftwareStatement(format!(
                "the statement's claims are not valid metadata: {e}"
            ))
        })
    }

    /// OpenID Connect Core §8.1: the sector document lists every redirect URI.
    async fn check_sector_identifier(
        &self,
        metadata: &ClientMetadata,
    ) -> Result<(), RegistrationError> {
        let Some(uri) = &metadata.sector_identifier_uri else {
            return Ok(());
        };
        let document = self.fetcher.fetch_json(uri.url()).await.map_err(|error| {
            // The cause (connection refused, a certificate, a status) would
            // let an app probe what the gateway can reach: it is logged only.
            tracing::warn!(uri = uri.as_str(), %error, "sector_identifier_uri fetch failed");
            RegistrationError::InvalidClientMetadata(format!(
                "sector_identifier_uri `{}` could not be fetched as a JSON document",
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
            ProviderError::NotFound(reason) => {
                // RFC 7592 §2: a client that does not exist is answered 401. The
                // row stays for the operator; reconcile reports it as missing.
                tracing::warn!(provider = self.provider.name(), %reason, "client missing at the provider");
                RegistrationError::InvalidToken
            }
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

fn is_current(client: &RegisteredClient, secret: &ClientSecret) -> bool {
    client
        .client_secret
        .as_ref()
        .is_some_and(|hash| hash.matches(secret.expose()))
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn internal(error: StoreError) -> RegistrationError {
    RegistrationError::Internal(error.to_string())
}
