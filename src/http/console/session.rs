//! Console sessions: after an operator signs in with an operator token, a
//! cookie holds the session sealed under the store key (the token's id,
//! when the session ends, and a random value its forms' CSRF tokens are
//! derived from). The cookie is `HttpOnly` and `SameSite=Strict`, so no
//! other site's page sends it; on an `https` gateway it is a `__Host-`
//! cookie (`Secure`, no `Domain`, `Path=/`). Every request reads the token
//! again: revoking it ends its sessions at once.
//!
//! Every form post must also come from the gateway's own origin (`Origin`,
//! or `Sec-Fetch-Site: same-origin` where a browser sends no `Origin`) and,
//! once signed in, carry the session's CSRF token.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::domain::secret::random_base64url;
use crate::front::browser::cookie;
use crate::store::sealing::Sealer;

/// What the sealing of a session is bound to.
const SEALING_CONTEXT: &str = "dcr-gateway console session";

/// What a session's CSRF key is derived for.
const CSRF_PURPOSE: &str = "dcr-gateway console csrf";

/// A signed-in operator's session, as sealed in the cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The operator token it was opened with, by id.
    pub token_id: String,
    /// When it ends (seconds since the epoch).
    pub expires_at: i64,
    /// Random; the session's CSRF token is derived from it.
    nonce: String,
}

impl Session {
    /// A new session of `token_id` lasting until `expires_at`.
    #[must_use]
    pub fn new(token_id: String, expires_at: i64) -> Self {
        Self {
            token_id,
            expires_at,
            nonce: random_base64url(16),
        }
    }
}

/// The console's cookie, and the key of its CSRF tokens.
pub struct Sessions {
    sealer: Sealer,
    csrf_key: hmac::Key,
    name: &'static str,
    secure: bool,
    /// How long a session lasts, in seconds.
    lifetime: u64,
}

impl Sessions {
    /// Sessions sealed by `sealer`, for a gateway at `public_url`, lasting
    /// `lifetime` seconds.
    #[must_use]
    pub fn new(sealer: Sealer, public_url: &str, lifetime: u64) -> Self {
        let secure = public_url.starts_with("https://");
        Self {
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, &sealer.derived_key(CSRF_PURPOSE)),
            sealer,
            name: if secure {
                "__Host-dcr-console"
            } else {
                "dcr-console"
            },
            secure,
            lifetime,
        }
    }

    /// How long a session lasts, in seconds.
    #[must_use]
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// The session the request's cookie holds, if it opens (it may have
    /// ended: the caller checks `expires_at`).
    #[must_use]
    pub fn presented(&self, headers: &HeaderMap) -> Option<Session> {
        let sealed = URL_SAFE_NO_PAD.decode(cookie(headers, self.name)?).ok()?;
        let plain = self.sealer.open(&sealed, SEALING_CONTEXT).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// The `Set-Cookie` value that gives the browser `session`, kept by
    /// the browser until the session ends (it is `now`); `None` if it could
    /// not be sealed.
    #[must_use]
    pub fn set(&self, session: &Session, now: i64) -> Option<String> {
        let plain = serde_json::to_vec(session).ok()?;
        let sealed = self.sealer.seal(&plain, SEALING_CONTEXT).ok()?;
        let max_age = u64::try_from(session.expires_at.saturating_sub(now)).unwrap_or(0);
        Some(self.cookie(&URL_SAFE_NO_PAD.encode(sealed), max_age))
    }

    /// The `Set-Cookie` value that takes the session away.
    #[must_use]
    pub fn clear(&self) -> String {
        self.cookie("", 0)
    }

    /// The CSRF token of `session`'s forms.
    #[must_use]
    pub fn csrf_token(&self, session: &Session) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf_key, session.nonce.as_bytes()))
    }

    /// Whether `presented` is `session`'s CSRF token, in constant time.
    #[must_use]
    pub fn csrf_matches(&self, session: &Session, presented: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(presented)
            .is_ok_and(|tag| hmac::verify(&self.csrf_key, session.nonce.as_bytes(), &tag).is_ok())
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
            self.name
        )
    }
}

/// Whether a form post came from the gateway's own pages: its `Origin` is
/// `origin`, or, without one, the browser says it is same-origin.
#[must_use]
pub fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    match headers.get(header::ORIGIN) {
        Some(sent) => sent.as_bytes() == origin.as_bytes(),
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() == b"same-origin"),
    }
}
