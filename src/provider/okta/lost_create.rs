//! A create whose answer was lost: finding the client it may have made
//! among those Okta holds, claiming it, and adopting it.

use serde_json::Value;
use url::Url;

use super::client_body::{OktaClient, renewable};
use super::{ISSUE_SKEW_SECS, Okta, OktaAnswer, PAGE_LIMIT, state};
use crate::clock::seconds;
use crate::domain::ClientId;
use crate::provider::listing::link_paged;
use crate::provider::rest::Repeat;
use crate::provider::{ProviderError, ProvisionRequest, Provisioned, urlencode};

impl Okta {
    /// Clients Okta holds that this registration may have made, oldest
    /// first: every member the gateway sends equal to what `sent` holds,
    /// issued within the registration's time window, and held by no row of
    /// the gateway (those belong to other registrations, whatever their
    /// names).
    pub(super) async fn candidates(
        &self,
        request: &ProvisionRequest<'_>,
        sent: &OktaClient<'_>,
        named: Vec<OktaAnswer>,
    ) -> Result<Vec<OktaAnswer>, ProviderError> {
        let sent =
            serde_json::to_value(sent).map_err(|e| ProviderError::Rejected(e.to_string()))?;
        let window = self.issue_window(request.issued_at);
        let mut found = Vec::new();
        for client in named {
            let issued = client
                .client_id_issued_at
                .is_none_or(|t| window.contains(&t));
            if issued
                && same_members(&sent, &client.members)
                && !request
                    .claims
                    .held(&ClientId::new(&client.client_id))
                    .await?
            {
                found.push(client);
            }
        }
        found.sort_by_key(|c| c.client_id_issued_at);
        Ok(found)
    }

    /// The clients whose name starts with `client_name` (Okta's `q=`).
    pub(super) async fn named(&self, client_name: &str) -> Result<Vec<OktaAnswer>, ProviderError> {
        self.list(format!(
            "{}?q={}&limit={PAGE_LIMIT}",
            self.clients_url,
            urlencode(client_name)
        ))
        .await
    }

    /// When a client made by a registration issued at `issued_at` can have
    /// been issued: from then until its operation's deadline, give or take
    /// the clocks' disagreement.
    pub(super) fn issue_window(&self, issued_at: i64) -> std::ops::RangeInclusive<i64> {
        let deadline = seconds(self.http.resilience().operation_deadline());
        issued_at.saturating_sub(ISSUE_SKEW_SECS)
            ..=issued_at
                .saturating_add(deadline)
                .saturating_add(ISSUE_SKEW_SECS)
    }

    /// Every client from `first` on, following `Link: rel="next"`.
    pub(super) async fn list(&self, first: String) -> Result<Vec<OktaAnswer>, ProviderError> {
        let Ok(first) = Url::parse(&first) else {
            return Ok(Vec::new());
        };
        let fetch = |url| self.call(self.http.client().get(url), Repeat::Safe);
        link_paged(first, fetch, |c: &OktaAnswer| c.client_id.as_str()).await
    }

    /// After a create whose outcome is unknown: finds the client it made,
    /// claims it for this registration and adopts it. `None` when nothing
    /// this registration may have made is there.
    pub(super) async fn adopt_lost(
        &self,
        request: &ProvisionRequest<'_>,
        sent: &OktaClient<'_>,
        default_name: &str,
    ) -> Result<Option<Provisioned>, ProviderError> {
        let named = self.named(sent.client_name).await?;
        for client in self.candidates(request, sent, named).await? {
            let id = ClientId::new(&client.client_id);
            if !request
                .claims
                .claim(&id, state(default_name.to_owned())?)
                .await?
            {
                continue;
            }
            let metadata = request.metadata;
            let client_secret =
                match (
                    metadata.needs_client_secret(),
                    renewable(metadata.token_endpoint_auth_method),
                ) {
                    (false, _) => None,
                    // The first secret was never seen and Okta cannot make
                    // another: the claimed client stays pending and reconcile
                    // deletes it.
                    (true, false) => {
                        return Err(ProviderError::Indeterminate(format!(
                            "Okta holds client {id} but cannot show its secret again"
                        )));
                    }
                    (true, true) => Some(self.new_secret(id.as_str()).await.map_err(|e| {
                        ProviderError::Indeterminate(format!("adopting {id}: {e}"))
                    })?),
                };
            tracing::info!(client_id = %id, "adopted an Okta client whose create answer was lost");
            return Ok(Some(Provisioned {
                client_id: Some(id),
                client_secret,
                state: Some(state(default_name.to_owned())?),
                ..Provisioned::default()
            }));
        }
        Ok(None)
    }
}

/// Whether Okta's record `held` holds every member the gateway `sent`, as
/// sent: lists in any order, and objects (such as keys) perhaps with members
/// Okta added.
fn same_members(sent: &Value, held: &serde_json::Map<String, Value>) -> bool {
    let Value::Object(sent) = sent else {
        return false;
    };
    sent.iter()
        .all(|(member, value)| holds(held.get(member).unwrap_or(&Value::Null), value))
}

/// Whether `held` holds `sent` (see [`same_members`]).
fn holds(held: &Value, sent: &Value) -> bool {
    match (held, sent) {
        (Value::Object(held), Value::Object(_)) => same_members(sent, held),
        (Value::Array(held), Value::Array(sent)) => {
            held.len() == sent.len() && sent.iter().all(|s| held.iter().any(|h| holds(h, s)))
        }
        _ => held == sent,
    }
}
