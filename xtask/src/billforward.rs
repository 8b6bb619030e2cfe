//! The BillForward contract, from the SDK's generated Markdown documents
//! (BillForward publishes no OpenAPI file): the operation table and the
//! parameter tables of `ClientsApi.md`, and the `Client` model of
//! `Client.md`, written in the same shape as the OpenAPI contracts.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::{Failure, header, read, source};

const API: &str = "billforward/ClientsApi.md";
const MODEL: &str = "billforward/Client.md";

/// The contract, read from the documents in `specs`.
pub fn contract(specs: &Path) -> Result<(&'static str, Value), Failure> {
    let api_bytes = read(&specs.join(API))?;
    let model_bytes = read(&specs.join(MODEL))?;
    let api = String::from_utf8_lossy(&api_bytes);
    let model = String::from_utf8_lossy(&model_bytes);
    let mut operations: Map<String, Value> = Map::new();
    for row in table_after(&api, &["Method | HTTP request"])? {
        let [id, request, ..] = row.as_slice() else {
            return Err(format!(
                "{API}: an operation row without a request: {row:?}"
            ));
        };
        let (method, template) = request
            .split_once(' ')
            .ok_or_else(|| format!("{API}: `{request}` is not `METHOD /path`"))?;
        let mut parameters = Vec::new();
        let mut entry = json!({ "id": id });
        for cells in table_after(&api, &[&format!("# **{id}**"), "### Parameters"])? {
            let [name, kind, _, notes, ..] = cells.as_slice() else {
                return Err(format!("{API}: {id}: a short parameter row: {cells:?}"));
            };
            if kind == "Client" {
                entry["body"] = json!("Client");
                continue;
            }
            let placeholder = template
                .split(['{', '}'])
                .skip(1)
                .step_by(2)
                .find(|p| p.to_ascii_lowercase().replace('-', "_") == *name);
            let (place, name) = match placeholder {
                Some(placeholder) => ("path", placeholder),
                None => ("query", name.as_str()),
            };
            parameters.push(json!({
                "in": place,
                "name": name,
                "required": !notes.contains("[optional]"),
                "schema": schema_of(kind)?,
            }));
        }
        entry["parameters"] = Value::Array(parameters);
        let methods = operations
            .entry(template.to_owned())
            .or_insert_with(|| json!({}));
        methods[method.to_ascii_lowercase()] = entry;
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for cells in table_after(&model, &["## Properties"])? {
        let [name, kind, description, notes, ..] = cells.as_slice() else {
            return Err(format!("{MODEL}: a short member row: {cells:?}"));
        };
        let wire = wire_name(name);
        let mut schema = schema_of(kind)?;
        // The description carries the verbs that may set the member; one
        // that POST may not set is the server's own.
        let verbs = description.split("verbs").nth(1).unwrap_or_default();
        if !verbs.contains("POST") {
            schema["readOnly"] = json!(true);
        }
        // Neither `[optional]` nor `[default to …]`: the caller must send it.
        if notes.is_empty() {
            required.push(json!(wire));
        }
        properties.insert(wire, schema);
    }
    let (about, sources) = header(
        "BillForward",
        vec![
            source(API, &api_bytes, None, None),
            source(MODEL, &model_bytes, None, None),
        ],
    );
    let contract = json!({
        "about": about,
        "derived_from": sources,
        "operations": operations,
        "schemas": {
            "Client": { "type": "object", "properties": properties, "required": required },
        },
    });
    Ok(("billforward", contract))
}

/// The JSON Schema of an SDK type name.
fn schema_of(kind: &str) -> Result<Value, Failure> {
    Ok(match kind {
        "str" => json!({ "type": "string" }),
        "datetime" => json!({ "type": "string", "format": "date-time" }),
        "int" => json!({ "type": "integer" }),
        "bool" => json!({ "type": "boolean" }),
        "list[str]" => json!({ "type": "array", "items": { "type": "string" } }),
        other => {
            return Err(format!(
                "BillForward: an SDK type this task does not know: {other}"
            ));
        }
    })
}

/// The wire name of an SDK member name. The API's members are camelCase,
/// and `organization_id` is spelt `organizationID` (PROVIDERS.md, from
/// BillForward's API reference).
fn wire_name(snake: &str) -> String {
    if snake == "organization_id" {
        return "organizationID".into();
    }
    let mut wire = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            wire.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            wire.push(c);
        }
    }
    wire
}

/// The body rows of the first Markdown table after `headings` (each found
/// after the one before), each cell without emphasis, and a link reduced to
/// its text.
fn table_after(text: &str, headings: &[&str]) -> Result<Vec<Vec<String>>, Failure> {
    let mut start = 0;
    for heading in headings {
        start += text[start..]
            .find(heading)
            .ok_or_else(|| format!("BillForward documents: `{heading}` not found"))?;
    }
    let rows = text[start..]
        .lines()
        .skip_while(|line| !line.contains('|'))
        .skip(2)
        .take_while(|line| line.contains('|'))
        .map(|line| line.split('|').map(cell_text).collect())
        .collect();
    Ok(rows)
}

/// `[**text**](target)` or `**text**` as `text`.
fn cell_text(cell: &str) -> String {
    let cell = cell.trim();
    let text = match (cell.strip_prefix('['), cell.rfind("](")) {
        (Some(_), Some(end)) => &cell[1..end],
        _ => cell,
    };
    text.replace('*', "").trim().to_owned()
}
