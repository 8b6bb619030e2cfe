//! `POST /introspect` (RFC 7662) for the gateway's own access tokens: a
//! resource server the operator listed (`[[front.resource_servers]]`)
//! authenticates with its id and secret, and learns whether a token is an
//! access token of the gateway's made out to it, live, and of a grant not
//! revoked. A registered confidential client may ask too, of the tokens
//! issued to it. Anything else (expired, revoked, another resource's or
//! client's, another issuer's, a forgery) is `{"active": false}`, told the
//! same way.

use std::net::IpAddr;

use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::error::{Code, FrontError};
use super::settings::ResourceServer;
use super::token::basic_credentials;
use super::{Front, Params};

/// Who introspects.
enum Caller<'a> {
    /// A resource server the operator listed: tokens made out to it.
    ResourceServer(&'a ResourceServer),
    /// A registered confidential client: tokens issued to it.
    Client(String),
}

impl Front {
    /// Handles `/introspect` for the caller at `ip`, with the
    /// `Authorization` header, if any, and the form body.
    pub async fn introspect(
        &self,
        ip: IpAddr,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<Value, FrontError> {
        Self::limit(self.token_limit.as_ref(), "token", ip)?;
        let params = Params::parse(body)?;
        let caller = self.introspecting(authorization, &params).await?;
        let token = params.require("token")?;
        let inactive = json!({ "active": false });
        let Some(tokens) = &self.tokens else {
            return Ok(inactive);
        };
        let now = self.now();
        let audience = match &caller {
            Caller::ResourceServer(server) => Some(server.resource.as_str()),
            Caller::Client(_) => None,
        };
        let Some(mut claims) = tokens.verified(token, audience, now).await else {
            return Ok(inactive);
        };
        if let Caller::Client(id) = &caller
            && claims.get("client_id").and_then(Value::as_str) != Some(id.as_str())
        {
            return Ok(inactive);
        }
        if let Some(session) = claims.get("sid").and_then(Value::as_str)
            && !self.refresh_tokens.family_live(session, now).await?
        {
            return Ok(inactive);
        }
        if let Some(members) = claims.as_object_mut() {
            members.insert("active".into(), true.into());
            members.insert("token_type".into(), "Bearer".into());
        }
        Ok(claims)
    }

    /// Who asks: a listed resource server, else a registered client that
    /// authenticates as at `/token` with a credential (not a public one);
    /// or `invalid_client`.
    async fn introspecting(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Caller<'_>, FrontError> {
        if let Ok(server) = self.resource_server(authorization, params) {
            return Ok(Caller::ResourceServer(server));
        }
        match self.authenticate(authorization, params).await {
            Ok((id, auth)) if !auth.is_public() => Ok(Caller::Client(id)),
            Ok(_) | Err(_) => Err(FrontError::new(
                Code::InvalidClient,
                "resource server authentication failed",
            )),
        }
    }

    /// The listed resource server the request authenticates, or
    /// `invalid_client`.
    fn resource_server(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<&ResourceServer, FrontError> {
        let failed =
            || FrontError::new(Code::InvalidClient, "resource server authentication failed");
        let (id, secret) = match authorization.map(basic_credentials).transpose()? {
            Some(credentials) => credentials,
            None => (
                params.get("client_id").ok_or_else(failed)?.to_owned(),
                params.get("client_secret").ok_or_else(failed)?.to_owned(),
            ),
        };
        self.settings
            .resource_servers
            .iter()
            .find(|server| {
                bool::from(server.client_id.as_bytes().ct_eq(id.as_bytes()))
                    && server.secret.matches(&secret)
            })
            .ok_or_else(failed)
    }
}
