//! Broker mode's refresh tokens. Every app signs in through the operator's
//! one client, so the provider's refresh token would work for any of them:
//! the app never sees it. It gets an opaque token of the gateway's, bound
//! to its client, and the provider's stays in the store, sealed under the
//! store key, in the token's family.
//!
//! A token is used once: each refresh rotates it (OAuth 2.1 §4.3.1, which
//! the MCP specification requires for public clients). A token presented
//! again is a replay: its whole family is revoked, here and at the
//! provider. A refresh the provider cannot answer now changes nothing, so
//! the app may retry with the same token.

use axum::http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::broker::SignedIn;
use super::error::{Code, FrontError};
use super::provider_call::ProviderAnswer;
use super::token::{ClientAuth, Issued};
use super::tokens::{GatewayTokens, Grant};
use super::transactions::FrontSecret;
use super::{Front, Params};
use crate::audit::{self, AuditEvent};
use crate::clock::seconds;
use crate::domain::SecretHash;
use crate::domain::values::GrantType;
use crate::store::front::{PresentedRefresh, RefreshFamily, Transaction};

/// Binds the provider's sealed refresh tokens to this use.
const SEAL_CONTEXT: &str = "dcr-gateway upstream refresh token";

impl Front {
    /// The app's first token answer in broker mode, from the provider's
    /// `tokens` for `transaction`: the provider's refresh token is kept and
    /// a family of the gateway's started in its place, when the client
    /// registered the `refresh_token` grant. What was issued, for a replay
    /// of the code to revoke.
    pub(super) async fn first_tokens(
        &self,
        transaction: &Transaction,
        signed_in: SignedIn,
    ) -> Result<(ProviderAnswer, Issued), FrontError> {
        let mut members = signed_in.tokens.0;
        let upstream = take_text(&mut members, "refresh_token");
        let subject = signed_in.identity.subject.clone();
        let claims = self.copied_claims(&signed_in.identity.claims);
        let mut issued = Issued {
            access_token: members
                .get("access_token")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Issued::default()
        };
        let refreshes = self
            .client(&transaction.client_id)
            .await?
            .is_some_and(|client| {
                client
                    .metadata
                    .grant_types
                    .contains(&GrantType::RefreshToken)
            });
        if let (Some(upstream), true) = (upstream, refreshes) {
            let token = FrontSecret::generate();
            // With the gateway's tokens the family keeps the app's scope
            // (its tokens say it); else the provider's, for its refreshes.
            let scope = match self.tokens {
                Some(_) => transaction.scope.clone(),
                None => members
                    .get("scope")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
            let family = RefreshFamily {
                id: FrontSecret::generate().expose().to_owned(),
                client_id: transaction.client_id.clone(),
                scope,
                resource: transaction.resource.clone(),
                subject: subject.clone(),
                claims: claims.clone(),
                sealed_upstream: self.seal_upstream(&upstream)?,
                expires_at: self.refresh_expiry(),
            };
            self.refresh_tokens
                .start_family(&family, &token.hash())
                .await?;
            members.insert("refresh_token".into(), token.expose().into());
            issued.refresh_token = Some(upstream);
            issued.family = Some(family.id);
        }
        if let Some(tokens) = &self.tokens {
            let grant = Grant {
                subject: &subject,
                client_id: &transaction.client_id,
                resource: transaction.resource.as_deref().unwrap_or_default(),
                scope: transaction.scope.as_deref(),
                session: issued.family.as_deref(),
                claims: &claims,
            };
            self.own_tokens(tokens, &mut members, &grant).await?;
            let openid = transaction
                .scope
                .as_deref()
                .is_some_and(|scope| scope.split(' ').any(|token| token == "openid"));
            if openid {
                let id_token = tokens
                    .id_token(
                        &grant,
                        &signed_in.identity,
                        signed_in.app_nonce.as_deref(),
                        self.now(),
                    )
                    .await?;
                members.insert("id_token".into(), id_token.into());
            }
        }
        Ok((json_answer(&members)?, issued))
    }

    /// The provider's user claims of `all` that the gateway's tokens copy
    /// (`[front] claims`).
    fn copied_claims(&self, all: &Map<String, Value>) -> Map<String, Value> {
        self.settings
            .claims
            .iter()
            .filter_map(|name| Some((name.clone(), all.get(name)?.clone())))
            .collect()
    }

    /// Puts the gateway's access token for `grant` in place of the
    /// provider's in `members`, and leaves out the provider's ID token.
    async fn own_tokens(
        &self,
        tokens: &GatewayTokens,
        members: &mut Map<String, Value>,
        grant: &Grant<'_>,
    ) -> Result<(), FrontError> {
        let access_token = tokens.access_token(grant, self.now()).await?;
        members.retain(|name, _| name == "refresh_token");
        members.insert("access_token".into(), access_token.into());
        members.insert("token_type".into(), "Bearer".into());
        members.insert("expires_in".into(), tokens.lifetime().as_secs().into());
        if let Some(scope) = grant.scope {
            members.insert("scope".into(), scope.into());
        }
        Ok(())
    }

    /// Handles a refresh of the gateway's refresh token `presented` by the
    /// app's client `app_id`, authenticated as `auth`.
    pub(super) async fn refresh(
        &self,
        app_id: &str,
        auth: &ClientAuth,
        presented: &str,
        params: &Params,
    ) -> Result<ProviderAnswer, FrontError> {
        let hash = SecretHash::of(presented);
        let family = match self.refresh_tokens.presented(&hash, self.now()).await? {
            PresentedRefresh::Live(family) if family.client_id == app_id => family,
            PresentedRefresh::Reused(family) if family.client_id == app_id => {
                self.replayed(&family, auth).await;
                return Err(refused());
            }
            PresentedRefresh::Live(_) | PresentedRefresh::Reused(_) => {
                return Err(FrontError::invalid_grant(
                    "the refresh token was not issued to this client",
                ));
            }
            PresentedRefresh::Unknown => return Err(refused()),
        };
        if params
            .get("resource")
            .is_some_and(|sent| family.resource.as_deref() != Some(sent))
        {
            return Err(FrontError::new(
                Code::InvalidTarget,
                "resource differs from the one the grant was made for",
            ));
        }
        if let Some(tokens) = &self.tokens {
            return self.rotated_own_tokens(tokens, auth, &hash, &family).await;
        }
        let broker = self
            .broker
            .as_ref()
            .ok_or_else(|| FrontError::internal("a brokered refresh without a broker"))?;
        let upstream = self.open_upstream(&family.sealed_upstream)?;
        let tokens = broker
            .refresh(
                &upstream,
                family.scope.as_deref(),
                family.resource.as_deref(),
                &family.subject,
            )
            .await;
        let mut members = match tokens {
            Ok(tokens) => tokens.0,
            Err(error) if error.code == Code::InvalidGrant => {
                // The provider no longer honours the grant: nor does the gateway.
                self.revoke_family(&family.id, auth).await;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let rotated = take_text(&mut members, "refresh_token");
        let sealed = rotated
            .as_deref()
            .map(|t| self.seal_upstream(t))
            .transpose()?;
        let Some(next) = self.rotate(auth, &hash, &family, sealed.as_deref()).await? else {
            if let Some(rotated) = rotated {
                broker.revoke(&rotated, "refresh_token").await;
            }
            return Err(refused());
        };
        members.insert("refresh_token".into(), next.expose().into());
        json_answer(&members)
    }

    /// Uses the token `presented` of `family` once: its successor, the
    /// family holding `sealed_upstream` if the provider rotated its own;
    /// `None` when it was used by another request meanwhile (one of the two
    /// is a replay: the family is revoked).
    async fn rotate(
        &self,
        auth: &ClientAuth,
        presented: &SecretHash,
        family: &RefreshFamily,
        sealed_upstream: Option<&[u8]>,
    ) -> Result<Option<FrontSecret>, FrontError> {
        let next = FrontSecret::generate();
        let rotated = self
            .refresh_tokens
            .rotate(
                presented,
                &next.hash(),
                sealed_upstream,
                self.refresh_expiry(),
            )
            .await?;
        if !rotated {
            self.replayed(family, auth).await;
            return Ok(None);
        }
        metrics::counter!("dcr_front_refresh_rotations_total").increment(1);
        Ok(Some(next))
    }

    /// A refresh with the gateway's own tokens: the provider is not
    /// called; the refresh token rotates and a new access token is made
    /// out to the family's resource.
    async fn rotated_own_tokens(
        &self,
        tokens: &GatewayTokens,
        auth: &ClientAuth,
        presented: &SecretHash,
        family: &RefreshFamily,
    ) -> Result<ProviderAnswer, FrontError> {
        let Some(next) = self.rotate(auth, presented, family, None).await? else {
            return Err(refused());
        };
        let mut members = Map::new();
        members.insert("refresh_token".into(), next.expose().into());
        let grant = Grant {
            subject: &family.subject,
            client_id: &family.client_id,
            resource: family.resource.as_deref().unwrap_or_default(),
            scope: family.scope.as_deref(),
            session: Some(&family.id),
            claims: &family.claims,
        };
        self.own_tokens(tokens, &mut members, &grant).await?;
        json_answer(&members)
    }

    /// A used refresh token of `family` came back (from its client,
    /// authenticated as `auth`): the family is revoked, and the event
    /// counted and audited.
    async fn replayed(&self, family: &RefreshFamily, auth: &ClientAuth) {
        tracing::warn!(client_id = %family.client_id, "front: a used refresh token was presented again; its family is revoked");
        metrics::counter!("dcr_front_refresh_reuse_total").increment(1);
        audit::record(&AuditEvent {
            action: "refresh_reuse",
            outcome: "family_revoked",
            client_id: Some(&family.client_id),
            ..AuditEvent::default()
        });
        self.revoke_family(&family.id, auth).await;
    }

    /// Revokes the family `id`, and the provider's refresh token it held
    /// (as the operator's client in broker mode, else as the family's
    /// client, authenticated as `auth`).
    pub(super) async fn revoke_family(&self, id: &str, auth: &ClientAuth) {
        match self.refresh_tokens.revoke_family(id).await {
            Ok(Some(sealed)) => {
                let Ok(upstream) = self.open_upstream(&sealed) else {
                    return;
                };
                match &self.broker {
                    Some(broker) => broker.revoke(&upstream, "refresh_token").await,
                    None => {
                        self.revoke_at_provider(auth, upstream, "refresh_token")
                            .await;
                    }
                }
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "front: a refresh token family was not revoked"),
        }
    }

    /// When a family used now lapses.
    fn refresh_expiry(&self) -> i64 {
        self.now()
            .saturating_add(seconds(self.settings.refresh_token_lifetime))
    }

    fn seal_upstream(&self, token: &str) -> Result<Vec<u8>, FrontError> {
        self.sealer
            .seal(token.as_bytes(), SEAL_CONTEXT)
            .map_err(|e| FrontError::internal(&e.to_string()))
    }

    fn open_upstream(&self, sealed: &[u8]) -> Result<String, FrontError> {
        self.sealer
            .open(sealed, SEAL_CONTEXT)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| FrontError::internal("a sealed provider refresh token does not open"))
    }
}

/// The refusal of a refresh token that is not (or no longer) good.
fn refused() -> FrontError {
    FrontError::invalid_grant("the refresh token is unknown, expired or revoked")
}

/// Takes the text member `name` out of `members`.
fn take_text(members: &mut Map<String, Value>, name: &str) -> Option<String> {
    match members.remove(name) {
        Some(Value::String(text)) => Some(text),
        _ => None,
    }
}

/// A `200` JSON token answer of `members`.
fn json_answer(members: &Map<String, Value>) -> Result<ProviderAnswer, FrontError> {
    Ok(ProviderAnswer {
        status: StatusCode::OK,
        content_type: Some(HeaderValue::from_static("application/json")),
        body: serde_json::to_vec(members).map_err(|e| FrontError::internal(&e.to_string()))?,
    })
}
