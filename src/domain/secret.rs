//! Secrets the gateway hands out: generated from 256 random bits, stored only as
//! a SHA-256 digest, compared in constant time, and never printed.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Number of random bytes in every generated secret (256 bits).
const SECRET_BYTES: usize = 32;

/// Returns `n` random bytes from the thread-local CSPRNG, base64url without padding.
pub(crate) fn random_base64url(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// Generates a fresh secret of 256 random bits, base64url encoded.
            #[must_use]
            pub fn generate() -> Self {
                Self(random_base64url(SECRET_BYTES))
            }

            /// Wraps a value presented by a caller, for hashing or comparison.
            #[must_use]
            pub fn presented(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The clear value, for the one response that hands it out.
            #[must_use]
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// The digest that is stored in place of the secret.
            #[must_use]
            pub fn hash(&self) -> SecretHash {
                SecretHash::of(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret_type!(
    /// The bearer token that opens a client's RFC 7592 management endpoint.
    RegistrationAccessToken
);
secret_type!(
    /// A confidential client's secret for the token endpoint.
    ClientSecret
);
secret_type!(
    /// An initial access token (RFC 7591 §3): what lets an app register when
    /// registration is protected.
    InitialAccessToken
);
secret_type!(
    /// An operator token: what signs an operator in to the console.
    OperatorToken
);
secret_type!(
    /// A one-time value of the authorization front: its `state` at the
    /// provider, or a gateway code.
    FrontSecret
);

/// SHA-256 digest of a secret: what the store keeps instead of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes a clear value.
    #[must_use]
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Rebuilds a digest read from storage; `None` when the length is wrong.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw digest, for storage.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `presented` hashes to this digest, compared in constant time.
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        Self::of(presented).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_256_bit_base64url_and_distinct() {
        let a = ClientSecret::generate();
        let b = ClientSecret::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let token = RegistrationAccessToken::presented("super-secret-value");
        assert_eq!(format!("{token:?}"), "[redacted]");
        assert!(!format!("{:?}", token.hash()).contains("super"));
    }

    #[test]
    fn hash_matches_only_its_own_secret() {
        let secret = ClientSecret::generate();
        let hash = secret.hash();
        assert!(hash.matches(secret.expose()));
        assert!(!hash.matches("something else"));
        assert_eq!(SecretHash::from_bytes(hash.as_bytes()), Some(hash));
        assert_eq!(SecretHash::from_bytes(&[1, 2, 3]), None);
    }
}
