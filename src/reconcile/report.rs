//! What a reconcile pass did and found.

use crate::domain::ClientId;
use crate::provider::Presence;

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
    /// Lists a removed pending registration by what the provider held.
    pub(super) fn record_pending(&mut self, id: &ClientId, presence: Presence) {
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
