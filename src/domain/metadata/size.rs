//! How much memory metadata holds, for caches that weigh entries by size.

use serde_json::Value;

use super::{ClientKeys, ClientMetadata, Localized};
use crate::domain::uri::RegisteredUri;
use crate::domain::values::{GrantType, RegistrationType, ResponseType};

/// Heap bytes of one `String` in a collection, besides its text.
const UNIT_STRING: usize = size_of::<String>();
/// Heap bytes of one [`RegisteredUri`] in a collection, besides its texts.
const UNIT_URI: usize = size_of::<RegisteredUri>();
/// Heap bytes a map spends on one entry besides its key and value: the key's
/// `String` and a share of a B-tree node.
const UNIT_MAP_ENTRY: usize = size_of::<String>() + 16;

/// About how many heap bytes a JSON value holds (see [`ClientMetadata::heap_size`]).
#[must_use]
pub fn json_heap_size(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items
            .iter()
            .map(|item| size_of::<Value>() + json_heap_size(item))
            .sum(),
        // The smallest B-tree node, then each entry.
        Value::Object(members) => {
            192 + members
                .iter()
                .map(|(key, item)| {
                    UNIT_MAP_ENTRY + size_of::<Value>() + key.len() + json_heap_size(item)
                })
                .sum::<usize>()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

impl<T> Localized<T> {
    /// Heap bytes held, with `heap_size` of one value.
    fn heap_size(&self, heap_size: impl Fn(&T) -> usize) -> usize {
        let tagged: usize = self
            .tagged
            .iter()
            .map(|(tag, value)| UNIT_MAP_ENTRY + size_of::<T>() + tag.len() + heap_size(value))
            .sum();
        self.plain.as_ref().map_or(0, &heap_size) + tagged
    }
}

impl ClientMetadata {
    /// About how many bytes of heap this metadata holds (strings, parsed
    /// URIs, key sets and the collections around them), for caches that
    /// weigh entries by size. An estimate, not an allocator's count.
    #[must_use]
    pub fn heap_size(&self) -> usize {
        let uri = RegisteredUri::heap_size;
        let uris = |list: &[RegisteredUri]| list.iter().map(|u| UNIT_URI + uri(u)).sum::<usize>();
        let texts = |list: &[String]| list.iter().map(|t| UNIT_STRING + t.len()).sum::<usize>();
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        let localized_uris = [
            &self.client_uri,
            &self.logo_uri,
            &self.tos_uri,
            &self.policy_uri,
        ]
        .iter()
        .map(|l| l.heap_size(uri))
        .sum::<usize>();
        let keys = match &self.keys {
            Some(ClientKeys::Uri(u)) => uri(u),
            Some(ClientKeys::Set(set)) => json_heap_size(set),
            None => 0,
        };
        uris(&self.redirect_uris)
            + self.client_name.heap_size(String::len)
            + localized_uris
            + text(&self.scope)
            + texts(&self.contacts)
            + keys
            + text(&self.software_id)
            + text(&self.software_version)
            + self.sector_identifier_uri.as_ref().map_or(0, uri)
            + texts(&self.default_acr_values)
            + self.initiate_login_uri.as_ref().map_or(0, uri)
            + uris(&self.request_uris)
            + size_of::<GrantType>() * self.grant_types.len()
            + size_of::<ResponseType>() * self.response_types.len()
            + self
                .registry_members
                .uris()
                .map(|(_, u)| UNIT_URI + uri(u))
                .sum::<usize>()
            + texts(&self.registry_members.authorization_details_types)
            + self
                .registry_members
                .organization_name
                .heap_size(String::len)
            + text(&self.registry_members.ace_profile)
            + size_of::<RegistrationType>() * self.registry_members.client_registration_types.len()
            + self
                .registry_members
                .tls_client_auth_subject
                .as_ref()
                .map_or(0, |s| s.as_str().len())
            + self
                .extra_metadata
                .0
                .iter()
                .map(|(name, value)| UNIT_MAP_ENTRY + name.len() + json_heap_size(value))
                .sum::<usize>()
    }
}
