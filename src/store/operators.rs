//! Operator tokens: what signs an operator in to the console. Made by the
//! CLI (`dcr-gateway operator create`), shown once, kept as digests like
//! initial access tokens.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::SecretHash;

/// An operator token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTokenRecord {
    /// Public identifier, for listing and revoking.
    pub id: String,
    /// Digest of the token.
    pub hash: SecretHash,
    /// Who it is for: shown in the console and written in the audit trail.
    pub name: String,
    /// When it was made (seconds since the epoch).
    pub created_at: i64,
    /// When it stops working (seconds since the epoch).
    pub expires_at: Option<i64>,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl OperatorTokenRecord {
    /// Who the audit trail says acted with it: `operator:NAME`.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("operator:{}", self.name)
    }

    /// Whether it may sign someone in, or keep a session, at `now`.
    #[must_use]
    pub fn usable(&self, now: i64) -> bool {
        !self.revoked && self.expires_at.is_none_or(|t| now < t)
    }
}

/// The operator tokens.
#[async_trait]
pub trait OperatorTokens: Send + Sync {
    /// Adds a token.
    async fn insert_operator_token(&self, token: &OperatorTokenRecord) -> Result<(), StoreError>;

    /// Finds a token by its digest, whatever its state.
    async fn operator_token_by_hash(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<OperatorTokenRecord>, StoreError>;

    /// Finds a token by its id, whatever its state.
    async fn operator_token(&self, id: &str) -> Result<Option<OperatorTokenRecord>, StoreError>;

    /// Every token, newest first.
    async fn list_operator_tokens(&self) -> Result<Vec<OperatorTokenRecord>, StoreError>;

    /// Revokes a token; `false` when no such token exists.
    async fn revoke_operator_token(&self, id: &str) -> Result<bool, StoreError>;
}
