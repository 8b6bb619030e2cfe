//! `/userinfo` (OpenID Connect Core §5.3) with the gateway's own tokens:
//! the app presents an access token of the gateway's (`Authorization:
//! Bearer`, RFC 6750 §2.1) granted with `openid`, and learns the user's
//! `sub` (the token's, so pairwise where the tokens are) and the provider
//! claims the operator copies (`[front] claims`). A token that is not one,
//! expired, or of a revoked grant is `invalid_token`; one without `openid`
//! is `insufficient_scope`.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::Front;
use super::error::{Code, FrontError};

impl Front {
    /// Handles `/userinfo` for the caller at `ip`, with the
    /// `Authorization` header, if any.
    pub async fn userinfo(
        &self,
        ip: IpAddr,
        authorization: Option<&str>,
    ) -> Result<Value, FrontError> {
        Self::limit(self.token_limit.as_ref(), "token", ip)?;
        let invalid = || {
            FrontError::new(
                Code::InvalidToken,
                "the access token is not the gateway's, expired or revoked",
            )
        };
        let token = authorization.and_then(bearer_token).ok_or_else(|| {
            FrontError::new(Code::MissingToken, "a Bearer access token is required")
        })?;
        let tokens = self.tokens.as_ref().ok_or_else(invalid)?;
        let now = self.now();
        let claims = tokens
            .verified(token, None, now)
            .await
            .ok_or_else(invalid)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if let Some(session) = text("sid")
            && !self.refresh_tokens.family_live(session, now).await?
        {
            return Err(invalid());
        }
        let openid = text("scope").is_some_and(|scope| scope.split(' ').any(|s| s == "openid"));
        if !openid {
            return Err(FrontError::new(
                Code::InsufficientScope,
                "the access token was not granted the openid scope",
            ));
        }
        let mut answer = Map::new();
        for name in std::iter::once("sub").chain(self.settings.claims.iter().map(String::as_str)) {
            if let Some(value) = claims.get(name) {
                answer.insert(name.to_owned(), value.clone());
            }
        }
        Ok(Value::Object(answer))
    }
}

/// The token of an `Authorization: Bearer` header (the scheme in any case).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_in_any_case_of_the_scheme() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
