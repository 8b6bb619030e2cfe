//! The ports the authorization front keeps its state through, so that
//! every instance sees it: transactions and their codes, and the mapping of
//! Client ID Metadata Document URLs to clients. The SQL store implements
//! them (`sql/front.rs`); the front ([`crate::front`]) uses them.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::SecretHash;

/// What `/authorize` learnt and `/token` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The client id the app uses (and the provider holds).
    pub client_id: String,
    /// The app's redirect URI, exactly as sent.
    pub redirect_uri: String,
    /// The app's `state`, returned to it unchanged.
    pub app_state: Option<String>,
    /// The app's PKCE challenge (S256).
    pub code_challenge: String,
    /// The scope asked for.
    pub scope: Option<String>,
    /// The resource indicator (RFC 8707) asked for.
    pub resource: Option<String>,
    /// When the current step expires (Unix seconds).
    pub expires_at: i64,
}

/// Where a transaction stands once a code was issued for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePhase {
    /// Issued, not yet redeemed.
    Issued,
    /// Redeemed once already.
    Redeemed,
}

/// A gateway code as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredCode {
    /// The transaction it was issued for.
    pub transaction: Transaction,
    /// Whether it was redeemed.
    pub phase: CodePhase,
    /// The provider's code (issued) or the tokens it gave (redeemed),
    /// sealed under the gateway code.
    pub sealed: Option<Vec<u8>>,
}

/// A gateway code to record at `/callback`.
#[derive(Debug)]
pub struct NewCode<'a> {
    /// The code's digest.
    pub hash: &'a SecretHash,
    /// The provider's code, sealed under the gateway code.
    pub sealed: &'a [u8],
    /// When the code expires.
    pub expires_at: i64,
}

/// The store of transactions, shared by all instances.
#[async_trait]
pub trait TransactionStore: Send + Sync {
    /// Opens a transaction named by the digest of its provider-side state,
    /// after removing expired ones; `false` when `max_live` are live.
    async fn open(
        &self,
        state: &SecretHash,
        transaction: &Transaction,
        now: i64,
        max_live: u64,
    ) -> Result<bool, StoreError>;

    /// Ends the provider leg of a live transaction, once: with a gateway
    /// code, or as failed (`None`). `None` when the state is unknown, used
    /// or expired.
    async fn complete(
        &self,
        state: &SecretHash,
        code: Option<NewCode<'_>>,
        now: i64,
    ) -> Result<Option<Transaction>, StoreError>;

    /// The code with this digest, in whatever phase (expired ones included
    /// until they are swept).
    async fn code(&self, code: &SecretHash) -> Result<Option<StoredCode>, StoreError>;

    /// Marks a live issued code redeemed, kept until `keep_until` so that a
    /// replay is recognised; `false` when it was not live and issued.
    async fn redeem(
        &self,
        code: &SecretHash,
        now: i64,
        keep_until: i64,
    ) -> Result<bool, StoreError>;

    /// Keeps what the redemption of `code` issued, sealed under it.
    async fn record_tokens(&self, code: &SecretHash, sealed: &[u8]) -> Result<(), StoreError>;
}

/// One document's client, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The client registered for the document.
    pub client_id: String,
    /// SHA-256 of the document it was registered from.
    pub document_hash: Vec<u8>,
    /// Until when that copy is fresh (Unix seconds).
    pub fresh_until: i64,
}

/// The store of document → client mappings, shared by all instances.
#[async_trait]
pub trait CimdStore: Send + Sync {
    /// The mapping of `url`, if any.
    async fn mapping(&self, url: &str) -> Result<Option<Mapping>, StoreError>;

    /// How many documents have a client: those of `host`, or all.
    async fn documents_of(&self, host: Option<&str>) -> Result<u64, StoreError>;

    /// Records the first mapping of `url`; `false` when another instance
    /// recorded one first.
    async fn insert_mapping(
        &self,
        url: &str,
        host: &str,
        mapping: &Mapping,
    ) -> Result<bool, StoreError>;

    /// Records what was fetched again for `url`.
    async fn update_mapping(&self, url: &str, mapping: &Mapping) -> Result<(), StoreError>;
}
