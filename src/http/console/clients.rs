//! The Clients page (a table with filters, a page at a time by key) and
//! each client's page: its metadata, its trail, and the delete and
//! rotate-secret actions, each confirmed on a page of its own and posted
//! with the session's CSRF token.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::page::{Page, text, when};
use super::{Console, ConsoleError, Form, Operator, answered, console};
use crate::domain::{ClientId, ClientState};
use crate::http::HttpState;
use crate::store::directory::{ClientFilter, ListedClient, Origin, PageAfter, Used};
use crate::store::trail::TrailEntry;

/// Clients per page.
const PAGE_SIZE: u32 = 50;

/// The trail's actions the gateway takes on its own (the others without
/// an operator are the client's own, through RFC 7591/7592).
const GATEWAY_ACTIONS: [&str; 4] = ["expire", "idle", "reconcile_delete", "document_unused"];

/// Trail entries shown on a client's page.
const TRAIL_SHOWN: u32 = 50;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// The choices of the "last used" filter: its value, its label, and the
/// filter it means, given the time.
const USED_CHOICES: [(&str, &str); 7] = [
    ("never", "never"),
    ("1d", "in the last day"),
    ("7d", "in the last 7 days"),
    ("30d", "in the last 30 days"),
    ("idle-7d", "not for 7 days"),
    ("idle-30d", "not for 30 days"),
    ("idle-90d", "not for 90 days"),
];

/// `GET /console/clients`.
pub async fn list(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    answered(
        async {
            let console = console(&state)?;
            let operator = console.viewer(&headers).await?;
            let query = Form::parse(query.unwrap_or_default().as_bytes());
            let filter = filter_of(&query, console.clock.now_unix())?;
            let after = query.get("after").map(cursor_of).transpose()?;
            let found = console
                .directory
                .find(&filter, after.as_ref(), PAGE_SIZE + 1)
                .await?;
            Ok(list_page(&operator, &query, found))
        }
        .await,
    )
}

/// The Clients page for `found` (one more than a page, if there are more).
fn list_page(operator: &Operator, query: &Form, mut found: Vec<ListedClient>) -> Response {
    let more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let mut body = filter_form(query);
    if found.is_empty() {
        body.push_str("<p>No client matches.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th>Name</th><th>Client id</th><th>Software</th>\
             <th>Redirect hosts</th><th>State</th><th>Registered</th><th>Last used</th>\
             <th>Origin</th></tr></thead><tbody>",
        );
        for listed in &found {
            body.push_str(&row(listed));
        }
        body.push_str("</tbody></table>");
    }
    if let (true, Some(last)) = (more, found.last()) {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in &query.0 {
            if key != "after" && !value.is_empty() {
                next.append_pair(key, value);
            }
        }
        next.append_pair(
            "after",
            &format!("{}.{}", last.client.issued_at, last.client.client_id),
        );
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"/console/clients?{}\">Next page</a></p>",
            text(&next.finish())
        );
    }
    Page::ok("Clients", operator.signed_in(), body).into_response()
}

/// One client's row of the table.
fn row(listed: &ListedClient) -> String {
    let client = &listed.client;
    let id = client.client_id.as_str();
    let name = client
        .metadata
        .client_name
        .plain
        .as_deref()
        .unwrap_or("(no name)");
    let origin = match &listed.document_url {
        Some(url) => format!("document <code>{}</code>", text(url)),
        None => "registered".to_owned(),
    };
    format!(
        "<tr><td><a href=\"/console/clients/{link}\"><bdi>{name}</bdi></a></td>\
         <td><code>{id}</code></td><td><bdi>{software}</bdi></td><td>{hosts}</td><td>{state}</td><td>{registered}</td>\
         <td>{used}</td><td>{origin}</td></tr>",
        link = text(&encode_segment(id)),
        name = text(name),
        id = text(id),
        software = text(client.metadata.software_id.as_deref().unwrap_or("")),
        hosts = text(&client.metadata.redirect_hosts().join(" ")),
        state = client.state.as_str(),
        registered = when(client.issued_at),
        used = listed.last_used_at.map_or_else(|| "never".to_owned(), when),
    )
}

/// The filter form, showing the filters of `query`.
fn filter_form(query: &Form) -> String {
    let field = |name: &str| text(query.get(name).unwrap_or_default());
    let select = |name: &str, choices: &[(&str, &str)]| {
        let chosen = query.get(name).unwrap_or_default();
        let mut options = String::from("<option value=\"\">any</option>");
        for (value, label) in choices {
            let selected = if *value == chosen { " selected" } else { "" };
            let _ = write!(
                options,
                "<option value=\"{value}\"{selected}>{label}</option>"
            );
        }
        format!("<select name=\"{name}\">{options}</select>")
    };
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/console/clients\">\
         <label>Software id<input name=\"software\" value=\"{software}\"></label>\
         <label>Redirect host<input name=\"host\" value=\"{host}\"></label>\
         <label>Name begins with<input name=\"name\" value=\"{name}\"></label>\
         <label>State{state}</label><label>Origin{origin}</label>\
         <label>Registered from<input type=\"date\" name=\"from\" value=\"{from}\"></label>\
         <label>Registered before<input type=\"date\" name=\"until\" value=\"{until}\"></label>\
         <label>Last used{used}</label><button type=\"submit\">Find</button></form>",
        software = field("software"),
        host = field("host"),
        name = field("name"),
        from = field("from"),
        until = field("until"),
        state = select(
            "state",
            &[
                ("active", "active"),
                ("pending", "pending"),
                ("deleting", "deleting")
            ]
        ),
        origin = select(
            "origin",
            &[
                ("registered", "registered"),
                ("document", "metadata document")
            ]
        ),
        used = select("used", &USED_CHOICES),
    )
}

/// The directory filter a query asks for, at `now`.
fn filter_of(query: &Form, now: i64) -> Result<ClientFilter, ConsoleError> {
    let state = query
        .get("state")
        .map(|state| {
            ClientState::parse(state)
                .ok_or_else(|| ConsoleError::BadRequest(format!("no state `{state}`")))
        })
        .transpose()?;
    let origin = match query.get("origin") {
        None => None,
        Some("registered") => Some(Origin::Registered),
        Some("document") => Some(Origin::Document),
        Some(other) => return Err(ConsoleError::BadRequest(format!("no origin `{other}`"))),
    };
    let used = match query.get("used") {
        None => None,
        Some("never") => Some(Used::Never),
        Some(choice) => {
            let (idle, days) = match choice.strip_prefix("idle-") {
                Some(days) => (true, days),
                None => (false, choice),
            };
            let days: i64 = days
                .strip_suffix('d')
                .and_then(|days| days.parse().ok())
                .filter(|days| USED_CHOICES.iter().any(|(value, _)| *value == choice) && *days > 0)
                .ok_or_else(|| ConsoleError::BadRequest(format!("no choice `{choice}`")))?;
            let since = now - days * DAY;
            Some(if idle {
                Used::NotSince(since)
            } else {
                Used::Since(since)
            })
        }
    };
    Ok(ClientFilter {
        software_id: query.get("software").map(|s| s.trim().to_owned()),
        redirect_host: query.get("host").map(|h| h.trim().to_ascii_lowercase()),
        name_prefix: query.get("name").map(|n| n.trim().to_owned()),
        state,
        registered_from: query.get("from").map(day_of).transpose()?,
        registered_until: query
            .get("until")
            .map(day_of)
            .transpose()?
            .map(|day| day + DAY),
        used,
        origin,
    })
}

/// The start of a day given as `YYYY-MM-DD`, in UTC.
fn day_of(date: &str) -> Result<i64, ConsoleError> {
    humantime::parse_rfc3339_weak(&format!("{date} 00:00:00"))
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|since| i64::try_from(since.as_secs()).ok())
        .ok_or_else(|| ConsoleError::BadRequest(format!("`{date}` is not a date (YYYY-MM-DD)")))
}

/// The page cursor `after` names: `ISSUED_AT.CLIENT_ID`.
fn cursor_of(after: &str) -> Result<PageAfter, ConsoleError> {
    after
        .split_once('.')
        .and_then(|(issued_at, id)| {
            Some(PageAfter {
                issued_at: issued_at.parse().ok()?,
                client_id: ClientId::new(id.to_owned()),
            })
        })
        .ok_or_else(|| ConsoleError::BadRequest("the page cursor is not one of ours".into()))
}

/// `GET /console/clients/{client_id}`.
pub async fn show(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    answered(
        async {
            let console = console(&state)?;
            let operator = console.viewer(&headers).await?;
            let trail = state
                .service
                .journal()
                .trail_of(&client_id, TRAIL_SHOWN)
                .await?;
            let listed = match listed(console, &client_id).await {
                // A removed client's trail stays: it records the removal.
                Err(ConsoleError::NotFound) if !trail.is_empty() => None,
                other => Some(other?),
            };
            let mut body = match &listed {
                Some(listed) => details(listed, state.service.backend_name()),
                None => format!(
                    "<p role=\"status\">The client <code>{}</code> no longer exists; its \
                     trail stays.</p>",
                    text(&client_id)
                ),
            };
            body.push_str(&trail_table(&trail));
            if let Some(listed) = &listed {
                body.push_str(&actions(listed));
            }
            Ok(Page::ok("Client", operator.signed_in(), body).into_response())
        }
        .await,
    )
}

/// A client's trail, newest first.
fn trail_table(trail: &[TrailEntry]) -> String {
    let mut html = String::from(
        "<h2>Trail</h2><table><thead><tr><th>When</th><th>Action</th>\
         <th>Outcome</th><th>By</th></tr></thead><tbody>",
    );
    for entry in trail {
        let by =
            entry
                .actor
                .as_deref()
                .unwrap_or(if GATEWAY_ACTIONS.contains(&entry.action.as_str()) {
                    "the gateway"
                } else {
                    "the client"
                });
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(entry.at),
            text(&entry.action),
            text(&entry.outcome),
            text(by)
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The actions a client's page offers.
fn actions(listed: &ListedClient) -> String {
    let link = text(&encode_segment(listed.client.client_id.as_str()));
    let mut html = String::from("<h2>Actions</h2><p>");
    if listed.client.metadata.needs_client_secret() {
        let _ = write!(
            html,
            "<a href=\"/console/clients/{link}/rotate-secret\">Rotate its secret…</a> · "
        );
    }
    let _ = write!(
        html,
        "<a href=\"/console/clients/{link}/delete\">Delete it…</a></p>"
    );
    html
}

/// What a client's page says of it.
fn details(listed: &ListedClient, backend: &str) -> String {
    let client = &listed.client;
    let metadata = serde_json::to_string_pretty(&client.metadata.to_document())
        .unwrap_or_else(|_| "(not shown)".into());
    let name = client
        .metadata
        .client_name
        .plain
        .as_deref()
        .unwrap_or("(no name)");
    let origin = listed.document_url.as_deref().map_or_else(
        || "registered through /register".to_owned(),
        |url| format!("made for the metadata document <code>{}</code>", text(url)),
    );
    format!(
        "<h2><bdi>{name}</bdi></h2><table><tbody>\
         <tr><th>Client id</th><td><code>{id}</code></td></tr>\
         <tr><th>Back end</th><td>{backend} (the same id there)</td></tr>\
         <tr><th>State</th><td>{state}</td></tr>\
         <tr><th>Software id</th><td><bdi>{software}</bdi></td></tr>\
         <tr><th>Origin</th><td>{origin}</td></tr>\
         <tr><th>Policy</th><td>{policy}</td></tr>\
         <tr><th>Registered</th><td>{registered}</td></tr>\
         <tr><th>Last used</th><td>{used}</td></tr>\
         <tr><th>Expires</th><td>{expires}</td></tr>\
         </tbody></table><h2>Metadata</h2><pre>{metadata}</pre>",
        name = text(name),
        id = text(client.client_id.as_str()),
        backend = text(backend),
        state = client.state.as_str(),
        software = text(client.metadata.software_id.as_deref().unwrap_or("")),
        policy = text(&client.policy),
        registered = when(client.issued_at),
        used = listed.last_used_at.map_or_else(|| "never".to_owned(), when),
        expires = client.expires_at.map_or_else(|| "never".to_owned(), when),
        metadata = text(&metadata),
    )
}

/// `GET /console/clients/{client_id}/delete`: asks to confirm.
pub async fn confirm_delete(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    confirm(&state, &headers, &client_id, Confirmation::Delete).await
}

/// `GET /console/clients/{client_id}/rotate-secret`: asks to confirm.
pub async fn confirm_rotation(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    confirm(&state, &headers, &client_id, Confirmation::Rotate).await
}

/// An action that is confirmed first.
#[derive(Clone, Copy)]
enum Confirmation {
    Delete,
    Rotate,
}

impl Confirmation {
    /// The path of the action under the client's page, its title, what it
    /// does, and the button.
    fn words(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Self::Delete => (
                "delete",
                "Delete a client",
                "This removes the client here and at the provider; its app can no longer \
                 sign in or manage it.",
                "Delete the client",
            ),
            Self::Rotate => (
                "rotate-secret",
                "Rotate a secret",
                "This gives the client a new secret, here and at the provider; the old one \
                 stops working, and the new one is shown once.",
                "Rotate the secret",
            ),
        }
    }
}

/// The confirmation page of `action` on `client_id`.
async fn confirm(
    state: &HttpState,
    headers: &HeaderMap,
    client_id: &str,
    action: Confirmation,
) -> Response {
    answered(
        async {
            let console = console(state)?;
            let operator = console.viewer(headers).await?;
            let listed = listed(console, client_id).await?;
            if matches!(action, Confirmation::Rotate)
                && !listed.client.metadata.needs_client_secret()
            {
                return Err(ConsoleError::BadRequest(
                    "this client has no secret to rotate".into(),
                ));
            }
            let (path, title, what, button) = action.words();
            let name = listed
                .client
                .metadata
                .client_name
                .plain
                .as_deref()
                .unwrap_or("(no name)");
            let body = format!(
                "<p>{what}</p><p>Client: <strong><bdi>{name}</bdi></strong> <code>{id}</code></p>\
                 <form method=\"post\" action=\"/console/clients/{link}/{path}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"confirm\" value=\"{id}\">\
                 <button class=\"danger\" type=\"submit\">{button}</button> \
                 <a href=\"/console/clients/{link}\">Cancel</a></form>",
                name = text(name),
                id = text(client_id),
                link = text(&encode_segment(client_id)),
                csrf = text(operator.csrf()),
            );
            Ok(Page::ok(title, operator.signed_in(), body).into_response())
        }
        .await,
    )
}

/// `POST /console/clients/{client_id}/delete`.
pub async fn delete(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    act(&state, &headers, &client_id, &body, Confirmation::Delete).await
}

/// `POST /console/clients/{client_id}/rotate-secret`.
pub async fn rotate(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    act(&state, &headers, &client_id, &body, Confirmation::Rotate).await
}

/// Does the confirmed `action` on `client_id`, as the signed-in operator.
async fn act(
    state: &HttpState,
    headers: &HeaderMap,
    client_id: &str,
    body: &Bytes,
    action: Confirmation,
) -> Response {
    answered(
        async {
            let console = console(state)?;
            let operator = confirmed(console, headers, body, client_id).await?;
            let actor = operator.actor();
            let (title, body) = match action {
                Confirmation::Delete => {
                    state.service.remove(client_id, &actor).await?;
                    let body = format!(
                        "<p role=\"status\">The client <code>{}</code> was deleted.</p>\
                         <p><a href=\"/console/clients\">Back to the clients</a></p>",
                        text(client_id)
                    );
                    ("Client deleted", body)
                }
                Confirmation::Rotate => {
                    let secret = state.service.rotate_secret(client_id, &actor).await?;
                    let body = format!(
                        "<p role=\"status\">The client <code>{id}</code> has a new secret. \
                         It is shown this once; hand it to the client's owner.</p>\
                         <pre>{secret}</pre>\
                         <p><a href=\"/console/clients/{link}\">Back to the client</a></p>",
                        id = text(client_id),
                        secret = text(secret.expose()),
                        link = text(&encode_segment(client_id)),
                    );
                    ("Secret rotated", body)
                }
            };
            Ok(Page::ok(title, operator.signed_in(), body).into_response())
        }
        .await,
    )
}

/// The operator of a confirmed action's post on `client_id`.
async fn confirmed(
    console: &Console,
    headers: &HeaderMap,
    body: &Bytes,
    client_id: &str,
) -> Result<Operator, ConsoleError> {
    let (operator, form) = console.actor(headers, body).await?;
    if form.get("confirm") != Some(client_id) {
        return Err(ConsoleError::BadRequest(
            "the action was not confirmed for this client".into(),
        ));
    }
    Ok(operator)
}

/// The client `client_id`, as the directory lists it.
async fn listed(console: &Console, client_id: &str) -> Result<ListedClient, ConsoleError> {
    console
        .directory
        .listed(&ClientId::new(client_id.to_owned()))
        .await?
        .ok_or(ConsoleError::NotFound)
}

/// `segment` percent-encoded for a path segment.
pub(super) fn encode_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
