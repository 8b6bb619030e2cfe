//! The registration service: everything RFC 7591 registration and RFC 7592
//! management do, in one place and in the order that loses nothing —
//! admit (initial access token), apply the software statement, validate and
//! apply the policy, write the gateway's row, call the provider, confirm the
//! row. The HTTP routes and the operator commands both go through it.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use crate::audit::{self, AuditEvent};
use crate::clock::Clock;
use crate::domain::client::counted_software_id;
use crate::domain::policy::Policy;
use crate::domain::{
    ClientId, ClientMetadata, ClientSecret, ClientState, InitialAccessToken,
    InitialAccessTokenRecord, MetadataDocument, ProviderState, RedirectRules, RegisteredClient,
    RegistrationAccessToken, RegistrationError, SecretHash, VouchedClaims,
};
use crate::provider::{
    IdClaims, ListedClient, Presence, Provider, ProviderError, ProvisionRequest,
};
use crate::store::{ClientStore, StoreError};

/// Fetches JSON documents that apps point the gateway at (such as a
/// `sector_identifier_uri`), through a client that guards against SSRF.
#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// GETs `url` and parses the body as JSON.
    async fn fetch_json(&self, url: &Url) -> Result<Value, FetchError>;
}

/// Why a document could not be fetched: the detail, for the log (the app
/// is told a fixed reason).
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

/// An RFC 7592 action, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageAction {
    /// RFC 7592 §2.1 read.
    Read,
    /// RFC 7592 §2.2 replace.
    Replace,
    /// RFC 7592 §2.3 delete.
    Delete,
}

impl ManageAction {
    /// The name audit events carry.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Replace => "replace",
            Self::Delete => "delete",
        }
    }
}

/// A client whose registration access token a request presented and the
/// gateway verified: what the RFC 7592 actions take.
#[derive(Debug)]
pub struct Authenticated {
    client: RegisteredClient,
    token: RegistrationAccessToken,
}

impl Authenticated {
    /// The client's id.
    #[must_use]
    pub fn client_id(&self) -> &ClientId {
        &self.client.client_id
    }
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
/// Seconds to suggest retrying after when the provider gives no hint.
const RETRY_AFTER_SECS: u64 = 5;

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
    /// Replaces whose outcome was unknown, sent to the provider again.
    pub replaces_completed: Vec<ClientId>,
    /// Clients carrying the gateway's mark that no row holds (left by a
    /// call whose outcome was misread), deleted at the provider.
    pub orphans_removed: Vec<ClientId>,
    /// Clients the provider holds that the gateway does not know (made by
    /// other tools, or, where the provider has no field for the gateway's
    /// mark, perhaps by the gateway): reported, never deleted.
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
        let (metadata, vouched) = self.validate(document, policy, None).await?;
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
            revision: 0,
            lease_until: None,
            vouched,
        };
        if self.provider.is_gateway_registry() {
            // The store is the registry: one durable write, nothing to confirm.
            let client = RegisteredClient {
                state: ClientState::Active,
                client_secret_expires_at: self.secret_expiry(secret.as_ref(), policy, now),
                ..pending
            };
            self.insert(&client, policy).await?;
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
        let claims = RowClaims::new(self.store.as_ref(), &pending.client_id);
        let request = ProvisionRequest {
            client_id: &pending.client_id,
            metadata: &pending.metadata,
            client_secret: secret.as_ref(),
            state: None,
            issued_at: now,
            claims: &claims,
        };
        let provisioned = match self.bounded(self.provider.create(&request)).await {
            Ok(provisioned) => provisioned,
            Err(error) => {
                if !matches!(error, ProviderError::Indeterminate(_)) {
                    self.store.remove(&claims.row()).await.map_err(internal)?;
                    self.refund(&pending).await?;
                }
                return Err(self.provider_error(error));
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
                .unwrap_or_else(|| self.secret_expiry(secret.as_ref(), policy, now)),
            metadata: as_held(pending.metadata, provisioned.held_metadata),
            provider_state: provisioned.state,
            state: ClientState::Active,
            ..pending
        };
        match self.store.activate(&row, &client).await {
            Ok(true) => Ok((client, secret)),
            // The provider's id is another row's: the client stays pending
            // for reconcile, which leaves that row's client alone.
            Err(StoreError::Duplicate(id)) => Err(self.provider_error(
                ProviderError::Indeterminate(format!("the provider's id {id} is another client's")),
            )),
            Ok(false) => Err(RegistrationError::Internal(format!(
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
            .store
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
            self.store
                .refund_initial_access_token(grant)
                .await
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Runs a provider operation within its deadline; past it, the outcome
    /// is unknown.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        match self.provider.operation_deadline() {
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

    /// How old a pending, deleting or leased row must be before reconcile
    /// touches it: twice the provider's operation deadline and clock skew, so
    /// that no call for it, nor one of a registration whose client could be
    /// mistaken for it, can still be in flight.
    #[must_use]
    pub fn reconcile_grace(&self) -> Duration {
        self.provider
            .operation_deadline()
            .map_or(Duration::ZERO, |deadline| {
                (deadline + self.provider.clock_skew()) * 2
            })
    }

    /// RFC 7592 §2.1: reads a client's current registration.
    pub fn read(&self, client: Authenticated, context: &RequestContext) -> ClientInformation {
        self.audit_managed(
            ManageAction::Read,
            &client.client.client_id,
            Ok(&client.client),
            context,
        );
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
    async fn replace(
        &self,
        current: RegisteredClient,
        metadata: ClientMetadata,
        generated: Option<ClientSecret>,
        registration_token: Option<SecretHash>,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), RegistrationError> {
        let now = self.clock.now_unix();
        let id = current.client_id.clone();
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
            .ok_or_else(|| {
                RegistrationError::Conflict(
                    "another change of this client came first or is in progress; read the \
                     client again and retry"
                        .into(),
                )
            })?;
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
        let provisioned = self.bounded(self.provider.replace(&request)).await?;
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
            metadata: as_held(metadata, provisioned.held_metadata),
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
        let result = self.delete_client(&client).await;
        audit::record(&AuditEvent {
            action: "operator_delete",
            outcome: result
                .as_ref()
                .map_or_else(RegistrationError::code, |()| "success"),
            client_id: Some(client_id),
            software_id: client.metadata.software_id.as_deref(),
            ..AuditEvent::default()
        });
        result
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
        let (client, secret) = self
            .replace(current, metadata, Some(ClientSecret::generate()), None)
            .await?;
        let secret = secret.ok_or_else(|| {
            RegistrationError::InvalidClientMetadata(format!(
                "the {} provider keeps its own client secrets and did not change this one",
                self.provider.name()
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
        let mut after: Option<ClientId> = None;
        loop {
            let expired = self
                .store
                .list_expired(now, after.as_ref(), RECONCILE_BATCH)
                .await
                .map_err(internal)?;
            let batch = expired.len();
            after = expired.last().map(|c| c.client_id.clone());
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
                        tracing::warn!(client_id = %client.client_id, %error, "expiry failed; retried on the next run");
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
    /// row. A client a replace holds is refused with
    /// [`RegistrationError::Conflict`]. A definite provider failure restores
    /// the client; an unknown outcome leaves it deleting for
    /// [`RegistrationService::reconcile`].
    async fn delete_client(&self, client: &RegisteredClient) -> Result<(), RegistrationError> {
        let id = &client.client_id;
        let now = self.clock.now_unix();
        if !self.store.begin_delete(id, now).await.map_err(internal)? {
            return Err(RegistrationError::Conflict(
                "the client is being changed or is no longer active; read it again and retry"
                    .into(),
            ));
        }
        let deleted = self
            .bounded(self.provider.delete(id, client.provider_state.as_ref()))
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

    /// Brings gateway and provider back in line, then reports drift. Rows
    /// are touched only once they are older than
    /// [`RegistrationService::reconcile_grace`], when no call for them can
    /// still be in flight.
    ///
    /// Pending rows belong to registrations whose app never received
    /// credentials: the client is deleted at the provider if it got there,
    /// and the row removed. Deleting rows are deleted at the provider and
    /// removed. Clients whose replace had an unknown outcome are sent to the
    /// provider again as stored. Finally the provider's clients (where it
    /// can list them) are compared with the gateway's: an orphan carrying the
    /// gateway's mark is deleted, anything else is only reported. Nothing a
    /// row of the gateway holds is ever deleted here.
    pub async fn reconcile(&self) -> Result<ReconcileReport, RegistrationError> {
        let grace = seconds(self.reconcile_grace());
        let now = self.clock.now_unix();
        let cutoff = now.saturating_sub(grace);
        let mut report = ReconcileReport::default();
        let resolved = self
            .for_stale(
                ClientState::Pending,
                cutoff,
                &mut report.failed,
                |client| async move { self.resolve_pending(&client).await },
            )
            .await?;
        for (id, presence) in resolved {
            let outcome = match presence {
                Presence::Present => "deleted_at_provider",
                Presence::Absent => "never_created",
                Presence::Unknown => "possible_orphan",
            };
            audit_reconcile(&id, outcome);
            report.record_pending(&id, presence);
        }
        let deleted = self
            .for_stale(
                ClientState::Deleting,
                cutoff,
                &mut report.failed,
                |client| async move {
                    self.bounded(
                        self.provider
                            .delete(&client.client_id, client.provider_state.as_ref()),
                    )
                    .await?;
                    self.store
                        .remove(&client.client_id)
                        .await
                        .map_err(store_trouble)
                },
            )
            .await?;
        report.deletions_completed = deleted.into_iter().map(|(id, _)| id).collect();
        for id in &report.deletions_completed {
            audit_reconcile(id, "deletion_completed");
        }
        self.resend_lapsed_replaces(now, &mut report).await?;
        self.compare_with_provider(cutoff, &mut report).await?;
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

    /// Runs `resolve` on every row in `state` not written since `cutoff`,
    /// batch by batch, until a batch brings no progress; returns what it
    /// gave for each row it resolved. A row that fails is listed in
    /// `failed` and left for the next pass.
    async fn for_stale<T, F, Fut>(
        &self,
        state: ClientState,
        cutoff: i64,
        failed: &mut Vec<String>,
        resolve: F,
    ) -> Result<Vec<(ClientId, T)>, RegistrationError>
    where
        F: Fn(RegisteredClient) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut resolved = Vec::new();
        loop {
            let stale = self
                .store
                .list_stale(state, cutoff, RECONCILE_BATCH)
                .await
                .map_err(internal)?;
            let batch = stale.len();
            let mut progressed = false;
            for client in stale {
                let id = client.client_id.clone();
                match resolve(client).await {
                    Ok(value) => {
                        progressed = true;
                        resolved.push((id, value));
                    }
                    Err(e) => failed.push(format!("{id}: {e}")),
                }
            }
            if !progressed || batch < RECONCILE_BATCH as usize {
                return Ok(resolved);
            }
        }
    }

    /// Sends every client whose replace had an unknown outcome (its lease
    /// lapsed) to the provider again, as the gateway holds it.
    async fn resend_lapsed_replaces(
        &self,
        now: i64,
        report: &mut ReconcileReport,
    ) -> Result<(), RegistrationError> {
        let lapsed = self
            .store
            .list_lapsed_leases(now, RECONCILE_BATCH)
            .await
            .map_err(internal)?;
        for client in lapsed {
            let id = client.client_id.clone();
            let metadata = client.metadata.clone();
            match self.replace(client, metadata, None, None).await {
                Ok(_) => report.replaces_completed.push(id),
                Err(e) => report.failed.push(format!("{id}: {e}")),
            }
        }
        Ok(())
    }

    /// Removes a pending registration: its client at the provider, if it
    /// got there (never one another row holds), then its row.
    async fn resolve_pending(&self, client: &RegisteredClient) -> Result<Presence, ProviderError> {
        let claims = RowClaims::new(self.store.as_ref(), &client.client_id);
        let presence = self
            .bounded(self.provider.discard_unconfirmed(&ProvisionRequest {
                client_id: &client.client_id,
                metadata: &client.metadata,
                client_secret: None,
                state: client.provider_state.as_ref(),
                issued_at: client.issued_at,
                claims: &claims,
            }))
            .await?;
        self.store
            .remove(&claims.row())
            .await
            .map_err(store_trouble)?;
        Ok(presence)
    }

    /// Compares the provider's clients with the gateway's rows. Rows and
    /// clients younger than `cutoff` are left out: a registration may still
    /// be writing them.
    async fn compare_with_provider(
        &self,
        cutoff: i64,
        report: &mut ReconcileReport,
    ) -> Result<(), RegistrationError> {
        let listed = match self.provider.list_clients().await {
            Ok(Some(listed)) => listed,
            Ok(None) => return Ok(()),
            Err(e) => {
                report
                    .failed
                    .push(format!("listing the provider's clients: {e}"));
                return Ok(());
            }
        };
        let mut in_gateway = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list(after.as_deref(), MAX_LIST_LIMIT).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.client_id.to_string());
            for client in page {
                in_gateway.insert(client.client_id.clone(), (client.state, client.issued_at));
            }
        }
        let at_provider: std::collections::BTreeSet<&ClientId> =
            listed.iter().map(|c| &c.id).collect();
        for client in listed.iter().filter(|c| !in_gateway.contains_key(&c.id)) {
            match self.unknown_client(client, cutoff).await {
                Ok(Some(true)) => report.orphans_removed.push(client.id.clone()),
                Ok(Some(false)) => report.unknown_to_gateway.push(client.id.clone()),
                Ok(None) => {}
                Err(e) => report.failed.push(format!("{}: {e}", client.id)),
            }
        }
        report.missing_at_provider = in_gateway
            .iter()
            .filter(|(id, (state, issued_at))| {
                *state == ClientState::Active && *issued_at < cutoff && !at_provider.contains(id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        Ok(())
    }

    /// What to do with a client the provider holds and no row does:
    /// `Some(true)` once deleted (it carries the gateway's mark and is old
    /// enough that no registration can still be writing it), `Some(false)`
    /// to report it, `None` to leave it unsaid (quiet about other tools'
    /// clients, or too young to judge).
    async fn unknown_client(
        &self,
        client: &ListedClient,
        cutoff: i64,
    ) -> Result<Option<bool>, ProviderError> {
        let settled = client.created_at.is_some_and(|t| t < cutoff);
        match client.marked {
            Some(true) if settled => {
                // A row may have taken it since the listing: never delete one.
                if self
                    .store
                    .get(&client.id)
                    .await
                    .map_err(store_trouble)?
                    .is_some()
                {
                    return Ok(None);
                }
                self.bounded(self.provider.delete(&client.id, None)).await?;
                audit_reconcile(&client.id, "orphan_deleted");
                Ok(Some(true))
            }
            Some(true) => Ok(None),
            _ => Ok(self.settings.report_unknown_clients.then_some(false)),
        }
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

    /// Whether a client moving to another software (by a replace) fits that
    /// software's cap.
    async fn check_software_limit(
        &self,
        software_id: Option<&str>,
        policy: &Policy,
    ) -> Result<(), RegistrationError> {
        let (Some(limit), Some(software_id)) = (policy.max_clients_per_software_id, software_id)
        else {
            return Ok(());
        };
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
        action: ManageAction,
        client_id: &ClientId,
        result: Result<&RegisteredClient, &RegistrationError>,
        context: &RequestContext,
    ) {
        audit::record(&AuditEvent {
            action: action.as_str(),
            outcome: result.map_or_else(|e| e.code(), |_| "success"),
            client_id: Some(client_id.as_str()),
            software_id: result.ok().and_then(|c| c.metadata.software_id.as_deref()),
            ip: context.ip,
            initial_access_token_id: None,
        });
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
    /// `pinned` holds what an earlier statement vouched for (on a replace);
    /// the answer carries what is vouched for from now on.
    async fn validate(
        &self,
        document: MetadataDocument,
        policy: &Policy,
        pinned: Option<&VouchedClaims>,
    ) -> Result<(ClientMetadata, Option<VouchedClaims>), RegistrationError> {
        let (document, vouched) = self.apply_software_statement(document, pinned).await?;
        let mut metadata = ClientMetadata::validate(document, policy.redirect_rules())?;
        policy.apply(&mut metadata)?;
        self.provider
            .supports(&metadata)
            .map_err(RegistrationError::InvalidClientMetadata)?;
        self.check_sector_identifier(&metadata).await?;
        Ok((metadata, vouched))
    }

    /// RFC 7591 §2.3: a verified statement's claims take precedence over the
    /// same members in the body, and stay pinned to the registration. A
    /// replace without a new statement keeps the `pinned` claims: it may
    /// leave those members out, but not change them.
    async fn apply_software_statement(
        &self,
        document: MetadataDocument,
        pinned: Option<&VouchedClaims>,
    ) -> Result<(MetadataDocument, Option<VouchedClaims>), RegistrationError> {
        let vouched = match &document.software_statement {
            Some(statement) => {
                let Some(verifier) = &self.settings.statements else {
                    return Err(RegistrationError::UnapprovedSoftwareStatement(
                        "this gateway trusts no software statement issuers".into(),
                    ));
                };
                let mut claims = verifier.verify(statement).await?;
                claims.retain(|claim, _| !JWT_CLAIMS.contains(&claim.as_str()));
                VouchedClaims(claims)
            }
            None if pinned.is_some() => {
                let pinned = pinned.cloned().unwrap_or_default();
                let sent = serde_json::to_value(&document).unwrap_or(Value::Null);
                if let Some((member, _)) = pinned
                    .0
                    .iter()
                    .find(|(member, value)| sent.get(member).is_some_and(|s| s != *value))
                {
                    return Err(RegistrationError::InvalidClientMetadata(format!(
                        "`{member}` was vouched for by the software statement; send a new \
                         software_statement to change it"
                    )));
                }
                pinned
            }
            None if self.settings.statement_required => {
                return Err(RegistrationError::InvalidSoftwareStatement(
                    "a software_statement is required".into(),
                ));
            }
            None => return Ok((document, None)),
        };
        let mut merged = match serde_json::to_value(&document) {
            Ok(Value::Object(members)) => members,
            _ => Map::new(),
        };
        merged.extend(vouched.0.clone());
        let document = serde_json::from_value(Value::Object(merged)).map_err(|e| {
            RegistrationError::InvalidSoftwareStatement(format!(
                "the statement's claims are not valid metadata: {e}"
            ))
        })?;
        Ok((document, Some(vouched)))
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

    /// A provider failure as the app is told it: in the gateway's own
    /// words. What the provider said goes to the log.
    fn provider_error(&self, error: ProviderError) -> RegistrationError {
        let provider = self.provider.name();
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
                    retry_after_secs: RETRY_AFTER_SECS,
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

/// Audits a deletion reconcile made.
fn audit_reconcile(client_id: &ClientId, outcome: &str) {
    audit::record(&AuditEvent {
        action: "reconcile_delete",
        outcome,
        client_id: Some(client_id.as_str()),
        ..AuditEvent::default()
    });
}

/// `metadata` as the provider holds it: the members it answered with
/// replace what was sent (the rest is the gateway's to keep). Should the
/// provider's values not make valid metadata, what was registered stays,
/// and the log says so.
fn as_held(metadata: ClientMetadata, held: Option<Map<String, Value>>) -> ClientMetadata {
    let Some(held) = held else {
        return metadata;
    };
    let Ok(Value::Object(mut document)) = serde_json::to_value(metadata.to_document()) else {
        return metadata;
    };
    document.extend(held);
    let read = serde_json::from_value::<MetadataDocument>(Value::Object(document))
        .map_err(|e| e.to_string())
        .and_then(|document| {
            ClientMetadata::validate(document, RedirectRules::PERMISSIVE).map_err(|e| e.to_string())
        });
    match read {
        Ok(held) => held,
        Err(error) => {
            tracing::warn!(%error, "the provider's metadata is not valid; the registered metadata is kept");
            metadata
        }
    }
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

/// A store failure in the middle of a provider operation: whether the
/// gateway's side was written is unknown, so the operation's is too.
fn store_trouble(error: StoreError) -> ProviderError {
    ProviderError::Indeterminate(format!("the gateway's store: {error}"))
}

/// [`IdClaims`] for one row: ids are looked up in the store, and a claim
/// gives the pending row the provider's id (atomically, so that no two rows
/// ever hold it).
struct RowClaims<'s> {
    store: &'s dyn ClientStore,
    row: Mutex<ClientId>,
}

impl<'s> RowClaims<'s> {
    fn new(store: &'s dyn ClientStore, row: &ClientId) -> Self {
        Self {
            store,
            row: Mutex::new(row.clone()),
        }
    }

    /// The row's id now: the provider's, once one was claimed.
    fn row(&self) -> ClientId {
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
