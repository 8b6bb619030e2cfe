//! Each client's audit trail, kept for the console's client page: what was
//! done to the client, when, and by whom. Entries outlive their client (the
//! trail records its removal) and are pruned by age.

use async_trait::async_trait;

use super::StoreError;

/// One entry of a client's trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailEntry {
    /// When (seconds since the epoch).
    pub at: i64,
    /// The client concerned.
    pub client_id: String,
    /// What was done (the audit event's action: `register`, `replace`,
    /// `operator_delete`, `rotate_secret`, `idle`, …).
    pub action: String,
    /// `success`, or the error it ended in.
    pub outcome: String,
    /// Who did it, when an operator did (`operator:alice`, `cli`).
    pub actor: Option<String>,
}

/// The trails.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Appends entries.
    async fn append_trail(&self, entries: &[TrailEntry]) -> Result<(), StoreError>;

    /// The newest `limit` entries of a client's trail, newest first.
    async fn trail_of(&self, client_id: &str, limit: u32) -> Result<Vec<TrailEntry>, StoreError>;

    /// Forgets entries older than `before`.
    async fn prune_trail(&self, before: i64) -> Result<(), StoreError>;
}
