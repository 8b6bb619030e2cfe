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
    /// The resource indicator (RFC 8707) asked for, and bound to the grant.
    pub resource: Option<String>,
    /// When the current step expires (Unix seconds).
    pub expires_at: i64,
}

/// A transaction to open at `/authorize`.
#[derive(Debug)]
pub struct NewTransaction<'a> {
    /// What it ties together.
    pub transaction: &'a Transaction,
    /// The digest of the address that opens it, whose share it counts in.
    pub caller: &'a str,
    /// Set when it waits for the user's consent on the gateway's page.
    pub consent: Option<AwaitedConsent<'a>>,
}

/// A transaction waiting for the user's consent: the page's form token
/// and the browser's cookie that must come back together, and where the
/// user goes once they agree.
#[derive(Debug)]
pub struct AwaitedConsent<'a> {
    /// The digest of the form token.
    pub form: &'a SecretHash,
    /// The digest of the browser's cookie.
    pub browser: &'a SecretHash,
    /// The provider's authorization URL, without its `state`.
    pub provider_url: &'a str,
}

/// Whose transactions are counted against a share.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// An address, by its digest.
    Caller(&'a str),
    /// A client, by its id.
    Client(&'a str),
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

/// A transaction whose provider leg ended, with the digest of the browser
/// it is bound to, if it went through the consent page.
#[derive(Debug, Clone)]
pub struct Completed {
    /// The transaction.
    pub transaction: Transaction,
    /// The digest of the cookie of the browser that consented.
    pub browser: Option<SecretHash>,
}

/// The store of transactions, shared by all instances.
#[async_trait]
pub trait TransactionStore: Send + Sync {
    /// Opens a transaction named by the digest of its provider-side state
    /// (or, while it waits for consent, of a placeholder).
    async fn open(&self, state: &SecretHash, new: &NewTransaction<'_>) -> Result<(), StoreError>;

    /// How many live transactions of `holder` wait for the provider (or for
    /// consent) at `now`, counted up to `limit`: the count costs the same
    /// however many transactions the store holds.
    async fn live(&self, holder: Holder<'_>, now: i64, limit: u64) -> Result<u64, StoreError>;

    /// The user agreed on the consent page: the live transaction waiting
    /// for the form token `form` from the browser `browser` is named by
    /// `state` from now on and goes to the provider, once. Returns it with
    /// the provider URL it holds; `None` when there is no such transaction.
    async fn consent(
        &self,
        form: &SecretHash,
        browser: &SecretHash,
        state: &SecretHash,
        now: i64,
    ) -> Result<Option<(Transaction, String)>, StoreError>;

    /// The user declined on the consent page: the transaction ends, once.
    async fn decline(
        &self,
        form: &SecretHash,
        browser: &SecretHash,
        now: i64,
    ) -> Result<Option<Transaction>, StoreError>;

    /// Ends the provider leg of a live transaction, once: with a gateway
    /// code, or as failed (`None`). `None` when the state is unknown, used
    /// or expired.
    async fn complete(
        &self,
        state: &SecretHash,
        code: Option<NewCode<'_>>,
        now: i64,
    ) -> Result<Option<Completed>, StoreError>;

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

    /// Keeps what the redemption of `code` issued, sealed under it; whether
    /// the code was replayed meanwhile (then what it issued must be
    /// revoked).
    async fn record_tokens(&self, code: &SecretHash, sealed: &[u8]) -> Result<bool, StoreError>;

    /// Marks a redeemed code replayed; what its redemption issued, sealed,
    /// if that was recorded already (else the redemption, on recording it,
    /// learns of the replay).
    async fn mark_replayed(&self, code: &SecretHash) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes expired transactions; how many live ones remain.
    async fn sweep(&self, now: i64) -> Result<u64, StoreError>;
}

/// One document's client, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The client registered for the document; empty while a place is
    /// reserved for it.
    pub client_id: String,
    /// SHA-256 of the document it was registered from.
    pub document_hash: Vec<u8>,
    /// Until when that copy is fresh (or the reservation holds), Unix
    /// seconds.
    pub fresh_until: i64,
    /// When its client was last used, as last recorded (Unix seconds).
    pub last_used: i64,
}

impl Mapping {
    /// Whether this is a place reserved for a client being registered.
    #[must_use]
    pub fn is_reservation(&self) -> bool {
        self.client_id.is_empty()
    }
}

/// The operator's caps on documents.
#[derive(Debug, Clone, Copy)]
pub struct DocumentCaps {
    /// Most documents of one host.
    pub per_host: u64,
    /// Most documents in all.
    pub in_all: u64,
}

/// What became of an attempt to reserve a place for a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// The place is the caller's: register the client, then fill it in.
    Yes,
    /// The document's host has as many documents as allowed.
    HostFull,
    /// The gateway has as many documents as allowed.
    AllFull,
    /// The URL has a mapping already (another instance got there first).
    Taken,
}

/// The store of document → client mappings, shared by all instances.
#[async_trait]
pub trait CimdStore: Send + Sync {
    /// The mapping of `url`, if any.
    async fn mapping(&self, url: &str) -> Result<Option<Mapping>, StoreError>;

    /// Whether `client_id` is the client of some document.
    async fn is_document_client(&self, client_id: &str) -> Result<bool, StoreError>;

    /// Reserves a place for `url` (of `host`) until `until`, within
    /// `caps`, atomically however many first sights race.
    async fn reserve(
        &self,
        url: &str,
        host: &str,
        caps: DocumentCaps,
        now: i64,
        until: i64,
    ) -> Result<Reserved, StoreError>;

    /// Records what was fetched (and registered) for `url`, used at `now`.
    async fn update_mapping(
        &self,
        url: &str,
        mapping: &Mapping,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Records that `url`'s client was used at `now`.
    async fn touch(&self, url: &str, now: i64) -> Result<(), StoreError>;

    /// Removes the mapping of `url` if it is still `seen` (its client and
    /// freshness): a reservation given up or gone stale, a client removed;
    /// whether it did.
    async fn remove_mapping(&self, url: &str, seen: &Mapping) -> Result<bool, StoreError>;

    /// Documents (URL and client) whose client was last used before
    /// `before`, oldest first, at most `limit`.
    async fn unused_since(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;
}
