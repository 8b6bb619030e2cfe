//! What registration and reconcile share: the client store and the queries
//! over it, the registry (the built-in one, or a provider's), the clock
//! and the policies; the one place the provider is called (`provider_calls`:
//! bounded, measured, its ids claimed for a row, its failures in the
//! gateway's words); and the two changes both make to an existing client,
//! a replace under its lease and a delete (`changes`).
//!
//! [`super::RegistrationService`] and [`crate::reconcile::Reconciler`] are
//! built on one [`Core`] and see it only through these methods.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, seconds};
use crate::domain::policy::Policy;
use crate::domain::{ClientId, ClientSecret, RegisteredClient, RegistrationError};
use crate::provider::registry::Registry;
use crate::store::usage::ClientUsage;
use crate::store::{ClientQueries, ClientStore, StoreError};

use super::journal::Journal;
use super::usage::UsageRecorder;

pub(crate) mod changes;
pub(crate) mod provider_calls;

/// The largest page the operator listing returns at once.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// The shared core of the registration service and the reconciler.
pub struct Core {
    store: Arc<dyn ClientStore>,
    queries: Arc<dyn ClientQueries>,
    registry: Registry,
    clock: Arc<dyn Clock>,
    policies: BTreeMap<String, Policy>,
    usage: Arc<UsageRecorder>,
    journal: Arc<Journal>,
}

impl Core {
    /// The core over the client store (`store`, behind its cache),
    /// `queries` over many clients, the `registry`, the time, the
    /// configured policies by name, where clients' uses are kept, and the
    /// journal of what it does.
    pub fn new(
        store: Arc<dyn ClientStore>,
        queries: Arc<dyn ClientQueries>,
        registry: Registry,
        clock: Arc<dyn Clock>,
        policies: BTreeMap<String, Policy>,
        usage: Arc<dyn ClientUsage>,
        journal: Arc<Journal>,
    ) -> Self {
        Self {
            store,
            queries,
            registry,
            usage: Arc::new(UsageRecorder::new(usage, clock.clone())),
            journal,
            clock,
            policies,
        }
    }

    /// The recorder of clients' uses.
    #[must_use]
    pub fn usage(&self) -> &Arc<UsageRecorder> {
        &self.usage
    }

    /// The journal of counts and trails.
    #[must_use]
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Clients' last uses, as stored.
    pub(crate) fn idle(&self) -> &dyn ClientUsage {
        self.usage.store()
    }

    /// The configured policies.
    pub(crate) fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    /// The client store.
    pub(crate) fn store(&self) -> &dyn ClientStore {
        self.store.as_ref()
    }

    /// The queries over many clients.
    pub(crate) fn queries(&self) -> &dyn ClientQueries {
        self.queries.as_ref()
    }

    /// The registry clients are written to.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The time, in seconds since the epoch.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_unix()
    }

    /// The configured policy `name`.
    pub(crate) fn policy(&self, name: &str) -> Result<&Policy, RegistrationError> {
        self.policies.get(name).ok_or_else(|| {
            RegistrationError::internal(format!("policy `{name}` is not configured"))
        })
    }

    /// `client_secret_expires_at` for a secret issued at `now`.
    pub(crate) fn secret_expiry(
        &self,
        secret: Option<&ClientSecret>,
        policy: &Policy,
        now: i64,
    ) -> i64 {
        match (secret, policy.client_secret_lifetime) {
            (Some(_), Some(lifetime)) => now.saturating_add(seconds(lifetime)),
            _ => 0,
        }
    }

    /// One client, in any state.
    pub(crate) async fn show(
        &self,
        client_id: &str,
    ) -> Result<RegisteredClient, RegistrationError> {
        self.store
            .get(&ClientId::new(client_id))
            .await
            .map_err(internal)?
            .ok_or_else(|| RegistrationError::UnknownClient(client_id.to_owned()))
    }

    /// Clients in id order after `after`, at most `limit` (capped at
    /// [`MAX_LIST_LIMIT`]).
    pub(crate) async fn list(
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

    /// How old a pending, deleting or leased row must be before reconcile
    /// touches it: twice the provider's operation deadline and clock skew, so
    /// that no call for it, nor one of a registration whose client could be
    /// mistaken for it, can still be in flight.
    #[must_use]
    pub fn reconcile_grace(&self) -> Duration {
        self.provider()
            .operation_deadline()
            .map_or(Duration::ZERO, |deadline| {
                (deadline + self.provider().clock_skew()) * 2
            })
    }
}

/// A store failure, as an internal error.
pub(crate) fn internal(error: StoreError) -> RegistrationError {
    RegistrationError::internal(error)
}
