//! `POST /revoke` (RFC 7009): the client authenticates as at `/token` and
//! names a token. A refresh token of the gateway's (broker mode, or the
//! gateway's own tokens) revokes its family, and the provider's refresh
//! token with it; so does an access token of the gateway's, whose grant
//! ends. Any other token is sent on to the provider's revocation endpoint,
//! where it has one (as the operator's client in broker mode, else as the
//! app's). The answer is `200` whether or not the token was known (RFC
//! 7009 §2.2).

use std::net::IpAddr;

use super::error::FrontError;
use super::provider_call::Endpoint;
use super::{Front, Params};
use crate::audit::{self, AuditEvent};
use crate::domain::SecretHash;
use crate::store::front::PresentedRefresh;

impl Front {
    /// Handles `/revoke` for the caller at `ip`, with the `Authorization`
    /// header, if any, and the form body.
    pub async fn revoke(
        &self,
        ip: IpAddr,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<(), FrontError> {
        Self::limit(self.token_limit.as_ref(), "token", ip)?;
        let params = Params::parse(body)?;
        let (app_id, auth) = self.authenticate(authorization, &params).await?;
        let token = params.require("token")?;
        let hint = params.get("token_type_hint").unwrap_or("access_token");
        if self.broker.is_none() && self.tokens.is_none() {
            // The provider's tokens: its revocation endpoint revokes them.
            let provider = self.endpoints().await?;
            if let Some(endpoint) = &provider.revocation_endpoint {
                let form = vec![
                    ("token", token.to_owned()),
                    ("token_type_hint", hint.to_owned()),
                ];
                self.call_provider(Endpoint::Revocation, endpoint, &auth, form)
                    .await?;
            }
            return Ok(());
        }
        let family = match self
            .refresh_tokens
            .presented(&SecretHash::of(token), self.now())
            .await?
        {
            PresentedRefresh::Live(family) | PresentedRefresh::Reused(family) => {
                Some((family.client_id, family.id))
            }
            PresentedRefresh::Unknown if hint == "refresh_token" => None,
            PresentedRefresh::Unknown => self.access_token_grant(token).await,
        };
        match family {
            Some((client_id, family)) if client_id == app_id => {
                self.revoke_family(&family, &auth).await;
                audit::record(&AuditEvent {
                    action: "revoke",
                    outcome: "success",
                    client_id: Some(&app_id),
                    ip: Some(ip),
                    ..AuditEvent::default()
                });
            }
            // Another client's: nothing is done, and nothing is told.
            Some(_) => {}
            None => {
                if let Some(broker) = &self.broker
                    && hint != "refresh_token"
                {
                    broker.revoke(token, "access_token").await;
                }
            }
        }
        Ok(())
    }

    /// The client and refresh family of `token` if it is an access token
    /// of the gateway's (any audience, live): revoking it ends its grant.
    async fn access_token_grant(&self, token: &str) -> Option<(String, String)> {
        let claims = self
            .tokens
            .as_ref()?
            .verified(token, None, self.now())
            .await?;
        let text = |name: &str| claims.get(name)?.as_str().map(str::to_owned);
        Some((text("client_id")?, text("sid")?))
    }
}
