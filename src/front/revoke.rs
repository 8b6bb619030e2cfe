//! `POST /revoke` (RFC 7009): the client authenticates as at `/token` and
//! names a token. A refresh token of the gateway's (broker mode) revokes
//! its family, and the provider's refresh token with it; any other token
//! is sent on to the provider's revocation endpoint, where it has one (as
//! the operator's client in broker mode, else as the app's). The answer is
//! `200` whether or not the token was known (RFC 7009 §2.2).

use std::net::IpAddr;

use super::error::FrontError;
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
        let Some(broker) = &self.broker else {
            let provider = self.endpoints().await?;
            if let Some(endpoint) = &provider.revocation_endpoint {
                let form = vec![
                    ("token", token.to_owned()),
                    ("token_type_hint", hint.to_owned()),
                ];
                self.call_provider(endpoint, &auth, form).await?;
            }
            return Ok(());
        };
        match self
            .refresh_tokens
            .presented(&SecretHash::of(token), self.now())
            .await?
        {
            PresentedRefresh::Live(family) | PresentedRefresh::Reused(family)
                if family.client_id == app_id =>
            {
                self.revoke_family(&family.id).await;
                audit::record(&AuditEvent {
                    action: "revoke",
                    outcome: "success",
                    client_id: Some(&app_id),
                    ip: Some(ip),
                    ..AuditEvent::default()
                });
            }
            // Another client's: nothing is done, and nothing is told.
            PresentedRefresh::Live(_) | PresentedRefresh::Reused(_) => {}
            PresentedRefresh::Unknown if hint != "refresh_token" => {
                broker.revoke(token, "access_token").await;
            }
            PresentedRefresh::Unknown => {}
        }
        Ok(())
    }
}
