//! Reading settings, shared by every module that owns a section of the
//! configuration: [`Report`] reads a section's keys with serde, recording
//! every problem instead of stopping at the first, and a few parsers
//! (durations, http(s) URLs) that report in the same words everywhere.
//!
//! The loader in [`crate::config`] hands each module its section; the
//! module reads it into its own raw type and validates that into the typed
//! settings it uses. Nothing here knows any section.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Visitor};
use url::Url;

/// The reading of one configuration: every problem found so far, and the
/// values that came from the environment.
#[derive(Debug, Default)]
pub struct Report {
    errors: Vec<String>,
    /// The text of each environment value, by its key path, for values
    /// that were read as a TOML literal (see [`Report::from_environment`]).
    environment: BTreeMap<Vec<String>, String>,
}

impl Report {
    /// Records a problem.
    pub fn error(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// Every problem recorded, in order.
    #[must_use]
    pub fn into_errors(self) -> Vec<String> {
        self.errors
    }

    /// Notes that the environment set the key at `path` (section first) to
    /// `text`, which was put in the table as a TOML literal. Should the key
    /// refuse that literal (a string key given `12345`), it gets `text`
    /// itself instead: the key's own type decides.
    pub fn from_environment(&mut self, path: Vec<String>, text: String) {
        self.environment.insert(path, text);
    }

    /// Reads `[section]` into `T`, reporting keys that `T` does not know
    /// as unknown.
    pub fn section<T: DeserializeOwned + Default>(
        &mut self,
        section: &str,
        keys: toml::Table,
    ) -> T {
        let (value, unknown) = self.keys(section, keys);
        for key in unknown {
            self.error(format!("unknown key `{section}.{key}`"));
        }
        value
    }

    /// Reads `keys` of `[section]` into `T` and returns it with the paths
    /// of the keys it did not know, for the caller to judge. A key with a
    /// type error is reported, dropped (so its default applies) and the
    /// section read again, so that one bad key hides no other error.
    pub fn keys<T: DeserializeOwned + Default>(
        &mut self,
        section: &str,
        mut keys: toml::Table,
    ) -> (T, Vec<String>) {
        loop {
            let mut unknown = Vec::new();
            let result = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
                toml::Value::Table(keys.clone()),
                &mut |path: serde_ignored::Path<'_>| unknown.push(key_path(&path)),
            ));
            let error = match result {
                Ok(value) => return (value, unknown),
                Err(error) => error,
            };
            let path = map_keys(error.path());
            if self.retry_as_text(section, &mut keys, &path) {
                continue;
            }
            let key = format!("{section}.{}", error.path());
            let message = error.inner().message();
            match value_at(&mut keys, &path) {
                Some(toml::Value::String(text)) => self.error(format!("{key} `{text}`: {message}")),
                _ => self.error(format!("`{key}`: {message}")),
            }
            if path.first().and_then(|first| keys.remove(first)).is_none() {
                return (T::default(), Vec::new());
            }
        }
    }

    /// Replaces an environment value that its key refused as a TOML literal
    /// by its text; `false` when the error is not about such a value.
    fn retry_as_text(&self, section: &str, keys: &mut toml::Table, path: &[String]) -> bool {
        let full: Vec<String> = std::iter::once(section.to_owned())
            .chain(path.iter().cloned())
            .collect();
        for end in (2..=full.len()).rev() {
            let Some(text) = self.environment.get(&full[..end]) else {
                continue;
            };
            return match value_at(keys, &path[..end - 1]) {
                Some(value) if !value.is_str() => {
                    *value = toml::Value::String(text.clone());
                    true
                }
                _ => false,
            };
        }
        false
    }
}

/// An ignored key's path as written in TOML: `issuers[0].name`.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

/// The leading map keys of a serde path (up to the first list index).
fn map_keys(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .map_while(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The value at `path`, when every step but the last is a table.
fn value_at<'a>(table: &'a mut toml::Table, path: &[String]) -> Option<&'a mut toml::Value> {
    let (first, rest) = path.split_first()?;
    let value = table.get_mut(first)?;
    match (rest.is_empty(), value) {
        (true, value) => Some(value),
        (false, toml::Value::Table(inner)) => value_at(inner, rest),
        (false, _) => None,
    }
}

/// `text` read as one TOML value, or `None`: nothing may follow the value
/// (a `true # comment` is text, not `true`).
#[must_use]
pub fn toml_literal(text: &str) -> Option<toml::Value> {
    toml::Value::deserialize(toml::de::ValueDeserializer::new(text.trim())).ok()
}

/// A humantime duration (`500ms`, `10s`, `1h`), or an error naming `key`
/// (and one second, so that checks after it can go on).
pub fn duration(text: &str, key: &str, report: &mut Report) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|e| {
        report.error(format!("{key} `{text}`: {e}"));
        Duration::from_secs(1)
    })
}

/// An http(s) URL with a host, or an error naming `key`.
pub fn http_url(text: &str, key: &str, report: &mut Report) -> Option<Url> {
    match Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Some(url)
        }
        _ => {
            report.error(format!("{key} `{text}` must be an http(s) URL with a host"));
            None
        }
    }
}

/// The keys a derived `Deserialize` struct reads (its field names, renamed
/// as serde renames them); empty for any other type. A struct with a
/// `#[serde(flatten)]` field does not list its keys this way.
#[must_use]
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldNames) {
        Err(Found(Some(fields))) => fields,
        _ => &[],
    }
}

/// A deserializer that only records the fields a struct asks for.
struct FieldNames;

/// What [`FieldNames`] found, carried out as the "error".
#[derive(Debug)]
struct Found(Option<&'static [&'static str]>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names only")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Self(None)
    }
}

impl<'de> de::Deserializer<'de> for FieldNames {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Sample {
        name: String,
        count: u32,
        #[serde(rename = "renamed-key")]
        _renamed: bool,
    }

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn field_names_are_the_keys_serde_reads() {
        assert_eq!(
            field_names::<Sample>(),
            ["name", "count", "renamed-key"].as_slice()
        );
        assert!(field_names::<BTreeMap<String, String>>().is_empty());
    }

    #[test]
    fn a_type_error_is_reported_and_the_other_keys_still_read() {
        let mut report = Report::default();
        let (sample, unknown): (Sample, _) =
            report.keys("s", table("name = 5\ncount = 3\nother = 1\n"));
        assert_eq!(sample.count, 3);
        assert_eq!(unknown, ["other"]);
        let errors = report.into_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("`s.name`: invalid type"),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_keys_are_named_as_written() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Outer {
            inner: Option<Sample>,
            list: Vec<Sample>,
        }
        let mut report = Report::default();
        let (_, unknown): (Outer, _) = report.keys(
            "s",
            table(
                "inner = { x = 1 }
list = [{}, { y = 2 }]
",
            ),
        );
        assert_eq!(unknown, ["inner.x", "list[1].y"]);
    }

    #[test]
    fn an_environment_literal_its_key_refuses_is_taken_as_text() {
        let mut report = Report::default();
        report.from_environment(vec!["s".into(), "name".into()], "12345".into());
        report.from_environment(vec!["s".into(), "count".into()], "seven".into());
        let (sample, _): (Sample, _) = report.keys("s", table("name = 12345\ncount = \"seven\"\n"));
        assert_eq!(sample.name, "12345");
        let errors = report.into_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("s.count `seven`: invalid type"),
            "{errors:?}"
        );
    }
}
