//! Sealing of provider state at rest: XChaCha20-Poly1305 with a key from the
//! configuration, a fresh random nonce per write, bound to the client id.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Nonce length of XChaCha20-Poly1305.
const NONCE_BYTES: usize = 24;

/// Encrypts and decrypts small values with one 256-bit key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// The same key, for deriving keys of other uses from it.
    deriving: ring::hmac::Key,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

/// Why a key could not be read or a value not opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key is not 32 bytes of base64.
    #[error("the encryption key must be 32 bytes, base64-encoded")]
    BadKey,
    /// The sealed value is damaged, or was sealed with another key or for another client.
    #[error("sealed value cannot be opened (wrong key or damaged)")]
    Unreadable,
}

impl Sealer {
    /// Builds a sealer from a base64 (standard or URL-safe) 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, SealError> {
        let key = key.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(key.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(key))
            .map_err(|_| SealError::BadKey)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        let deriving = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes);
        Ok(Self { cipher, deriving })
    }

    /// A 256-bit key for `purpose`, derived from the store key (HMAC-SHA256
    /// of the purpose): the same on every instance, and unrelated to the
    /// sealing key or to another purpose's.
    #[must_use]
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.deriving, purpose.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    /// Encrypts `plain`, bound to `context` (the client id): nonce ‖ ciphertext.
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unreadable)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Decrypts a value made by [`Sealer::seal`] with the same context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealError::Unreadable);
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Unreadable)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

    #[test]
    fn round_trips_and_binds_the_context() {
        let sealer = Sealer::from_base64(KEY).unwrap();
        let sealed = sealer.seal(b"upstream-token", "client-a").unwrap();
        assert!(!sealed.windows(14).any(|w| w == b"upstream-token"));
        assert_eq!(sealer.open(&sealed, "client-a").unwrap(), b"upstream-token");
        assert!(sealer.open(&sealed, "client-b").is_err());
        let other = Sealer::from_base64("YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=").unwrap();
        assert!(other.open(&sealed, "client-a").is_err());
        assert!(Sealer::from_base64("too-short").is_err());
    }
}
