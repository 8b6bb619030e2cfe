//! The secrets that name the transaction tying `/authorize`, `/callback`
//! and `/token` together, and how the provider's code is sealed under them.
//! The transaction itself, and the store port that keeps it for every
//! instance, are in [`crate::store::front`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

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
