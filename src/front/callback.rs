//! `GET /callback`: the provider's authorization response. The front opens
//! the login its state carries, checks the provider's `iss` (RFC 9207,
//! mix-up defence) and the browser the login is bound to, records the
//! answer once (a state answered before is refused), and sends the app a
//! gateway code (or the provider's error) with its own `state` and the
//! gateway as `iss`. Anything it cannot tie to a login is a page.

use super::authorize::AppRedirect;
use super::error::{Code, FrontError};
use super::transactions::{FrontSecret, Leg, Login};
use super::{Front, Params, callback_uri};
use crate::audit::{self, AuditEvent};
use crate::clock::seconds;
use crate::domain::SecretHash;
use crate::store::front::{Answered, NewCode, Transaction};

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
    /// failure to show as a page. The state must be one the gateway sealed
    /// and not answered before; a login that went through the consent page
    /// completes only in the browser that consented.
    pub async fn callback(
        &self,
        query: &[u8],
        browser: Option<FrontSecret>,
    ) -> Result<String, FrontError> {
        let params = Params::parse(query)?;
        let state = params.require("state")?;
        let now = self.now();
        let login = self.logins.open(Leg::Provider, state, now)?;
        let provider = self.endpoints().await?;
        let state_hash = SecretHash::of(state);
        let answered = |code| Answered {
            state: &state_hash,
            transaction: &login.transaction,
            code,
            keep_until: login.transaction.expires_at,
        };
        let from_provider = match params.get("iss") {
            Some(iss) => iss == provider.issuer,
            None => !provider.sends_iss,
        };
        if !from_provider {
            // The login cannot complete any more: a mixed-up response may
            // have been built to be replayed with the right `iss`.
            self.transactions.answer(&answered(None)).await?;
            return Err(FrontError::invalid_request(
                "the authorization response does not come from the provider (wrong or missing iss)",
            ));
        }
        if let Some(bound) = &login.browser {
            if browser.map(|browser| browser.hash()).as_ref() != Some(bound) {
                self.transactions.answer(&answered(None)).await?;
                return Err(FrontError::invalid_request(
                    "this sign-in was started in another browser; nothing was sent back",
                ));
            }
        }
        if !self.live.admit(self.settings.max_transactions) {
            return Err(FrontError::busy(
                "too many sign-ins are being completed; start again in a moment",
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
        let back = self.back_to(&login.transaction)?;
        let payload = match provider_code {
            Ok(provider_code) => self.code_payload(provider_code, &login).await,
            Err(error) => Err(error),
        };
        let (recorded, location) = match payload {
            Ok(payload) => {
                let code = FrontSecret::generate();
                let sealed = code.seal(&payload)?;
                let expires_at = now
                    .saturating_add(seconds(self.settings.code_ttl))
                    .min(login.transaction.expires_at);
                let transaction = Transaction {
                    expires_at,
                    ..login.transaction.clone()
                };
                let issued = Answered {
                    transaction: &transaction,
                    code: Some(NewCode {
                        hash: &code.hash(),
                        sealed: &sealed,
                    }),
                    ..answered(None)
                };
                (self.transactions.answer(&issued).await?, back.code(&code))
            }
            Err(error) => (
                self.transactions.answer(&answered(None)).await?,
                back.error(&error),
            ),
        };
        if !recorded {
            return Err(FrontError::invalid_request(
                "this authorization is unknown, already completed or expired; start again",
            ));
        }
        self.live.opened();
        Ok(location)
    }

    /// What the gateway's code stands for: the provider's code, or in
    /// broker mode the tokens the gateway redeemed it for, its ID token
    /// checked.
    async fn code_payload(
        &self,
        provider_code: &str,
        login: &Login,
    ) -> Result<Vec<u8>, FrontError> {
        let Some(broker) = &self.broker else {
            return Ok(provider_code.as_bytes().to_vec());
        };
        let leg = login.upstream.as_ref().ok_or_else(|| {
            FrontError::invalid_request("this sign-in was not started in broker mode; start again")
        })?;
        let exchanged = broker
            .exchange(
                provider_code,
                &leg.verifier,
                &callback_uri(&self.issuer),
                login.transaction.resource.as_deref(),
                &leg.nonce,
            )
            .await;
        let outcome = if exchanged.is_ok() {
            "success"
        } else {
            "failure"
        };
        metrics::counter!("dcr_front_upstream_logins_total", "outcome" => outcome).increment(1);
        audit::record(&AuditEvent {
            action: "upstream_login",
            outcome,
            client_id: Some(&login.transaction.client_id),
            ..AuditEvent::default()
        });
        let mut signed_in = exchanged.map_err(|error| match error.code {
            // Not an authorization response's code: the user is refused.
            Code::InvalidGrant => FrontError::new(Code::AccessDenied, error.description),
            _ => error,
        })?;
        signed_in.app_nonce.clone_from(&login.app_nonce);
        serde_json::to_vec(&signed_in).map_err(|e| FrontError::internal(&e.to_string()))
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
