//! A vendor's contract (`tests/contracts/{vendor}.json`): the facts of its
//! published API document that the fakes check requests against, distilled
//! by `cargo xtask contracts`. The operation exists, its query and path
//! parameters are documented and well-typed, and a body fits the named
//! schema.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value, json};

/// A request body sent as `application/json` that parses, or what is wrong
/// with it.
pub fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, &'static str> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err("Content-Type is not application/json");
    }
    serde_json::from_slice(body).map_err(|_| "body is not JSON")
}

/// The outcome of checking a request: `value` when nothing broke the
/// vendor's document, else the problems are recorded in `ledger` and the
/// vendor's refusal, built from their text, is the answer.
pub fn judged<T, R>(
    ledger: &super::faults::Ledger,
    value: T,
    problems: Vec<String>,
    refusal: impl FnOnce(&str) -> R,
) -> Result<T, R> {
    if problems.is_empty() {
        return Ok(value);
    }
    let text = problems.join("; ");
    ledger.violations_found(problems);
    Err(refusal(&text))
}

/// One vendor's contract.
pub struct Contract {
    name: String,
    doc: Value,
}

impl Contract {
    /// Loads `tests/contracts/{vendor}.json`.
    pub fn load(vendor: &str) -> Self {
        let path = format!(
            "{}/tests/contracts/{vendor}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the contract file {path} is part of the repository: {e}"));
        Self {
            name: format!("{vendor}.json"),
            doc: serde_json::from_str(&text).unwrap(),
        }
    }

    /// The schema `name`, to mend what JSON Schema cannot evaluate.
    pub fn schema_mut(&mut self, name: &str) -> &mut Value {
        &mut self.doc["schemas"][name]
    }

    /// A validator for the schema `name`, closed to members it does not list
    /// (so that a misspelt member fails) and refusing its read-only members
    /// (a request may not set them). OpenAPI 3.0's `nullable` is honoured on
    /// the top-level members.
    pub fn body_validator(&self, name: &str) -> jsonschema::Validator {
        let mut schemas = self.doc["schemas"].clone();
        let mut strict = schemas[name].clone();
        assert!(strict.is_object(), "{}: no schema `{name}`", self.name);
        strict["additionalProperties"] = json!(false);
        if let Some(Value::Object(properties)) = strict.get_mut("properties") {
            for schema in properties.values_mut() {
                if schema.get("readOnly") == Some(&json!(true)) {
                    *schema = json!(false);
                } else if schema.get("nullable") == Some(&json!(true)) {
                    *schema = json!({ "anyOf": [schema.clone(), { "type": "null" }] });
                }
            }
        }
        let strict_name = format!("strict{name}");
        schemas[&strict_name] = strict;
        let root = json!({
            "$ref": format!("#/schemas/{strict_name}"),
            "schemas": schemas,
        });
        jsonschema::validator_for(&root).unwrap()
    }

    /// Checks a request's operation and parameters; returns what breaks the
    /// document. `template` is the documented path (`/clients/{clientId}`),
    /// `path` its values by name; `extra_query` names query parameters the
    /// vendor documents elsewhere than in this file.
    pub fn check_request(
        &self,
        method: &str,
        template: &str,
        path: &[(&str, &str)],
        query: &BTreeMap<String, String>,
        extra_query: &[&str],
    ) -> Vec<String> {
        let here = format!("{method} {template}");
        let Some(item) = self.doc["operations"].get(template) else {
            return vec![format!("{here}: path not in {}", self.name)];
        };
        let Some(operation) = item.get(method.to_ascii_lowercase()) else {
            return vec![format!("{here}: method not in {}", self.name)];
        };
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let declared = |place: &str| -> BTreeMap<String, Value> {
            parameters
                .iter()
                .filter(|p| p["in"] == place)
                .map(|p| (p["name"].as_str().unwrap_or_default().to_owned(), p.clone()))
                .collect()
        };
        let mut violations = Vec::new();
        let in_query = declared("query");
        for (key, value) in query {
            match in_query.get(key) {
                Some(parameter) => {
                    if let Some(problem) = type_problem(&parameter["schema"], value) {
                        violations.push(format!("{here}: query `{key}={value}` {problem}"));
                    }
                }
                None if extra_query.contains(&key.as_str()) => {}
                None => violations.push(format!("{here}: undocumented query parameter `{key}`")),
            }
        }
        for (name, parameter) in &in_query {
            if parameter["required"] == json!(true) && !query.contains_key(name) {
                violations.push(format!("{here}: required query parameter `{name}` missing"));
            }
        }
        let in_path = declared("path");
        for (name, value) in path {
            match in_path.get(*name) {
                Some(parameter) => {
                    if let Some(problem) = type_problem(&parameter["schema"], value) {
                        violations.push(format!("{here}: path `{name}={value}` {problem}"));
                    }
                }
                None => violations.push(format!("{here}: undocumented path parameter `{name}`")),
            }
        }
        violations
    }

    /// Validates `body` with `validator`, one line per error.
    pub fn body_problems(
        validator: &jsonschema::Validator,
        here: &str,
        body: &Value,
    ) -> Vec<String> {
        validator
            .iter_errors(body)
            .map(|e| format!("{here}: {e} at `{}`", e.instance_path))
            .collect()
    }
}

/// Why `value` does not fit a parameter schema, if it does not.
fn type_problem(schema: &Value, value: &str) -> Option<String> {
    let schema: &Map<String, Value> = schema.as_object()?;
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => {
            let Ok(n) = value.parse::<i64>() else {
                return Some("is not an integer".into());
            };
            let below = schema
                .get("minimum")
                .and_then(Value::as_i64)
                .is_some_and(|min| n < min);
            let above = schema
                .get("maximum")
                .and_then(Value::as_i64)
                .is_some_and(|max| n > max);
            (below || above).then(|| "is out of the documented range".into())
        }
        Some("boolean") => (!matches!(value, "true" | "false")).then(|| "is not a boolean".into()),
        _ => None,
    }
}
