//! How much memory metadata holds, for caches that weigh entries by size.
//!
//! [`HeapSize`] is implemented once per kind of value, and `heap_sized!`
//! declares a struct whose heap size is the sum of its fields': a field
//! added to such a struct is weighed without anyone listing it, and one of
//! a type with no [`HeapSize`] does not compile.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{CertificateSubject, ClientKeys, Encryption, ExtraMetadata, Localized};
use crate::domain::uri::RegisteredUri;
use crate::domain::values::{
    ApplicationType, AuthMethod, GrantType, JwsAlgorithm, RegistrationType, ResponseType,
    SubjectType, TokenDeliveryMode,
};

/// Heap bytes a map spends on one entry besides its key and value: the key's
/// `String` and a share of a B-tree node.
const UNIT_MAP_ENTRY: usize = size_of::<String>() + 16;

/// About how many bytes of heap a value holds (texts, parsed URIs, key sets
/// and the collections around them), for caches that weigh entries by size.
/// An estimate, not an allocator's count; what the value holds inline is
/// counted by whatever holds it (`size_of`).
pub trait HeapSize {
    /// Heap bytes held.
    fn heap_size(&self) -> usize;
}

/// Declares a struct and implements [`HeapSize`] for it as the sum of its
/// fields' heap sizes.
macro_rules! heap_sized {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_attr:meta])* $field_vis:vis $field:ident: $type:ty),* $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $($(#[$field_attr])* $field_vis $field: $type,)*
        }

        impl $crate::domain::metadata::HeapSize for $name {
            fn heap_size(&self) -> usize {
                0 $(+ $crate::domain::metadata::HeapSize::heap_size(&self.$field))*
            }
        }
    };
}
pub(super) use heap_sized;

/// Values that hold nothing on the heap.
macro_rules! inline_only {
    ($($type:ty),* $(,)?) => {
        $(impl HeapSize for $type {
            fn heap_size(&self) -> usize {
                0
            }
        })*
    };
}

inline_only!(
    bool,
    u64,
    Encryption,
    ApplicationType,
    AuthMethod,
    GrantType,
    JwsAlgorithm,
    RegistrationType,
    SubjectType,
    TokenDeliveryMode,
);

impl HeapSize for String {
    fn heap_size(&self) -> usize {
        self.len()
    }
}

impl HeapSize for RegisteredUri {
    /// The text and the parse's own copy of it.
    fn heap_size(&self) -> usize {
        self.as_str().len() + self.url().as_str().len()
    }
}

impl HeapSize for ResponseType {
    fn heap_size(&self) -> usize {
        size_of_val(self.words())
    }
}

impl<T: HeapSize> HeapSize for Option<T> {
    fn heap_size(&self) -> usize {
        self.as_ref().map_or(0, T::heap_size)
    }
}

impl<T: HeapSize> HeapSize for Vec<T> {
    /// Each item, itself and its heap.
    fn heap_size(&self) -> usize {
        self.iter()
            .map(|item| size_of::<T>() + item.heap_size())
            .sum()
    }
}

impl<T: HeapSize> HeapSize for BTreeMap<String, T> {
    /// Each entry: its key, its value and its share of the tree.
    fn heap_size(&self) -> usize {
        self.iter()
            .map(|(key, value)| UNIT_MAP_ENTRY + size_of::<T>() + key.len() + value.heap_size())
            .sum()
    }
}

impl HeapSize for Value {
    fn heap_size(&self) -> usize {
        match self {
            Self::String(text) => text.len(),
            Self::Array(items) => items.heap_size(),
            // The smallest B-tree node, then each entry.
            Self::Object(members) => {
                192 + members
                    .iter()
                    .map(|(key, item)| {
                        UNIT_MAP_ENTRY + size_of::<Self>() + key.len() + item.heap_size()
                    })
                    .sum::<usize>()
            }
            Self::Null | Self::Bool(_) | Self::Number(_) => 0,
        }
    }
}

impl<T: HeapSize> HeapSize for Localized<T> {
    fn heap_size(&self) -> usize {
        self.plain.heap_size() + self.tagged.heap_size()
    }
}

impl HeapSize for ClientKeys {
    fn heap_size(&self) -> usize {
        match self {
            Self::Uri(uri) => uri.heap_size(),
            Self::Set(set) => set.heap_size(),
        }
    }
}

impl HeapSize for CertificateSubject {
    fn heap_size(&self) -> usize {
        match self {
            Self::SanUri(uri) => uri.heap_size(),
            Self::SubjectDn(text)
            | Self::SanDns(text)
            | Self::SanIp(text)
            | Self::SanEmail(text) => text.heap_size(),
        }
    }
}

impl HeapSize for ExtraMetadata {
    fn heap_size(&self) -> usize {
        self.0.heap_size()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::ClientMetadata;
    use crate::domain::uri::RedirectRules;

    fn weight(members: &Value) -> usize {
        let mut body = json!({ "redirect_uris": ["https://app.example.com/cb"] });
        if let (Some(body), Some(members)) = (body.as_object_mut(), members.as_object()) {
            body.extend(members.clone());
        }
        let document = serde_json::from_value(body).unwrap();
        ClientMetadata::validate(document, RedirectRules::PERMISSIVE)
            .unwrap()
            .heap_size()
    }

    /// Each member that keeps text, sent with a long value, makes the
    /// metadata weigh at least that much more.
    #[test]
    fn each_member_that_keeps_text_is_weighed() {
        let long = "x".repeat(1_000);
        let uri = format!("https://app.example.com/{long}");
        let members = [
            ("redirect_uris", json!(["https://app.example.com/cb", uri])),
            ("client_name", json!(long)),
            ("client_name#fr", json!(long)),
            ("client_uri", json!(uri)),
            ("logo_uri", json!(uri)),
            ("tos_uri", json!(uri)),
            ("policy_uri#de", json!(uri)),
            ("scope", json!(long)),
            ("contacts", json!([long])),
            ("jwks_uri", json!(uri)),
            ("software_id", json!(long)),
            ("software_version", json!(long)),
            ("sector_identifier_uri", json!(uri)),
            ("default_acr_values", json!([long])),
            ("initiate_login_uri", json!(uri)),
            ("request_uris", json!([uri])),
            ("post_logout_redirect_uris", json!([uri])),
            ("frontchannel_logout_uri", json!(uri)),
            ("backchannel_logout_uri", json!(uri)),
            ("tls_client_auth_subject_dn", json!(format!("CN={long}"))),
            ("tls_client_auth_san_dns", json!(long)),
            ("tls_client_auth_san_uri", json!(uri)),
            (
                "tls_client_auth_san_email",
                json!(format!("{long}@example.com")),
            ),
            ("authorization_details_types", json!([long])),
            ("backchannel_client_notification_endpoint", json!(uri)),
            ("organization_name", json!(long)),
            ("organization_name#fr", json!(long)),
            ("signed_jwks_uri", json!(uri)),
            ("ace_profile", json!(long)),
        ];
        let base = weight(&json!({}));
        for (member, value) in members {
            let grown = weight(&json!({ member: value })) - base;
            assert!(grown >= long.len(), "{member} weighs {grown} bytes");
        }
    }
}
