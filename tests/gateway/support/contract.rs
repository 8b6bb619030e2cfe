//! A vendor's contract (`tests/contracts/{vendor}.json`): the facts of its
//! published API document that the fakes check requests against, distilled
//! by `cargo xtask contracts`. The operation exists, its query and path
//! parameters are documented and well-typed (integers, booleans, enum
//! values), a JSON body fits the named schema, and a form body (the OAuth
//! 2.0 endpoints) holds documented, well-typed members and the required ones.

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

    /// A validator for the schema `name` as documented (open to members it
    /// does not list): for a fake's own answers, such as its discovery
    /// document.
    pub fn answer_validator(&self, name: &str) -> jsonschema::Validator {
        assert!(
            self.doc["schemas"][name].is_object(),
            "{}: no schema `{name}`",
            self.name
        );
        let root = json!({
            "$ref": format!("#/schemas/{name}"),
            "schemas": self.doc["schemas"],
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
        self.check_parameters(method, template, path, query, Some(extra_query))
    }

    /// Checks a request to an OAuth 2.0 endpoint as [`Self::check_request`]
    /// does, except that a query parameter the document does not list is
    /// no fault: "The authorization server MUST ignore unrecognized request
    /// parameters" (RFC 6749 §3.1), so an authorization request may carry
    /// those of the extensions the vendor does not implement.
    pub fn check_oauth_request(
        &self,
        method: &str,
        template: &str,
        path: &[(&str, &str)],
        query: &BTreeMap<String, String>,
    ) -> Vec<String> {
        self.check_parameters(method, template, path, query, None)
    }

    /// Checks the operation and parameters; unrecognized query parameters
    /// are faults unless `extra_query` is `None` (or names them).
    fn check_parameters(
        &self,
        method: &str,
        template: &str,
        path: &[(&str, &str)],
        query: &BTreeMap<String, String>,
        extra_query: Option<&[&str]>,
    ) -> Vec<String> {
        let here = format!("{method} {template}");
        let operation = match self.operation(method, template) {
            Ok(operation) => operation,
            Err(problem) => return vec![problem],
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
                    if let Some(problem) = self.type_problem(&parameter["schema"], value) {
                        violations.push(format!("{here}: query `{key}={value}` {problem}"));
                    }
                }
                None if extra_query.is_none_or(|extra| extra.contains(&key.as_str())) => {}
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
                    if let Some(problem) = self.type_problem(&parameter["schema"], value) {
                        violations.push(format!("{here}: path `{name}={value}` {problem}"));
                    }
                }
                None => violations.push(format!("{here}: undocumented path parameter `{name}`")),
            }
        }
        violations
    }

    /// The operation `method` `template`, or why the document has none.
    fn operation(&self, method: &str, template: &str) -> Result<&Value, String> {
        let here = format!("{method} {template}");
        let Some(item) = self.doc["operations"].get(template) else {
            return Err(format!("{here}: path not in {}", self.name));
        };
        item.get(method.to_ascii_lowercase())
            .ok_or_else(|| format!("{here}: method not in {}", self.name))
    }

    /// Checks the form body (`application/x-www-form-urlencoded`) of a
    /// request to an OAuth 2.0 endpoint against the operation's documented
    /// form; returns what breaks the document. The documented members are
    /// well-typed and the required ones there; where the form names the
    /// schema that applies by one member's value (a discriminator: Okta's
    /// token requests by `grant_type`), that schema is the one. Members the
    /// form does not list are no fault: the server "MUST ignore
    /// unrecognized request parameters" (RFC 6749 §3.2), and the vendors
    /// document some elsewhere (client authentication, PKCE).
    pub fn check_form(
        &self,
        method: &str,
        template: &str,
        form: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let here = format!("{method} {template}");
        let operation = match self.operation(method, template) {
            Ok(operation) => operation,
            Err(problem) => return vec![problem],
        };
        let Some(mut schema) = operation.get("form").map(|s| self.resolved(s)) else {
            return vec![format!("{here}: no form body in {}", self.name)];
        };
        let mut violations = Vec::new();
        if let Some(discriminator) = schema.get("discriminator") {
            let member = discriminator["propertyName"].as_str().unwrap_or_default();
            let value = form.get(member).map(String::as_str).unwrap_or_default();
            match discriminator["mapping"][value].as_str() {
                Some(target) => schema = self.named(target),
                None => violations.push(format!("{here}: `{member}={value}` is not documented")),
            }
        }
        let mut members = BTreeMap::new();
        let mut required = Vec::new();
        self.object_members(schema, &mut members, &mut required);
        for (key, value) in form {
            let problem = members
                .get(key.as_str())
                .and_then(|member| self.type_problem(member, value));
            if let Some(problem) = problem {
                violations.push(format!("{here}: form `{key}={value}` {problem}"));
            }
        }
        for name in required {
            if !form.contains_key(&name) {
                violations.push(format!("{here}: required form member `{name}` missing"));
            }
        }
        violations
    }

    /// `schema`, with a reference into the contract's schemas followed.
    fn resolved<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.named(reference),
            None => schema,
        }
    }

    /// The schema `reference` (`#/schemas/{name}`) names, resolved.
    fn named(&self, reference: &str) -> &Value {
        let name = reference.trim_start_matches("#/schemas/");
        self.resolved(&self.doc["schemas"][name])
    }

    /// The members an object schema lists, through `allOf`, and the
    /// required ones.
    fn object_members<'a>(
        &'a self,
        schema: &'a Value,
        members: &mut BTreeMap<&'a str, &'a Value>,
        required: &mut Vec<String>,
    ) {
        let schema = self.resolved(schema);
        if let Some(Value::Object(properties)) = schema.get("properties") {
            members.extend(properties.iter().map(|(k, v)| (k.as_str(), v)));
        }
        if let Some(Value::Array(names)) = schema.get("required") {
            required.extend(names.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            self.object_members(part, members, required);
        }
    }

    /// Why `value` does not fit a parameter's or form member's schema, if
    /// it does not: integers, booleans and enumerated values are checked
    /// (through references and `allOf`).
    fn type_problem(&self, schema: &Value, value: &str) -> Option<String> {
        let schema = self.resolved(schema);
        if let Some(problem) = type_problem(schema, value) {
            return Some(problem);
        }
        if let Some(Value::Array(allowed)) = schema.get("enum") {
            if !allowed.iter().any(|v| v.as_str() == Some(value)) {
                return Some(format!("is not one of the documented values {allowed:?}"));
            }
        }
        schema["allOf"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|part| self.type_problem(part, value))
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
