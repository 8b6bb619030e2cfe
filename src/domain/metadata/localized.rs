//! Human-readable members and their language-tagged variants (RFC 7591
//! §2.2): `client_name#fr` beside `client_name`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{MetadataError, Reading, invalid};
use crate::domain::uri::RegisteredUri;

/// A human-readable value and its language-tagged variants (RFC 7591 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized<T> {
    /// The value without a language tag.
    pub plain: Option<T>,
    /// Values by BCP 47 language tag, as sent.
    pub tagged: BTreeMap<String, T>,
}

impl<T> Default for Localized<T> {
    fn default() -> Self {
        Self {
            plain: None,
            tagged: BTreeMap::new(),
        }
    }
}

/// Reads member `field` and its tagged variants among the `other` members,
/// each value read by `parse`. A submitted document's tags must be language
/// tags.
pub(super) fn read<T>(
    plain: Option<String>,
    other: &BTreeMap<String, Value>,
    field: &str,
    reading: Reading<'_>,
    parse: impl Fn(String) -> Result<T, String>,
) -> Result<Localized<T>, MetadataError> {
    let plain = plain
        .map(&parse)
        .transpose()
        .map_err(|e| invalid(format!("{field}: {e}")))?;
    let mut tagged = BTreeMap::new();
    for (key, value) in other {
        let Some((base, tag)) = key.split_once('#') else {
            continue;
        };
        if base != field {
            continue;
        }
        reading.check(|| {
            if is_language_tag(tag) {
                Ok(())
            } else {
                Err(invalid(format!("`{key}`: `{tag}` is not a language tag")))
            }
        })?;
        let text = value
            .as_str()
            .ok_or_else(|| invalid(format!("`{key}` must be a string")))?;
        tagged.insert(
            tag.to_owned(),
            parse(text.to_owned()).map_err(|e| invalid(format!("{key}: {e}")))?,
        );
    }
    Ok(Localized { plain, tagged })
}

/// Reads a localized web page or image URI (`client_uri`, `logo_uri`,
/// `tos_uri`, `policy_uri`): http or https.
pub(super) fn read_uris(
    plain: Option<String>,
    other: &BTreeMap<String, Value>,
    field: &str,
    reading: Reading<'_>,
) -> Result<Localized<RegisteredUri>, MetadataError> {
    read(plain, other, field, reading, |text| {
        reading.uri(&text, RegisteredUri::parse_web)
    })
}

/// Writes the tagged variants of `value` into `other` and returns the plain
/// one, each as `text` writes it.
pub(super) fn put_localized<T>(
    value: &Localized<T>,
    field: &str,
    other: &mut BTreeMap<String, Value>,
    text: impl Fn(&T) -> String,
) -> Option<String> {
    for (tag, v) in &value.tagged {
        other.insert(format!("{field}#{tag}"), Value::String(text(v)));
    }
    value.plain.as_ref().map(text)
}

/// BCP 47 language tag, loosely: alphanumeric subtags of 1 to 8 separated by `-`.
fn is_language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()))
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}
