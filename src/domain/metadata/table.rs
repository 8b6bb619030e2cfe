//! The member table: `metadata_members!`, which declares every member of the
//! metadata document once (see the walk-through in the module above), and
//! what each shape and kind of simple member reads, writes back and lists.
//!
//! A simple member is a [`Flag`], [`One`] value or a [`List`] of values of
//! a [`Kind`]: a [`Uri`], [`Text`] or JWS algorithm ([`Alg`]), each with
//! the rule a submitted value must meet (a URI's parser). Its document
//! field, typed field, reading, writing and URIs all come from its one
//! entry in the table.

use super::jose::parse_alg;
use super::{MetadataError, Reading, invalid};
use crate::domain::uri::RegisteredUri;
use crate::domain::values::JwsAlgorithm;

/// The shape of a simple member: how its JSON is read into its typed
/// value, written back, and which URIs the value holds.
pub(super) trait Member {
    /// The member's field in the document.
    type Json;
    /// The member's field in [`super::RegistryMembers`].
    type Value;

    /// Reads `json`, the value of `member`.
    fn read(
        &self,
        json: Self::Json,
        member: &str,
        reading: Reading<'_>,
    ) -> Result<Self::Value, MetadataError>;

    /// The value as registered.
    fn write(&self, value: &Self::Value) -> Self::Json;

    /// The URIs the value holds.
    fn uris<'a>(&self, value: &'a Self::Value) -> &'a [RegisteredUri];
}

/// A kind of text value: how one is read and written back.
pub(super) trait Kind {
    /// The value read.
    type Value;

    /// Reads `text`, a value of `member`.
    fn read(
        &self,
        text: String,
        member: &str,
        reading: Reading<'_>,
    ) -> Result<Self::Value, MetadataError>;

    /// The value's text, as registered.
    fn write(value: &Self::Value) -> String;

    /// The URIs among `values`: none, unless they are URIs.
    fn uris(_values: &[Self::Value]) -> &[RegisteredUri] {
        &[]
    }
}

/// A boolean, as sent.
pub(super) struct Flag;

impl Member for Flag {
    type Json = Option<bool>;
    type Value = Option<bool>;

    fn read(
        &self,
        json: Option<bool>,
        _: &str,
        _: Reading<'_>,
    ) -> Result<Self::Value, MetadataError> {
        Ok(json)
    }

    fn write(&self, value: &Option<bool>) -> Option<bool> {
        *value
    }

    fn uris<'a>(&self, _: &'a Option<bool>) -> &'a [RegisteredUri] {
        &[]
    }
}

/// At most one value of a kind.
pub(super) struct One<K>(pub(super) K);

impl<K: Kind> Member for One<K> {
    type Json = Option<String>;
    type Value = Option<K::Value>;

    fn read(
        &self,
        json: Option<String>,
        member: &str,
        reading: Reading<'_>,
    ) -> Result<Self::Value, MetadataError> {
        json.map(|text| self.0.read(text, member, reading))
            .transpose()
    }

    fn write(&self, value: &Self::Value) -> Option<String> {
        value.as_ref().map(K::write)
    }

    fn uris<'a>(&self, value: &'a Self::Value) -> &'a [RegisteredUri] {
        K::uris(value.as_slice())
    }
}

/// A list of values of a kind; an empty one is not written back.
pub(super) struct List<K>(pub(super) K);

impl<K: Kind> Member for List<K> {
    type Json = Option<Vec<String>>;
    type Value = Vec<K::Value>;

    fn read(
        &self,
        json: Option<Vec<String>>,
        member: &str,
        reading: Reading<'_>,
    ) -> Result<Self::Value, MetadataError> {
        json.unwrap_or_default()
            .into_iter()
            .map(|text| self.0.read(text, member, reading))
            .collect()
    }

    fn write(&self, value: &Self::Value) -> Option<Vec<String>> {
        (!value.is_empty()).then(|| value.iter().map(K::write).collect())
    }

    fn uris<'a>(&self, value: &'a Self::Value) -> &'a [RegisteredUri] {
        K::uris(value)
    }
}

/// A URI: with the member's own parser when submitted, as any absolute
/// URI when registered. Its text is kept as sent.
pub(super) struct Uri(pub(super) fn(&str) -> Result<RegisteredUri, String>);

impl Kind for Uri {
    type Value = RegisteredUri;

    fn read(
        &self,
        text: String,
        member: &str,
        reading: Reading<'_>,
    ) -> Result<RegisteredUri, MetadataError> {
        reading.uri_named(&text, member, self.0)
    }

    fn write(value: &RegisteredUri) -> String {
        value.as_str().to_owned()
    }

    fn uris(values: &[RegisteredUri]) -> &[RegisteredUri] {
        values
    }
}

/// Text, which a submitted value must meet the rule of (`not_blank`,
/// `not_empty`), given the member and the text.
pub(super) struct Text(pub(super) fn(&str, &str) -> Result<(), MetadataError>);

impl Kind for Text {
    type Value = String;

    fn read(
        &self,
        text: String,
        member: &str,
        reading: Reading<'_>,
    ) -> Result<String, MetadataError> {
        reading.check(|| (self.0)(member, &text))?;
        Ok(text)
    }

    fn write(value: &String) -> String {
        value.clone()
    }
}

/// A JWS algorithm, which a submitted one must meet the rule of (`any`,
/// `not_none`), given the member and the algorithm.
pub(super) struct Alg(pub(super) fn(&str, JwsAlgorithm) -> Result<(), MetadataError>);

impl Kind for Alg {
    type Value = JwsAlgorithm;

    fn read(
        &self,
        text: String,
        member: &str,
        reading: Reading<'_>,
    ) -> Result<JwsAlgorithm, MetadataError> {
        let alg = parse_alg(&text, member)?;
        reading.check(|| (self.0)(member, alg))?;
        Ok(alg)
    }

    fn write(value: &JwsAlgorithm) -> String {
        value.to_string()
    }
}

/// A name: not blank, without control characters.
pub(super) fn not_blank(member: &str, text: &str) -> Result<(), MetadataError> {
    check_text(member, text, !text.trim().is_empty())
}

/// Any text but the empty string: an entry of a list.
pub(super) fn not_empty(member: &str, text: &str) -> Result<(), MetadataError> {
    if text.is_empty() {
        return Err(invalid(format!("{member} must not contain empty strings")));
    }
    Ok(())
}

/// Any algorithm, `none` included.
pub(super) fn any(_: &str, _: JwsAlgorithm) -> Result<(), MetadataError> {
    Ok(())
}

/// An algorithm other than `none` (JARM §3, RFC 9701 §6, CIBA Core 1.0 §4).
pub(super) fn not_none(member: &str, alg: JwsAlgorithm) -> Result<(), MetadataError> {
    if alg == JwsAlgorithm::None {
        return Err(invalid(format!("{member} must not be `none`")));
    }
    Ok(())
}

/// A text member's value `fits` its kind and has no control characters.
pub(super) fn check_text(member: &str, text: &str, fits: bool) -> Result<(), MetadataError> {
    if fits && !text.chars().any(char::is_control) {
        return Ok(());
    }
    Err(invalid(format!(
        "{member}: `{}` is not a valid value",
        text.escape_debug()
    )))
}

/// Declares the metadata document, [`super::RegistryMembers`] and the
/// code of the table's members from one list of members.
///
/// Each document entry is one member, its doc comment the description API
/// users read in the OpenAPI document, and one of:
///
/// - `by_hand(JSON type)`: a document field only, read and written by
///   hand-written code (RFC 7591 and OpenID Connect members, and registry
///   members with rules between members); other attributes are kept;
/// - `flag`, `one(Kind)` or `list(Kind)`: a simple registry member. Its
///   document field, its field in `RegistryMembers` (same doc comment), its
///   reading, writing back and URIs are generated.
///
/// `RegistryMembers` lists the fields of the members read by hand
/// (registry.rs), which that code returns as a `Ruled`. Every document
/// field is left out of JSON when absent; `other` collects the rest.
///
/// The entries are read one per step (a simple member takes two): the 66
/// members take about 85 of the compiler's default 128 macro recursions,
/// and "recursion limit reached" is the sign to raise `recursion_limit`.
macro_rules! metadata_members {
    (
        $(#[$($document_attr:tt)*])*
        pub struct MetadataDocument { $($entries:tt)* }

        $(#[$($members_attr:tt)*])*
        pub struct RegistryMembers {
            $($(#[doc = $ruled_doc:literal])* $ruled:ident: $ruled_type:ty,)*
        }
    ) => {
        $crate::domain::metadata::table::metadata_members!(@entry
            { $(#[$($document_attr)*])* }
            { $(#[$($members_attr)*])* }
            { $([$ruled ($ruled_type) $($ruled_doc)*])* }
            {}
            {}
            $($entries)*
        );
    };

    // A member read by hand-written code: its document field.
    (@entry $document:tt $members:tt $ruled:tt { $($fields:tt)* } $table:tt
        $(#[$($attr:tt)*])* $member:ident: by_hand($($json:tt)*), $($rest:tt)*
    ) => {
        $crate::domain::metadata::table::metadata_members!(@entry $document $members $ruled
            {
                $($fields)*
                $(#[$($attr)*])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $member: $($json)*,
            }
            $table
            $($rest)*
        );
    };

    // A simple member: its document field and a row of the table.
    (@entry $document:tt $members:tt $ruled:tt $fields:tt $table:tt
        $(#[doc = $doc:literal])* $member:ident: flag, $($rest:tt)*
    ) => {
        $crate::domain::metadata::table::metadata_members!(@simple $document $members $ruled
            $fields $table [$member ($crate::domain::metadata::table::Flag) (Option<bool>)
                (Option<bool>) $($doc)*]
            $($rest)*
        );
    };
    (@entry $document:tt $members:tt $ruled:tt $fields:tt $table:tt
        $(#[doc = $doc:literal])* $member:ident: one($kind:ident $(($($arg:tt)*))?),
        $($rest:tt)*
    ) => {
        $crate::domain::metadata::table::metadata_members!(@simple $document $members $ruled
            $fields $table [$member ($crate::domain::metadata::table::One($kind $(($($arg)*))?))
                (Option<String>)
                (Option<$crate::domain::metadata::table::metadata_members!(@value $kind)>)
                $($doc)*]
            $($rest)*
        );
    };
    (@entry $document:tt $members:tt $ruled:tt $fields:tt $table:tt
        $(#[doc = $doc:literal])* $member:ident: list($kind:ident $(($($arg:tt)*))?),
        $($rest:tt)*
    ) => {
        $crate::domain::metadata::table::metadata_members!(@simple $document $members $ruled
            $fields $table [$member ($crate::domain::metadata::table::List($kind $(($($arg)*))?))
                (Option<Vec<String>>)
                (Vec<$crate::domain::metadata::table::metadata_members!(@value $kind)>)
                $($doc)*]
            $($rest)*
        );
    };
    (@simple $document:tt $members:tt $ruled:tt { $($fields:tt)* } { $($table:tt)* }
        [$member:ident $shape:tt ($($json:tt)*) $value:tt $($doc:literal)*] $($rest:tt)*
    ) => {
        $crate::domain::metadata::table::metadata_members!(@entry $document $members $ruled
            {
                $($fields)*
                $(#[doc = $doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $member: $($json)*,
            }
            { $($table)* [$member $shape $value $($doc)*] }
            $($rest)*
        );
    };

    // The typed value of each kind.
    (@value Uri) => { $crate::domain::uri::RegisteredUri };
    (@value Text) => { String };
    (@value Alg) => { $crate::domain::values::JwsAlgorithm };

    // Every entry read: the declarations.
    (@entry
        { $($document_attr:tt)* }
        { $($members_attr:tt)* }
        { $([$ruled:ident ($ruled_type:ty) $($ruled_doc:literal)*])* }
        { $($fields:tt)* }
        { $([$member:ident ($($shape:tt)*) ($($value:tt)*) $($doc:literal)*])* }
    ) => {
        $($document_attr)*
        pub struct MetadataDocument {
            $($fields)*
            /// Language-tagged variants (`client_name#fr`) and any other member.
            #[serde(flatten)]
            pub other: ::std::collections::BTreeMap<String, ::serde_json::Value>,
        }

        $crate::domain::metadata::size::heap_sized! {
            $($members_attr)*
            pub struct RegistryMembers {
                $($(#[doc = $doc])* pub $member: $($value)*,)*
                $($(#[doc = $ruled_doc])* pub $ruled: $ruled_type,)*
            }
        }

        /// The members of [`RegistryMembers`] that hand-written code reads
        /// (`registry.rs`), as it returns them.
        pub(super) struct Ruled {
            $($(#[doc = $ruled_doc])* pub(super) $ruled: $ruled_type,)*
        }

        impl RegistryMembers {
            /// Reads the table's members of `doc`, in the table's order,
            /// then the others with `ruled`.
            pub(super) fn read_with(
                doc: &mut MetadataDocument,
                reading: $crate::domain::metadata::Reading<'_>,
                ruled: impl FnOnce(
                    &mut MetadataDocument,
                ) -> Result<Ruled, $crate::domain::metadata::MetadataError>,
            ) -> Result<Self, $crate::domain::metadata::MetadataError> {
                use $crate::domain::metadata::table::Member;
                $(let $member = Member::read(
                    &$($shape)*,
                    doc.$member.take(),
                    stringify!($member),
                    reading,
                )?;)*
                let Ruled { $($ruled),* } = ruled(doc)?;
                Ok(Self { $($member,)* $($ruled,)* })
            }

            /// Writes the table's members into `doc`, as registered.
            pub(super) fn write_table(&self, doc: &mut MetadataDocument) {
                use $crate::domain::metadata::table::Member;
                $(doc.$member = Member::write(&$($shape)*, &self.$member);)*
            }

            /// Every URI among the table's members, with its member's name.
            pub(super) fn table_uris(
                &self,
            ) -> impl Iterator<Item = (&'static str, &$crate::domain::uri::RegisteredUri)> {
                use $crate::domain::metadata::table::Member;
                [$((stringify!($member), Member::uris(&$($shape)*, &self.$member)),)*]
                    .into_iter()
                    .flat_map(|(member, uris)| uris.iter().map(move |uri| (member, uri)))
            }
        }
    };
}
pub(super) use metadata_members;

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;
    use crate::domain::metadata::HeapSize;
    use crate::domain::uri::RedirectRules;

    // A table of its own: two members declared as new ones would be, and
    // one read by hand.
    metadata_members! {
        /// A document.
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(default)]
        pub struct MetadataDocument {
            /// Read by hand.
            hand_text: by_hand(Option<String>),
            /// Whether the client does the new thing.
            new_flag: flag,
            /// https URIs of the new thing.
            new_uris: list(Uri(RegisteredUri::parse_https)),
        }

        /// The typed members.
        #[derive(Debug, Default)]
        pub struct RegistryMembers {
            /// Read by hand.
            hand_text: Option<String>,
        }
    }

    fn read(document: serde_json::Value) -> Result<RegistryMembers, MetadataError> {
        let mut document: MetadataDocument = serde_json::from_value(document).unwrap();
        let rules = RedirectRules::PERMISSIVE;
        RegistryMembers::read_with(&mut document, Reading::Submitted(&rules), |doc| {
            Ok(Ruled {
                hand_text: doc.hand_text.take(),
            })
        })
    }

    #[test]
    fn one_entry_declares_a_member_everywhere() {
        let uri = "https://app.example.com/New";
        let members =
            read(json!({ "new_flag": true, "new_uris": [uri], "hand_text": "t" })).unwrap();
        assert_eq!(members.new_flag, Some(true));
        assert_eq!(members.hand_text.as_deref(), Some("t"));
        let uris: Vec<_> = members
            .table_uris()
            .map(|(member, uri)| (member, uri.as_str()))
            .collect();
        assert_eq!(uris, [("new_uris", uri)]);
        assert!(members.heap_size() > uri.len() + "t".len());
        let mut written = MetadataDocument::default();
        members.write_table(&mut written);
        assert_eq!(
            serde_json::to_value(&written).unwrap(),
            json!({ "new_flag": true, "new_uris": [uri] }),
            "the hand-read member is written by hand"
        );
        let refused = read(json!({ "new_uris": ["http://app.example.com/new"] })).unwrap_err();
        assert!(refused.to_string().starts_with("new_uris: "), "{refused}");
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn the_entrys_doc_comment_describes_it_in_the_schema() {
        let schema =
            serde_json::to_value(<MetadataDocument as utoipa::PartialSchema>::schema()).unwrap();
        let member = &schema["properties"]["new_uris"];
        assert_eq!(member["description"], "https URIs of the new thing.");
        assert_eq!(member["type"], json!(["array", "null"]));
        assert_eq!(
            schema["properties"]["new_flag"]["type"],
            json!(["boolean", "null"])
        );
    }
}
