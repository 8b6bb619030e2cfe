//! Extension members the operator lists in `[registration] extra_metadata`
//! (as node oidc-provider's `extraClientMetadata`): kept as the JSON the
//! app sent, echoed back, and sent to providers that take any member.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::MetadataDocument;

/// Members of a client information response that are the server's own
/// (RFC 7591 §3.2.1, RFC 7592 §3), not client metadata: never an extension
/// member, never what a provider holds for the client.
pub const SERVER_MEMBERS: [&str; 7] = [
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
    "software_statement",
];

/// The operator's extension members of one client, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraMetadata(pub BTreeMap<String, Value>);

impl ExtraMetadata {
    /// The members of `document` named in `names`, as sent.
    #[must_use]
    pub fn pick(document: &MetadataDocument, names: &[String]) -> Self {
        Self(
            names
                .iter()
                .filter_map(|name| Some((name.clone(), document.other.get(name)?.clone())))
                .collect(),
        )
    }

    /// What a registered document kept beyond the typed members: every
    /// member of `other` that is not a language-tagged variant.
    pub(super) fn registered(other: &BTreeMap<String, Value>) -> Self {
        Self(
            other
                .iter()
                .filter(|(name, _)| !name.contains('#'))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        )
    }

    /// Why `name` cannot be an extension member, if it cannot: it is
    /// blank, language-tagged, a registry member or the server's own.
    #[must_use]
    pub fn refusal(name: &str) -> Option<String> {
        if name.trim().is_empty() || name.contains('#') {
            return Some(format!(
                "`{}` is not a member name (blank, or with a `#` language tag)",
                name.escape_debug()
            ));
        }
        if SERVER_MEMBERS.contains(&name) || is_registry_member(name) {
            return Some(format!("`{name}` is a registered member, not an extension"));
        }
        None
    }
}

/// Whether the metadata document has a typed member `name` (it does when
/// the member does not land among the others).
fn is_registry_member(name: &str) -> bool {
    serde_json::from_value::<MetadataDocument>(json!({ name: null }))
        .map_or(true, |document| document.other.is_empty())
}
