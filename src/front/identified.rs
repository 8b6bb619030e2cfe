//! Who signed in, when the gateway issues its own tokens outside broker
//! mode: the provider's token answer for the app's own client there must
//! carry an ID token (the gateway asks for `openid` on the app's behalf),
//! which is checked against the provider's discovery document and keys
//! (signature, issuer, the app's client at the provider as audience,
//! expiry) before the gateway puts its `sub` into tokens of its own.

use super::Front;
use super::broker::id_token::IdTokenCheck;
use super::broker::{SignedIn, UpstreamTokens};
use super::error::{Code, FrontError};
use super::provider_call::ProviderAnswer;

impl Front {
    /// The sign-in the provider's successful `answer` stands for, to the
    /// client `provider_id` (its id at the provider). The provider put the
    /// app's own `nonce` into its ID token; the gateway's ID token carries
    /// the same, for the app to check.
    pub(super) async fn identified(
        &self,
        provider_id: &str,
        answer: &ProviderAnswer,
    ) -> Result<SignedIn, FrontError> {
        let tokens: UpstreamTokens = serde_json::from_slice(&answer.body).map_err(|_| {
            FrontError::new(
                Code::ServerError,
                "the provider's token answer is not a JSON object",
            )
        })?;
        let no_identity = |what: &str| {
            FrontError::new(
                Code::ServerError,
                format!("the gateway's tokens need the user's identity, but {what}"),
            )
        };
        let id_token = tokens
            .text("id_token")
            .ok_or_else(|| no_identity("the provider sent no ID token"))?;
        let provider = self.endpoints().await?;
        let jwks_uri = provider
            .jwks_uri
            .as_deref()
            .ok_or_else(|| no_identity("the provider's discovery document has no jwks_uri"))?;
        let check = IdTokenCheck {
            issuer: &provider.issuer,
            issuer_aliases: &[],
            audience: provider_id,
            nonce: None,
            allowed_tenants: &[],
            now: self.now(),
        };
        let identity = self.provider_keys.check(jwks_uri, id_token, &check).await?;
        let app_nonce = identity
            .claims
            .get("nonce")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Ok(SignedIn {
            tokens,
            identity,
            app_nonce,
        })
    }
}

/// `scope` with `openid` in it: the gateway's own tokens name the user,
/// whom the provider's ID token names.
#[must_use]
pub fn with_openid(scope: Option<&str>) -> String {
    match scope {
        Some(scope) if scope.split(' ').any(|token| token == "openid") => scope.to_owned(),
        Some(scope) => format!("openid {scope}"),
        None => "openid".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openid_is_added_once() {
        assert_eq!(with_openid(None), "openid");
        assert_eq!(with_openid(Some("mcp")), "openid mcp");
        assert_eq!(with_openid(Some("mcp openid")), "mcp openid");
        assert_eq!(with_openid(Some("openidx")), "openid openidx");
    }
}
