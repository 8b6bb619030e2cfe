//! The Provider page: the back end's health as this instance sees it (the
//! breaker's shedding, calls by operation and outcome, their latency, from
//! the same metrics `/metrics` exports), the last reconcile pass's report,
//! the rows waiting for reconcile, and the metadata documents held.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::clients::encode_segment;
use super::page::{Page, text, when};
use super::{Console, ConsoleError, answered, console};
use crate::domain::ClientState;
use crate::http::HttpState;
use crate::reconcile::ReconcileReport;
use crate::store::directory::ClientFilter;
use crate::telemetry::{Sample, samples};

/// Documents shown.
const DOCUMENTS_SHOWN: u32 = 50;

/// Rows counted per state before the page says "at least".
const ROWS_COUNTED: u32 = 1000;

/// Ids shown per list of the reconcile report.
const IDS_SHOWN: usize = 10;

/// `GET /console/provider`.
pub async fn show(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    answered(
        async {
            let console = console(&state)?;
            let operator = console.viewer(&headers).await?;
            let backend = state.service.backend_name();
            let mut body = format!("<p>Back end: <strong>{}</strong></p>", text(backend));
            body.push_str(&health(backend));
            body.push_str(&waiting(console).await?);
            body.push_str(&reconciled(console.reconciler.last_report()));
            body.push_str(&documents(console).await?);
            Ok(Page::ok("Provider", operator.signed_in(), body).into_response())
        }
        .await,
    )
}

/// The breaker, calls and latency of `backend`, from the metrics.
fn health(backend: &str) -> String {
    let of_backend = |sample: &Sample| sample.label("provider") == Some(backend);
    let shed = samples("dcr_provider_breaker_shed_share")
        .iter()
        .filter(|s| of_backend(s))
        .map(|s| s.value)
        .fold(0.0, f64::max);
    let breaker = if shed > 0.0 {
        format!("open: shedding {:.0}% of calls", shed * 100.0)
    } else {
        "closed: every call goes out".to_owned()
    };
    let mut operations: BTreeMap<String, Calls> = BTreeMap::new();
    for sample in samples("dcr_provider_call")
        .iter()
        .filter(|s| of_backend(s))
    {
        let Some(operation) = sample.label("operation") else {
            continue;
        };
        let calls = operations.entry(operation.to_owned()).or_default();
        match sample.name.as_str() {
            "dcr_provider_calls_total" => {
                let outcome = sample.label("outcome").unwrap_or_default();
                calls.total += sample.value;
                if matches!(outcome, "unavailable" | "indeterminate") {
                    calls.failed += sample.value;
                }
            }
            "dcr_provider_call_duration_seconds_bucket" => {
                if let Some(le) = sample.label("le").and_then(|le| le.parse::<f64>().ok()) {
                    calls.buckets.push((le, sample.value));
                }
            }
            _ => {}
        }
    }
    let mut html = format!(
        "<h2>Health (this instance)</h2><p>Breaker: <strong>{breaker}</strong></p>\
         <table><thead><tr><th>Operation</th><th>Calls</th><th>Failed</th>\
         <th>Failure rate</th><th>p50</th><th>p99</th></tr></thead><tbody>"
    );
    for (operation, calls) in &mut operations {
        calls.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rate = if calls.total > 0.0 {
            format!("{:.1}%", calls.failed / calls.total * 100.0)
        } else {
            "-".to_owned()
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{rate}</td><td>{}</td><td>{}</td></tr>",
            text(operation),
            calls.total,
            calls.failed,
            calls.quantile(0.5),
            calls.quantile(0.99),
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// One operation's calls, from the metrics.
#[derive(Default)]
struct Calls {
    total: f64,
    failed: f64,
    /// The latency histogram: (upper bound in seconds, calls at or under).
    buckets: Vec<(f64, f64)>,
}

impl Calls {
    /// The bucket bound under which `q` of the timed calls fell, as text.
    fn quantile(&self, q: f64) -> String {
        let Some(&(_, count)) = self.buckets.last() else {
            return "-".to_owned();
        };
        if count <= 0.0 {
            return "-".to_owned();
        }
        self.buckets
            .iter()
            .find(|(_, under)| *under >= q * count)
            .map_or_else(
                || "-".to_owned(),
                |(le, _)| {
                    if le.is_infinite() {
                        "slower than the largest bucket".to_owned()
                    } else {
                        format!("≤ {} ms", (le * 1000.0).round())
                    }
                },
            )
    }
}

/// The rows reconcile has yet to settle.
async fn waiting(console: &Console) -> Result<String, ConsoleError> {
    let mut html = String::from("<h2>Waiting for reconcile</h2><ul>");
    for state in [ClientState::Pending, ClientState::Deleting] {
        let filter = ClientFilter {
            state: Some(state),
            ..ClientFilter::default()
        };
        let found = console.directory.find(&filter, None, ROWS_COUNTED).await?;
        let count = if found.len() >= ROWS_COUNTED as usize {
            format!("at least {ROWS_COUNTED}")
        } else {
            found.len().to_string()
        };
        let _ = write!(
            html,
            "<li><a href=\"/console/clients?state={name}\">{name}</a>: {count}</li>",
            name = state.as_str()
        );
    }
    html.push_str("</ul>");
    Ok(html)
}

/// The last reconcile pass's report.
fn reconciled(last: Option<(i64, ReconcileReport)>) -> String {
    let Some((at, report)) = last else {
        return "<h2>Last reconcile</h2><p>No pass yet on this instance.</p>".to_owned();
    };
    let lists = [
        (
            "Drift: clients the provider holds that the gateway does not know",
            &report.unknown_to_gateway,
        ),
        (
            "Drift: active clients the provider does not hold",
            &report.missing_at_provider,
        ),
        ("Possible orphans", &report.abandoned_possible_orphans),
        ("Orphans removed at the provider", &report.orphans_removed),
        (
            "Abandoned registrations removed at the provider",
            &report.abandoned_removed_at_provider,
        ),
        (
            "Abandoned registrations that never reached it",
            &report.abandoned_never_created,
        ),
        ("Deletions completed", &report.deletions_completed),
        ("Replaces sent again", &report.replaces_completed),
    ];
    let mut html = format!(
        "<h2>Last reconcile</h2><p>Ended {} ({}).</p><table><tbody>",
        when(at),
        if report.has_drift() {
            "drift found"
        } else {
            "no drift"
        }
    );
    for (what, ids) in lists {
        let shown: Vec<String> = ids
            .iter()
            .take(IDS_SHOWN)
            .map(|id| format!("<code>{}</code>", text(id.as_str())))
            .collect();
        let _ = write!(
            html,
            "<tr><th>{what}</th><td>{}</td><td>{}</td></tr>",
            ids.len(),
            shown.join(" ")
        );
    }
    let _ = write!(
        html,
        "<tr><th>Rows that failed</th><td>{}</td><td>{}</td></tr></tbody></table>",
        report.failed.len(),
        report
            .failed
            .iter()
            .take(IDS_SHOWN)
            .map(|failure| text(failure))
            .collect::<Vec<_>>()
            .join("<br>")
    );
    html
}

/// The metadata documents held, most recently used first.
async fn documents(console: &Console) -> Result<String, ConsoleError> {
    let documents = console.documents.documents(DOCUMENTS_SHOWN).await?;
    if documents.is_empty() {
        return Ok("<h2>Metadata documents</h2><p>None held.</p>".to_owned());
    }
    let mut html = String::from(
        "<h2>Metadata documents</h2><table><thead><tr><th>Document</th><th>Client</th>\
         <th>Fresh until</th><th>Last used</th></tr></thead><tbody>",
    );
    for (url, mapping) in &documents {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td><a href=\"/console/clients/{}\">{}</a></td>\
             <td>{}</td><td>{}</td></tr>",
            text(url),
            text(&encode_segment(&mapping.client_id)),
            text(&mapping.client_id),
            when(mapping.fresh_until),
            when(mapping.last_used),
        );
    }
    html.push_str("</tbody></table>");
    Ok(html)
}
