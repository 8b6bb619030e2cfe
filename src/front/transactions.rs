//! The transaction that ties `/authorize`, `/callback` and `/token`
//! together, the secrets that name it, and the store port that keeps it
//! for every instance.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::domain::SecretHash;
use crate::store::StoreError;
use crate::store::sealing::Sealer;

pub use crate::domain::secret::FrontSecret;

impl FrontSecret {
    /// Seals `plain` under a key derived from this secret, so that what the
    /// store holds opens only for whoever presents the secret again.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer()?.seal(plain, SEAL_CONTEXT).map_err(sealing)
    }

    /// Opens what [`FrontSecret::seal`] sealed.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer()?.open(sealed, SEAL_CONTEXT).map_err(sealing)
    }

    fn sealer(&self) -> Result<Sealer, StoreError> {
        let key = Sha256::new()
            .chain_update(SEAL_CONTEXT.as_bytes())
            .chain_update([0])
            .chain_update(self.expose().as_bytes())
            .finalize();
        Sealer::from_base64(&URL_SAFE_NO_PAD.encode(key)).map_err(sealing)
    }
}

/// Binds sealed values, and the key derivation, to this use.
const SEAL_CONTEXT: &str = "dcr-gateway front code";

fn sealing(reason: impl ToString) -> StoreError {
    StoreError::Sealing {
        client_id: "(front transaction)".into(),
        reason: reason.to_string(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_code() {
        let code = FrontSecret::generate();
        let sealed = code.seal(b"provider code").unwrap();
        assert_eq!(code.open(&sealed).unwrap(), b"provider code");
        assert!(FrontSecret::generate().open(&sealed).is_err());
        assert_eq!(format!("{code:?}"), "[redacted]");
    }
}
