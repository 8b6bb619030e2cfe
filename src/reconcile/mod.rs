//! Reconcile and the expiry janitor: finishing what calls with an unknown
//! outcome left behind, comparing the provider's clients with the
//! gateway's, and removing clients whose lifetime ended. The background
//! task and the CLI's `reconcile` take the [`Reconciler`]; it works on the
//! registration's shared [`Core`], and holds nothing else but its settings.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::AuditEvent;
use crate::domain::{ClientId, ClientState, RegisteredClient, RegistrationError};
use crate::provider::{ListedClient, Presence, ProviderError, ProvisionRequest};

use crate::clock::seconds;
use crate::registration::core::provider_calls::{RowClaims, store_trouble};
use crate::registration::core::{Core, MAX_LIST_LIMIT, internal};

mod janitor;
mod report;

pub use report::ReconcileReport;

/// Rows reconcile handles per store query.
const RECONCILE_BATCH: u32 = 100;

/// Reconcile and the expiry janitor, over the registration's core.
pub struct Reconciler {
    core: Arc<Core>,
    report_unknown_clients: bool,
    /// The last pass's report, and when it ended.
    last: Mutex<Option<(i64, ReconcileReport)>>,
}

impl Reconciler {
    /// Reconciles through `core`; `report_unknown_clients` says whether
    /// clients the provider holds that the gateway did not make are
    /// reported (noise where the provider also holds other tools' clients).
    #[must_use]
    pub fn new(core: Arc<Core>, report_unknown_clients: bool) -> Self {
        Self {
            core,
            report_unknown_clients,
            last: Mutex::new(None),
        }
    }

    /// The report of this instance's last reconcile pass, and when it ended
    /// (seconds since the epoch).
    #[must_use]
    pub fn last_report(&self) -> Option<(i64, ReconcileReport)> {
        self.last.lock().ok().and_then(|last| last.clone())
    }

    /// How old a pending, deleting or leased row must be before reconcile
    /// touches it (see [`Core::reconcile_grace`]).
    #[must_use]
    pub fn grace(&self) -> Duration {
        self.core.reconcile_grace()
    }

    /// Brings gateway and provider back in line, then reports drift. Rows
    /// are touched only once they are older than
    /// [`Reconciler::grace`], when no call for them can
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
        let grace = seconds(self.grace());
        let now = self.core.now();
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
            self.audit_reconcile(&id, outcome);
            report.record_pending(&id, presence);
        }
        let deleted = self
            .for_stale(
                ClientState::Deleting,
                cutoff,
                &mut report.failed,
                |client| async move {
                    self.core
                        .bounded(
                            "delete",
                            self.core
                                .provider()
                                .delete(&client.client_id, client.provider_state.as_ref()),
                        )
                        .await?;
                    self.core
                        .store()
                        .remove(&client.client_id)
                        .await
                        .map_err(store_trouble)
                },
            )
            .await?;
        report.deletions_completed = deleted.into_iter().map(|(id, _)| id).collect();
        for id in &report.deletions_completed {
            self.audit_reconcile(id, "deletion_completed");
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
        if let Ok(mut last) = self.last.lock() {
            *last = Some((self.core.now(), report.clone()));
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
                .core
                .queries()
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
            .core
            .queries()
            .list_lapsed_leases(now, RECONCILE_BATCH)
            .await
            .map_err(internal)?;
        for client in lapsed {
            let id = client.client_id.clone();
            let metadata = (*client.metadata).clone();
            match self.core.replace(client, metadata, None, None).await {
                Ok(_) => report.replaces_completed.push(id),
                Err(e) => report.failed.push(format!("{id}: {e}")),
            }
        }
        Ok(())
    }

    /// Removes a pending registration: its client at the provider, if it
    /// got there (never one another row holds), then its row.
    async fn resolve_pending(&self, client: &RegisteredClient) -> Result<Presence, ProviderError> {
        let claims = RowClaims::new(self.core.store(), &client.client_id);
        let presence = self
            .core
            .bounded(
                "discard_unconfirmed",
                self.core.registry().discard_unconfirmed(&ProvisionRequest {
                    client_id: &client.client_id,
                    metadata: &client.metadata,
                    client_secret: None,
                    state: client.provider_state.as_ref(),
                    issued_at: client.issued_at,
                    claims: &claims,
                }),
            )
            .await?;
        self.core
            .store()
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
        let listed = match self
            .core
            .measured("list", self.core.provider().list_clients())
            .await
        {
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
            let page = self.core.list(after.as_deref(), MAX_LIST_LIMIT).await?;
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
                    .core
                    .store()
                    .get(&client.id)
                    .await
                    .map_err(store_trouble)?
                    .is_some()
                {
                    return Ok(None);
                }
                self.core
                    .bounded("delete", self.core.provider().delete(&client.id, None))
                    .await?;
                self.audit_reconcile(&client.id, "orphan_deleted");
                Ok(Some(true))
            }
            Some(true) => Ok(None),
            _ => Ok(self.report_unknown_clients.then_some(false)),
        }
    }

    /// Audits a deletion reconcile made.
    fn audit_reconcile(&self, client_id: &ClientId, outcome: &str) {
        self.core.journal().audit(&AuditEvent {
            action: "reconcile_delete",
            outcome,
            client_id: Some(client_id.as_str()),
            ..AuditEvent::default()
        });
    }
}
