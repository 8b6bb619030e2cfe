//! The gateway's own access tokens (issue 30, `[front] tokens = "gateway"`,
//! the default in broker mode): RFC 9068 JWTs (`typ: at+jwt`) the gateway signs
//! with its own key ([`keys`]), made out to the one resource the app asked
//! for (RFC 8707: `aud`), so that an MCP server checks one issuer, one key
//! set and its own audience, whatever the provider. The provider's tokens
//! stay with the gateway: its access and ID tokens are not handed on (an
//! app that asked for `openid` gets the gateway's own ID token, with its
//! own `nonce`), and its refresh token stays sealed in the refresh family.
//!
//! The `sub` is the provider's, or with `[front] subject_type = "pairwise"`
//! one per resource (OpenID Connect Core §8.1, with the resource as the
//! sector): two MCP servers cannot tell that their users are the same. The
//! provider's user claims the operator lists (`[front] claims`) are copied
//! into both tokens, and answered at `/userinfo`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};

use super::broker::id_token::Identity;
use super::error::FrontError;
use super::transactions::FrontSecret;
use crate::store::front::SigningKeyStore;
use crate::store::sealing::Sealer;

pub mod keys;

use keys::{KeyPolicy, KeyRing};

/// Who issues the access tokens apps get: `[front] tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenIssuer {
    /// The provider: its tokens are passed on (the default).
    Provider,
    /// The gateway: its own JWTs.
    Gateway,
}

/// Whose `sub` the gateway's tokens carry: `[front] subject_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectType {
    /// The provider's `sub` (the default).
    Public,
    /// One per resource, derived from the provider's `sub` and the store
    /// key.
    Pairwise,
}

/// Claims the gateway sets itself, which `[front] claims` cannot copy
/// from the provider.
pub const OWN_CLAIMS: [&str; 17] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "sid",
    "nonce",
    "auth_time",
    "acr",
    "azp",
    "at_hash",
    "c_hash",
    "cnf",
];

/// What an access token says.
#[derive(Debug)]
pub struct Grant<'a> {
    /// The user (the provider's `sub`; pairwise tokens carry one derived
    /// from it).
    pub subject: &'a str,
    /// The app's client id.
    pub client_id: &'a str,
    /// The resource it is for: its audience.
    pub resource: &'a str,
    /// The scope granted.
    pub scope: Option<&'a str>,
    /// The refresh family the grant lives in, if any (`sid`): its
    /// revocation makes the access token inactive at introspection.
    pub session: Option<&'a str>,
    /// The provider's user claims copied into the token.
    pub claims: &'a Map<String, Value>,
}

/// An RFC 9068 access token's claims.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(flatten)]
    copied: &'a Map<String, Value>,
}

/// The gateway's token issuer.
pub struct GatewayTokens {
    issuer: String,
    lifetime: Duration,
    keys: KeyRing,
    /// The key of pairwise subjects, with `subject_type = "pairwise"`.
    pairwise: Option<ring::hmac::Key>,
}

/// What the pairwise subjects' key is derived for.
const PAIRWISE_PURPOSE: &str = "dcr-gateway pairwise subject";

impl GatewayTokens {
    /// Tokens of the gateway at `issuer`, living `policy.lifetime`,
    /// naming users as `subjects` says, signed by the keys in `store`,
    /// made and replaced as `policy` says.
    #[must_use]
    pub fn new(
        issuer: &str,
        policy: KeyPolicy,
        subjects: SubjectType,
        store: std::sync::Arc<dyn SigningKeyStore>,
        sealer: Sealer,
    ) -> Self {
        let pairwise = (subjects == SubjectType::Pairwise).then(|| {
            ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                &sealer.derived_key(PAIRWISE_PURPOSE),
            )
        });
        Self {
            issuer: issuer.to_owned(),
            lifetime: policy.lifetime,
            keys: KeyRing::new(store, sealer, policy),
            pairwise,
        }
    }

    /// The `sub` the tokens for `resource` carry for the provider's user
    /// `subject`: the same, or pairwise, a digest of both under a key of
    /// the store's.
    #[must_use]
    pub fn subject(&self, subject: &str, resource: &str) -> String {
        match &self.pairwise {
            None => subject.to_owned(),
            Some(key) => {
                let sector = format!("{resource}\n{subject}");
                URL_SAFE_NO_PAD.encode(&ring::hmac::sign(key, sector.as_bytes()).as_ref()[..24])
            }
        }
    }

    /// The signing keys.
    #[must_use]
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// How long an access token lives.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The published key set at `now`.
    pub async fn jwks(&self, now: i64) -> Result<Value, FrontError> {
        Ok(self.keys.loaded(now).await?.published.clone())
    }

    /// The algorithms the published keys sign with at `now`, the signing
    /// key's first: what discovery announces.
    pub async fn algorithms(&self, now: i64) -> Result<Vec<&'static str>, FrontError> {
        Ok(self.keys.loaded(now).await?.algorithms())
    }

    /// An access token for `grant` at `now`.
    pub async fn access_token(&self, grant: &Grant<'_>, now: i64) -> Result<String, FrontError> {
        let loaded = self.keys.loaded(now).await?;
        let subject = self.subject(grant.subject, grant.resource);
        let claims = Claims {
            iss: &self.issuer,
            sub: &subject,
            aud: grant.resource,
            client_id: grant.client_id,
            scope: grant.scope,
            sid: grant.session,
            iat: now,
            exp: now.saturating_add(crate::clock::seconds(self.lifetime)),
            jti: FrontSecret::generate().expose().to_owned(),
            copied: grant.claims,
        };
        loaded
            .sign(Some("at+jwt"), &claims)
            .map_err(|e| FrontError::internal(&format!("signing an access token: {e}")))
    }

    /// The gateway's own ID token for the grant (OpenID Connect Core §2:
    /// its client is the audience) of who `identity` says signed in at the
    /// provider (whose ID token the gateway checked), with the app's
    /// `nonce`.
    pub async fn id_token(
        &self,
        grant: &Grant<'_>,
        identity: &Identity,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<String, FrontError> {
        let loaded = self.keys.loaded(now).await?;
        let mut claims = Value::Object(grant.claims.clone());
        let own = serde_json::json!({
            "iss": self.issuer,
            "sub": self.subject(grant.subject, grant.resource),
            "aud": grant.client_id,
            "iat": now,
            "exp": now.saturating_add(crate::clock::seconds(self.lifetime)),
        });
        if let (Value::Object(claims), Value::Object(own)) = (&mut claims, own) {
            claims.extend(own);
        }
        let extra = [
            ("nonce", nonce.map(Value::from)),
            ("auth_time", identity.auth_time.map(Value::from)),
            ("acr", identity.acr.clone().map(Value::from)),
        ];
        for (name, value) in extra {
            if let Some(value) = value {
                claims[name] = value;
            }
        }
        loaded
            .sign(None, &claims)
            .map_err(|e| FrontError::internal(&format!("signing an ID token: {e}")))
    }

    /// The claims of `token` if it is an access token of the gateway's,
    /// signed by a published key with that key's one algorithm (whatever
    /// else its header says is refused: `none`, HMAC, another algorithm),
    /// made out to `audience` (any, if `None`) and live at `now`; `None`
    /// for anything else.
    pub async fn verified(&self, token: &str, audience: Option<&str>, now: i64) -> Option<Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some("at+jwt") {
            return None;
        }
        let loaded = self.keys.loaded(now).await.ok()?;
        let (algorithm, key) = loaded.verifying_key(header.kid.as_deref()?)?;
        if header.alg != algorithm {
            return None;
        }
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 0;
        // Checked against the gateway's clock, not the library's.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(token, key, &validation)
            .ok()?
            .claims;
        let exp = claims.get("exp").and_then(Value::as_i64)?;
        (exp > now).then_some(claims)
    }
}
