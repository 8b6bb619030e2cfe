//! The environment overlay: `DCR_GATEWAY__A__B=value` sets `a.b = value`.
//!
//! A value is read as one TOML literal (`true`, `2048`, `["a"]`), or as text
//! when it is not exactly one literal (`true # comment`, `0.0.0.0:8080`).
//! The key's own type has the last word: a key that wants text and is given
//! a literal of another type (an API token `12345`) gets the text itself
//! ([`Report::from_environment`]).

use super::ENV_PREFIX;
use crate::settings::{Report, toml_literal};

/// Writes every `DCR_GATEWAY__…` variable of `env` into `table`.
pub(super) fn apply(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    report: &mut Report,
) {
    for (key, text) in env {
        let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let Some((leaf, parents)) = path.split_last() else {
            continue;
        };
        if path.iter().any(String::is_empty) {
            report.error(format!("environment variable `{key}` names no config key"));
            continue;
        }
        let value = match toml_literal(&text) {
            Some(toml::Value::String(literal)) => toml::Value::String(literal),
            Some(literal) => {
                report.from_environment(path.clone(), text);
                literal
            }
            None => toml::Value::String(text),
        };
        if let Err(part) = insert_at(table, parents, leaf, value) {
            report.error(format!(
                "environment variable `{key}`: `{part}` is not a section"
            ));
        }
    }
}

/// Inserts `value` at `parents.leaf`, creating sections; on a non-section in
/// the way, returns its name.
fn insert_at(
    table: &mut toml::Table,
    parents: &[String],
    leaf: &str,
    value: toml::Value,
) -> Result<(), String> {
    let Some((first, rest)) = parents.split_first() else {
        table.insert(leaf.to_owned(), value);
        return Ok(());
    };
    match table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        toml::Value::Table(inner) => insert_at(inner, rest, leaf, value),
        _ => Err(first.clone()),
    }
}
