//! `GET /callback`: the provider's authorization response. The front checks
//! the provider's `iss` (RFC 9207, mix-up defence) and that the state names
//! a live transaction, ends that transaction once, and sends the app a
//! gateway code (or the provider's error) with its own `state` and the
//! gateway as `iss`. Anything it cannot tie to a transaction is a page.

use super::authorize::AppRedirect;
use super::error::{Code, FrontError};
use super::transactions::FrontSecret;
use super::{Front, Params};
use crate::clock::seconds;
use crate::store::front::{NewCode, Transaction};

/// Error codes of an authorization response that the app is told as the
/// provider sent them (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6,
/// RFC 8707); any other becomes `server_error`.
pub const PROVIDER_ERRORS: [&str; 13] = [
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_object",
    "invalid_target",
];

/// Longest provider `error_description` passed on.
const MAX_DESCRIPTION: usize = 300;

impl Front {
    /// Handles `/callback`, from a browser that presented the cookie
    /// `browser`, if any: the URL to send the user to (the app), or a
    /// failure to show as a page. A transaction that went through the
    /// consent page completes only in the browser that consented.
    pub async fn callback(
        &self,
        query: &[u8],
        browser: Option<FrontSecret>,
    ) -> Result<String, FrontError> {
        let params = Params::parse(query)?;
        let state = FrontSecret::presented(params.require("state")?);
        let provider = self.endpoints().await?;
        let now = self.now();
        let from_provider = match params.get("iss") {
            Some(iss) => iss == provider.issuer,
            None => !provider.sends_iss,
        };
        if !from_provider {
            // The transaction cannot complete any more: a mixed-up response
            // may have been built to be replayed with the right `iss`.
            self.transactions.complete(&state.hash(), None, now).await?;
            return Err(FrontError::invalid_request(
                "the authorization response does not come from the provider (wrong or missing iss)",
            ));
        }
        let provider_code = match (params.get("error"), params.get("code")) {
            (Some(error), _) => Err(provider_error(error, params.get("error_description"))),
            (None, Some(code)) => Ok(code),
            (None, None) => Err(FrontError::new(
                Code::ServerError,
                "the provider answered with neither a code nor an error",
            )),
        };
        match provider_code {
            Ok(provider_code) => {
                let code = FrontSecret::generate();
                let sealed = code.seal(provider_code.as_bytes())?;
                let issued = NewCode {
                    hash: &code.hash(),
                    sealed: &sealed,
                    expires_at: now.saturating_add(seconds(self.settings.code_ttl)),
                };
                let transaction = self.complete(&state, Some(issued), now, browser).await?;
                Ok(self.back_to(&transaction)?.code(&code))
            }
            Err(error) => {
                let transaction = self.complete(&state, None, now, browser).await?;
                Ok(self.back_to(&transaction)?.error(&error))
            }
        }
    }

    /// Ends the provider leg of the transaction `state` names, which must
    /// be bound to `browser` if it is bound to any.
    async fn complete(
        &self,
        state: &FrontSecret,
        code: Option<NewCode<'_>>,
        now: i64,
        browser: Option<FrontSecret>,
    ) -> Result<Transaction, FrontError> {
        let completed = self
            .transactions
            .complete(&state.hash(), code, now)
            .await?
            .ok_or_else(|| {
                FrontError::invalid_request(
                    "this authorization is unknown, already completed or expired; start again",
                )
            })?;
        if let Some(bound) = &completed.browser {
            if browser.map(|browser| browser.hash()).as_ref() != Some(bound) {
                return Err(FrontError::invalid_request(
                    "this sign-in was started in another browser; nothing was sent back",
                ));
            }
        }
        Ok(completed.transaction)
    }

    /// Where the app of `transaction` is sent back.
    pub(super) fn back_to<'a>(
        &'a self,
        transaction: &'a Transaction,
    ) -> Result<AppRedirect<'a>, FrontError> {
        AppRedirect::new(
            &transaction.redirect_uri,
            transaction.app_state.as_deref(),
            &self.issuer,
        )
    }
}

/// The provider's error as the app is told it: a known code as sent, with
/// its description when that is plain RFC 6749 text.
fn provider_error(error: &str, description: Option<&str>) -> FrontError {
    let code = PROVIDER_ERRORS
        .iter()
        .find(|known| **known == error)
        .map_or(Code::ServerError, |known| Code::Provider(known));
    let description = description
        .filter(|text| {
            text.len() <= MAX_DESCRIPTION
                && text
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        })
        .unwrap_or("the identity provider did not authorize the request");
    FrontError::new(code, description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_pass_only_when_known_and_plain() {
        let known = provider_error("access_denied", Some("the user said no"));
        assert_eq!(known.code.as_str(), "access_denied");
        assert_eq!(known.description, "the user said no");
        let unknown = provider_error("<b>", Some("\"quoted\""));
        assert_eq!(unknown.code.as_str(), "server_error");
        assert!(!unknown.description.contains('"'));
    }
}
