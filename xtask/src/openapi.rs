//! Contracts from a vendor's OpenAPI 3 document (Okta, Ory Hydra, Zendesk):
//! the client-management operations with their parameters and request body,
//! the OAuth 2.0 endpoints the authorization front calls (Hydra, Okta) with
//! their form bodies, and every schema those reach, cut down to the keywords
//! that decide whether a request is valid.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::{Failure, header, read, source};

/// Which part of a vendor's document the fake checks.
pub struct Vendor {
    /// Contract file name (`tests/contracts/{contract}.json`).
    pub contract: &'static str,
    /// The vendor, as the header names it.
    pub vendor: &'static str,
    /// The document's file name in the specs folder.
    pub document: &'static str,
    /// The path templates of the client API, and of the OAuth 2.0 endpoints
    /// the authorization front (and a test playing the resource server) calls.
    pub paths: &'static [&'static str],
    /// Schemas the fake checks bodies with that no operation names (Zendesk
    /// documents no request body for its client writes), or its own answers
    /// with (the discovery documents).
    pub extra_schemas: &'static [&'static str],
    /// The version, for a document whose `info.version` is empty.
    pub unstated_version: Option<&'static str>,
}

/// Okta's OAuth client API (Dynamic Client Registration endpoints), and a
/// custom authorization server's endpoints (with the org's discovery).
pub const OKTA: Vendor = Vendor {
    contract: "okta",
    vendor: "Okta",
    document: "okta-oauth-2026.06.3.yaml",
    paths: &[
        "/oauth2/v1/clients",
        "/oauth2/v1/clients/{clientId}",
        "/oauth2/v1/clients/{clientId}/lifecycle/newSecret",
        "/.well-known/openid-configuration",
        "/oauth2/{authorizationServerId}/.well-known/openid-configuration",
        "/oauth2/{authorizationServerId}/v1/authorize",
        "/oauth2/{authorizationServerId}/v1/token",
        "/oauth2/{authorizationServerId}/v1/revoke",
        "/oauth2/{authorizationServerId}/v1/userinfo",
    ],
    extra_schemas: &["OidcMetadata"],
    unstated_version: None,
};

/// Ory Hydra's admin client API, and its public OAuth 2.0 endpoints.
pub const HYDRA: Vendor = Vendor {
    contract: "hydra",
    vendor: "Ory Hydra",
    document: "ory-hydra-v26.2.0-api.json",
    paths: &[
        "/admin/clients",
        "/admin/clients/{id}",
        "/.well-known/openid-configuration",
        "/oauth2/auth",
        "/oauth2/token",
        "/oauth2/revoke",
        "/userinfo",
    ],
    extra_schemas: &["oidcConfiguration"],
    unstated_version: Some("v26.2.0 (from the file name; info.version is empty)"),
};

/// Zendesk's OAuth clients API.
pub const ZENDESK: Vendor = Vendor {
    contract: "zendesk",
    vendor: "Zendesk",
    document: "zendesk-support-oas.yaml",
    paths: &[
        "/api/v2/oauth/clients",
        "/api/v2/oauth/clients/{oauth_client_id}",
        "/api/v2/oauth/clients/{oauth_client_id}/generate_secret",
    ],
    extra_schemas: &["OAuthClientObject"],
    unstated_version: None,
};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// JSON Schema keywords that decide validity, plus OpenAPI's `readOnly` and
/// `nullable` (and `discriminator`, handled apart). Everything else
/// (descriptions, examples, vendor extensions) is prose and stays out.
const RULE_KEYWORDS: [&str; 25] = [
    "type",
    "enum",
    "const",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
    "readOnly",
    "nullable",
    "$ref",
    "not",
    "items",
    "additionalProperties",
    "properties",
];

/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 3] = ["allOf", "anyOf", "oneOf"];

/// The contract of `vendor`, read from its document in `specs`.
pub fn contract(specs: &Path, vendor: &Vendor) -> Result<(&'static str, Value), Failure> {
    let path = specs.join(vendor.document);
    let bytes = read(&path)?;
    let doc: Value = if vendor.document.ends_with(".json") {
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_norway::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let mut roots: Vec<String> = vendor
        .extra_schemas
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut operations = Map::new();
    for template in vendor.paths {
        let item = doc["paths"]
            .get(*template)
            .ok_or_else(|| format!("{}: no path {template}", vendor.document))?;
        let mut methods = Map::new();
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let parameters: Vec<Value> = [item.get("parameters"), operation.get("parameters")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                .flatten()
                .map(|p| parameter(&doc, p))
                .collect();
            references(&Value::Array(parameters.clone()), &mut roots);
            let mut entry = json!({ "parameters": parameters });
            if let Some(id) = operation.get("operationId") {
                entry["id"] = id.clone();
            }
            let body = operation
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(Value::as_str)
                .and_then(schema_name);
            if let Some(body) = body {
                entry["body"] = json!(body);
                roots.push(body.to_owned());
            }
            // OAuth 2.0 endpoints take forms (RFC 6749 §4.1.3, RFC 7009 §2.1).
            let form =
                operation.pointer("/requestBody/content/application~1x-www-form-urlencoded/schema");
            if let Some(form) = form {
                let form = rules(form);
                references(&form, &mut roots);
                entry["form"] = form;
            }
            methods.insert(method.to_owned(), entry);
        }
        operations.insert((*template).to_owned(), Value::Object(methods));
    }
    let (about, sources) = header(
        vendor.vendor,
        vec![source(
            vendor.document,
            &bytes,
            doc.pointer("/info/title").and_then(Value::as_str),
            doc.pointer("/info/version")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .or(vendor.unstated_version),
        )],
    );
    let contract = json!({
        "about": about,
        "derived_from": sources,
        "operations": operations,
        "schemas": reachable_schemas(&doc, roots, vendor.document)?,
    });
    Ok((vendor.contract, contract))
}

/// A parameter with its `$ref` followed: where, name, whether required, and
/// its schema's rules.
fn parameter(doc: &Value, parameter: &Value) -> Value {
    let parameter = match parameter.get("$ref").and_then(Value::as_str) {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => parameter,
    };
    json!({
        "in": parameter["in"],
        "name": parameter["name"],
        "required": parameter["required"] == json!(true),
        "schema": rules(parameter.get("schema").unwrap_or(&json!({}))),
    })
}

/// The component name of a `#/components/schemas/{name}` reference.
fn schema_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/components/schemas/")
}

/// Every schema named in `roots` or reached from them, with its rules.
fn reachable_schemas(doc: &Value, roots: Vec<String>, document: &str) -> Result<Value, Failure> {
    let mut seen = BTreeSet::new();
    let mut pending = roots;
    let mut schemas = Map::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let schema = doc
            .pointer(&format!("/components/schemas/{name}"))
            .ok_or_else(|| format!("{document}: no schema {name}"))?;
        let distilled = rules(schema);
        references(&distilled, &mut pending);
        schemas.insert(name, distilled);
    }
    Ok(Value::Object(schemas))
}

/// Pushes the schema names `schema` refers to.
fn references(schema: &Value, into: &mut Vec<String>) {
    match schema {
        Value::Object(members) => {
            for (key, value) in members {
                match (key.as_str(), value.as_str()) {
                    ("$ref", Some(reference)) => {
                        if let Some(name) = reference.strip_prefix("#/schemas/") {
                            into.push(name.to_owned());
                        }
                    }
                    // A discriminator's mapping names schemas by plain text
                    // (and a property called `mapping` is walked as usual).
                    ("mapping", None) => {
                        let targets = value.as_object().into_iter().flat_map(|m| m.values());
                        into.extend(
                            targets
                                .filter_map(|target| target.as_str()?.strip_prefix("#/schemas/"))
                                .map(str::to_owned),
                        );
                        references(value, into);
                    }
                    _ => references(value, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, into)),
        _ => {}
    }
}

/// An OpenAPI discriminator: its member and, where given, the schema each
/// value selects, as references into the contract's own `schemas`.
fn discriminator(value: &Value) -> Value {
    let mut out = json!({ "propertyName": value["propertyName"] });
    if let Some(mapping) = value.get("mapping").and_then(Value::as_object) {
        let mapped: Map<String, Value> = mapping
            .iter()
            .filter_map(|(key, target)| {
                let name = schema_name(target.as_str()?)?;
                Some((key.clone(), json!(format!("#/schemas/{name}"))))
            })
            .collect();
        out["mapping"] = Value::Object(mapped);
    }
    out
}

/// A schema cut down to its rules, with references pointing into the
/// contract's own `schemas`.
fn rules(schema: &Value) -> Value {
    let Some(members) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in members {
        let kept = match key.as_str() {
            "$ref" => value
                .as_str()
                .and_then(schema_name)
                .map(|name| json!(format!("#/schemas/{name}"))),
            "properties" => value.as_object().map(|properties| {
                Value::Object(
                    properties
                        .iter()
                        .map(|(name, s)| (name.clone(), rules(s)))
                        .collect(),
                )
            }),
            "items" | "not" | "additionalProperties" => Some(rules(value)),
            // Which schema applies, by the value of one member (Okta's token
            // requests, by `grant_type`): the names, pointing into `schemas`.
            "discriminator" => Some(discriminator(value)),
            list if SCHEMA_LISTS.contains(&list) => value
                .as_array()
                .map(|schemas| Value::Array(schemas.iter().map(rules).collect())),
            rule if RULE_KEYWORDS.contains(&rule) => Some(value.clone()),
            _ => None,
        };
        if let Some(kept) = kept {
            out.insert(key.clone(), kept);
        }
    }
    Value::Object(out)
}
