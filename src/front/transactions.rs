//! The secrets of the authorization front, and how a login in progress
//! travels.
//!
//! A login in progress is stored nowhere: from `/authorize` to the
//! provider's answer at `/callback` it travels sealed in the state the
//! gateway sends the provider (and, for a client that gets the consent
//! page, first in the page's form token), under `store.encryption_key`, so
//! that every instance can open it. `/authorize` therefore writes nothing,
//! however many logins are started and abandoned; the store keeps a login
//! only once the provider answered it ([`crate::store::front`]).
//!
//! The gateway's codes are [`FrontSecret`]s too; the provider's code (then
//! the tokens it was exchanged for) is sealed under a key derived from the
//! gateway code, which is never stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::FrontError;
use crate::domain::SecretHash;
use crate::store::StoreError;
use crate::store::front::Transaction;
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

/// Which leg of a login a sealed value is for: one is never taken for the
/// other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The state sent to the provider, back at `/callback`.
    Provider,
    /// The consent page's form token, back at `/consent`.
    Consent,
}

impl Leg {
    fn context(self) -> &'static str {
        match self {
            Self::Provider => "dcr-gateway front state",
            Self::Consent => "dcr-gateway front consent",
        }
    }
}

/// A login in progress: the transaction, and, when it goes through the
/// consent page, the digest of the browser cookie it is bound to and (until
/// the user agrees) the provider URL to send them to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// What `/authorize` learnt.
    pub transaction: Transaction,
    /// The browser it is bound to, if any.
    pub browser: Option<SecretHash>,
    /// The provider's authorization URL without its `state`, carried by
    /// the consent page's form token.
    pub provider_url: Option<String>,
    /// In broker mode, the gateway's own PKCE verifier and nonce for the
    /// provider.
    pub upstream: Option<UpstreamLeg>,
    /// In broker mode, the app's own `nonce`, for the gateway's ID token.
    pub app_nonce: Option<String>,
}

/// The gateway's own secrets for a sign-in at the provider (broker mode):
/// they travel sealed with the login. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamLeg {
    /// The PKCE verifier whose challenge the provider was sent.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
}

impl std::fmt::Debug for UpstreamLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl UpstreamLeg {
    /// A fresh verifier and nonce.
    #[must_use]
    pub fn generate() -> Self {
        Self {
            verifier: FrontSecret::generate().expose().to_owned(),
            nonce: FrontSecret::generate().expose().to_owned(),
        }
    }
}

/// A [`Login`] as it is sealed, with short member names: it travels in a
/// URL.
#[derive(Serialize, Deserialize)]
struct Carried {
    c: String,
    r: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    p: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rs: Option<String>,
    e: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    an: Option<String>,
}

/// Seals logins in progress into the values that carry them, and opens
/// them again on any instance.
#[derive(Debug, Clone)]
pub struct Logins {
    sealer: Sealer,
}

impl Logins {
    /// Logins sealed under `sealer` (the store's key).
    #[must_use]
    pub fn new(sealer: Sealer) -> Self {
        Self { sealer }
    }

    /// The value that carries `login` on `leg`.
    pub fn seal(&self, leg: Leg, login: &Login) -> Result<String, FrontError> {
        let t = &login.transaction;
        let carried = Carried {
            c: t.client_id.clone(),
            r: t.redirect_uri.clone(),
            s: t.app_state.clone(),
            p: t.code_challenge.clone(),
            sc: t.scope.clone(),
            rs: t.resource.clone(),
            e: t.expires_at,
            b: login
                .browser
                .as_ref()
                .map(|b| URL_SAFE_NO_PAD.encode(b.as_bytes())),
            u: login.provider_url.clone(),
            v: login.upstream.as_ref().map(|leg| leg.verifier.clone()),
            n: login.upstream.as_ref().map(|leg| leg.nonce.clone()),
            an: login.app_nonce.clone(),
        };
        let plain =
            serde_json::to_vec(&carried).map_err(|e| FrontError::internal(&e.to_string()))?;
        let sealed = self
            .sealer
            .seal(&plain, leg.context())
            .map_err(|e| FrontError::internal(&e.to_string()))?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The login `text` carries on `leg`, if it is one the gateway sealed
    /// for that leg and it has not expired at `now`.
    pub fn open(&self, leg: Leg, text: &str, now: i64) -> Result<Login, FrontError> {
        let unknown = || {
            FrontError::invalid_request(
                "this authorization is unknown, already completed or expired; start again",
            )
        };
        let sealed = URL_SAFE_NO_PAD.decode(text).map_err(|_| unknown())?;
        let plain = self
            .sealer
            .open(&sealed, leg.context())
            .map_err(|_| unknown())?;
        let carried: Carried = serde_json::from_slice(&plain).map_err(|_| unknown())?;
        if carried.e <= now {
            return Err(unknown());
        }
        let browser = match carried.b {
            Some(b) => Some(
                URL_SAFE_NO_PAD
                    .decode(b)
                    .ok()
                    .and_then(|bytes| SecretHash::from_bytes(&bytes))
                    .ok_or_else(unknown)?,
            ),
            None => None,
        };
        Ok(Login {
            transaction: Transaction {
                client_id: carried.c,
                redirect_uri: carried.r,
                app_state: carried.s,
                code_challenge: carried.p,
                scope: carried.sc,
                resource: carried.rs,
                expires_at: carried.e,
            },
            browser,
            provider_url: carried.u,
            upstream: match (carried.v, carried.n) {
                (Some(verifier), Some(nonce)) => Some(UpstreamLeg { verifier, nonce }),
                _ => None,
            },
            app_nonce: carried.an,
        })
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

    fn login() -> Login {
        Login {
            transaction: Transaction {
                client_id: "client".into(),
                redirect_uri: "http://127.0.0.1:5000/cb".into(),
                app_state: Some("app".into()),
                code_challenge: "c".repeat(43),
                scope: Some("openid".into()),
                resource: None,
                expires_at: 1_000,
            },
            browser: Some(FrontSecret::generate().hash()),
            provider_url: None,
            upstream: Some(UpstreamLeg::generate()),
            app_nonce: Some("app".into()),
        }
    }

    #[test]
    fn a_login_opens_on_its_own_leg_until_it_expires() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
        let logins = Logins::new(Sealer::from_base64(key).unwrap());
        let login = login();
        let state = logins.seal(Leg::Provider, &login).unwrap();
        assert!(state.len() < 600, "{}", state.len());
        assert!(!state.contains("127.0.0.1"), "sealed, not signed");
        assert_eq!(logins.open(Leg::Provider, &state, 999).unwrap(), login);
        assert!(
            logins.open(Leg::Provider, &state, 1_000).is_err(),
            "expired"
        );
        assert!(
            logins.open(Leg::Consent, &state, 999).is_err(),
            "another leg"
        );
        let mut forged = state.clone().into_bytes();
        forged[40] ^= 1;
        let forged = String::from_utf8(forged).unwrap();
        assert!(logins.open(Leg::Provider, &forged, 999).is_err());
        let other = Logins::new(
            Sealer::from_base64("YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=").unwrap(),
        );
        assert!(
            other.open(Leg::Provider, &state, 999).is_err(),
            "another key"
        );
    }
}
