//! The ports the authorization front keeps its state through, so that
//! every instance sees it: transactions and their codes, and the mapping of
//! Client ID Metadata Document URLs to clients. The SQL store implements
//! them (`sql/front.rs`); the front ([`crate::front`]) uses them.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::SecretHash;

/// What `/authorize` learnt and `/token` checks. Until the provider
/// answers it travels sealed in the provider-side `state`
/// ([`crate::front::transactions`]); from `/callback` on the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// When the login expires if the provider has not answered (Unix
    /// seconds); once it has, when the gateway's code expires.
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
}

/// The provider's answer to one login, to record at `/callback`.
#[derive(Debug)]
pub struct Answered<'a> {
    /// The digest of the provider-side `state` it answered: a login is
    /// answered once.
    pub state: &'a SecretHash,
    /// The login, with the code's expiry as its `expires_at`.
    pub transaction: &'a Transaction,
    /// The gateway's code, or `None` when the login failed.
    pub code: Option<NewCode<'a>>,
    /// Until when the state could still be presented: the record is kept
    /// that long, so that the state is never answered twice.
    pub keep_until: i64,
}

/// The store of answered logins and their codes, shared by all instances.
#[async_trait]
pub trait TransactionStore: Send + Sync {
    /// Records the provider's answer to a login, once: `false` when its
    /// state was answered before (a replay).
    async fn answer(&self, answered: &Answered<'_>) -> Result<bool, StoreError>;

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

    /// Removes the records kept past their time; how many remain.
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

    /// The documents whose client is registered (no reservations), most
    /// recently used first, at most `limit`, with their mappings: what the
    /// console shows of the documents held.
    async fn documents(&self, limit: u32) -> Result<Vec<(String, Mapping)>, StoreError>;

    /// Documents (URL and client) whose client was last used before
    /// `before`, oldest first, at most `limit`.
    async fn unused_since(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;
}

/// One line of the gateway's refresh tokens (broker mode): every token a
/// sign-in's first one rotates into belongs to its family, which holds the
/// provider's refresh token sealed under the store's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// The family's random id.
    pub id: String,
    /// The gateway client its tokens were issued to.
    pub client_id: String,
    /// The scope granted, as the provider wrote it.
    pub scope: Option<String>,
    /// The resource indicator bound at `/authorize`.
    pub resource: Option<String>,
    /// The user the sign-in's ID token named (`sub`): a refresh must name
    /// the same one.
    pub subject: String,
    /// The provider's refresh token, sealed under the store key.
    pub sealed_upstream: Vec<u8>,
    /// The provider's user claims the gateway's tokens copy (`[front]
    /// claims`), as the sign-in's ID token said them.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// When the family lapses unless a token of it is used (Unix seconds).
    pub expires_at: i64,
}

/// What a presented refresh token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedRefresh {
    /// The live token of a live family.
    Live(RefreshFamily),
    /// A token of a live family that was used before: a replay, so the
    /// family must be revoked.
    Reused(RefreshFamily),
    /// Unknown, expired, or of a revoked family.
    Unknown,
}

/// The gateway's refresh tokens, kept as digests, shared by all instances.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Starts `family` with its first token.
    async fn start_family(
        &self,
        family: &RefreshFamily,
        first: &SecretHash,
    ) -> Result<(), StoreError>;

    /// What the token with this digest is at `now`.
    async fn presented(&self, token: &SecretHash, now: i64)
    -> Result<PresentedRefresh, StoreError>;

    /// Uses `old` once, atomically: `new` becomes the family's live token,
    /// the family lapses at `expires_at`, and holds `sealed_upstream` when
    /// the provider rotated its own. `false` when `old` was used meanwhile
    /// or its family revoked (nothing changes then).
    async fn rotate(
        &self,
        old: &SecretHash,
        new: &SecretHash,
        sealed_upstream: Option<&[u8]>,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Whether the family `id` is live (not revoked, not lapsed) at `now`.
    async fn family_live(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// Revokes the family `id`: the provider's refresh token it held,
    /// sealed, when it was live.
    async fn revoke_family(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes the families lapsed by `now`, with their tokens.
    async fn sweep_families(&self, now: i64) -> Result<(), StoreError>;
}

/// The `jti`s of client assertions already used (RFC 7523 §3, item 7), as
/// digests, so that an assertion is accepted once across all instances.
#[async_trait]
pub trait AssertionReplays: Send + Sync {
    /// Records the assertion `jti` (a digest) as used until `keep_until`:
    /// `false` when it was used before.
    async fn first_use(&self, jti: &SecretHash, keep_until: i64) -> Result<bool, StoreError>;

    /// Forgets the assertions kept past their time.
    async fn sweep_assertions(&self, now: i64) -> Result<(), StoreError>;
}

/// One of the gateway's own signing keys (issue 30), as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Its `kid`.
    pub kid: String,
    /// Its JWS algorithm (`ES256`, `RS256` or `EdDSA`).
    pub algorithm: String,
    /// The private key, sealed under the store key: DER, PKCS#8 for
    /// `ES256` and `EdDSA`, PKCS#1 for `RS256`.
    pub sealed_private: Vec<u8>,
    /// The public key, a JWK.
    pub public_jwk: String,
    /// From when it signs (Unix seconds); it is published before.
    pub signs_from: i64,
    /// When it stops being published (its last token expired), if it was
    /// rotated out.
    pub retired_at: Option<i64>,
}

/// When [`SigningKeyStore::add_signing_key`] adds its key, judged by the
/// newest key (the latest `signs_from`) under the store's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDue<'a> {
    /// Only when there is no key yet (the first start of the first
    /// instance).
    First,
    /// Whatever the keys are (the operator's `dcr-gateway keys rotate`).
    Always,
    /// When the newest key is of another algorithm than `algorithm` (the
    /// operator changed it), or signs from `aged` or earlier (`None`: keys
    /// do not age).
    Stale {
        /// The algorithm keys should have.
        algorithm: &'a str,
        /// The newest key signing from this time or earlier is old.
        aged: Option<i64>,
    },
}

impl KeyDue<'_> {
    /// Why a key is added when `newest` is the newest key (`None`: there
    /// is none): `first`, `operator`, `algorithm` or `schedule`; `None`
    /// when no key is added (a stale key is only replaced, never the
    /// first one made).
    #[must_use]
    pub fn reason(&self, newest: Option<&StoredSigningKey>) -> Option<&'static str> {
        match (self, newest) {
            (Self::First, None) => Some("first"),
            (Self::First, Some(_)) => None,
            (Self::Always, _) => Some("operator"),
            (Self::Stale { .. }, None) => None,
            (Self::Stale { algorithm, aged }, Some(newest)) => {
                if newest.algorithm != *algorithm {
                    Some("algorithm")
                } else if aged.is_some_and(|aged| newest.signs_from <= aged) {
                    Some("schedule")
                } else {
                    None
                }
            }
        }
    }
}

/// The gateway's signing keys, shared by every instance.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every key, retired ones included.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;

    /// Adds `key` when `due` says so of the newest key, and then retires
    /// every other key at `retire_others_at` (unless retired earlier); the
    /// newest key is checked under a lock, so that instances adding keys
    /// together add one: whether `key` was added.
    async fn add_signing_key(
        &self,
        key: &StoredSigningKey,
        retire_others_at: i64,
        due: KeyDue<'_>,
    ) -> Result<bool, StoreError>;
}
