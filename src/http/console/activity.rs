//! The Activity page: what the gateway did per hour over the last two days
//! and per day over the last thirty, one chart per kind (registrations,
//! RFC 7592 calls, logins, token grants, refusals, rate-limit hits), from
//! the journal's counts, summed over instances; and who hit a rate limit
//! lately on this instance.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::chart::bars;
use super::page::{Page, text, when};
use super::{answered, console};
use crate::http::HttpState;
use crate::http::rate_limit::LimitHit;
use crate::registration::journal::hour_of;
use crate::store::activity::Activity;

/// Hours of the hourly charts.
const HOURS: i64 = 48;
/// Days of the daily charts.
const DAYS: i64 = 30;

/// `GET /console/activity`.
pub async fn show(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    answered(
        async {
            let console = console(&state)?;
            let operator = console.viewer(&headers).await?;
            let this_hour = hour_of(console.clock.now_unix());
            let this_day = this_hour - this_hour.rem_euclid(86_400);
            let first_day = this_day - (DAYS - 1) * 86_400;
            let first_hour = this_hour - (HOURS - 1) * 3600;
            let counts = state
                .service
                .journal()
                .activity_since(first_day.min(first_hour))
                .await?;
            let mut by_hour: HashMap<(Activity, i64), u64> = HashMap::new();
            let mut by_day: HashMap<(Activity, i64), u64> = HashMap::new();
            for count in counts {
                *by_hour.entry((count.kind, count.hour)).or_default() += count.count;
                let day = count.hour - count.hour.rem_euclid(86_400);
                *by_day.entry((count.kind, day)).or_default() += count.count;
            }
            let mut body = String::from(
                "<p class=\"note\">Counted by every instance and written every few seconds; \
                 times in UTC.</p><h2>Last 48 hours</h2><div class=\"charts\">",
            );
            for kind in Activity::ALL {
                let hours: Vec<(String, u64)> = (0..HOURS)
                    .map(|n| first_hour + n * 3600)
                    .map(|hour| {
                        let count = by_hour.get(&(kind, hour)).copied().unwrap_or(0);
                        (hour_label(hour), count)
                    })
                    .collect();
                body.push_str(&bars(title(kind), &hours));
            }
            body.push_str("</div><h2>Last 30 days</h2><div class=\"charts\">");
            for kind in Activity::ALL {
                let days: Vec<(String, u64)> = (0..DAYS)
                    .map(|n| first_day + n * 86_400)
                    .map(|day| {
                        let count = by_day.get(&(kind, day)).copied().unwrap_or(0);
                        (day_label(day), count)
                    })
                    .collect();
                body.push_str(&bars(title(kind), &days));
            }
            body.push_str("</div>");
            body.push_str(&limit_hits(&state.limits.recent_hits()));
            Ok(Page::ok("Activity", operator.signed_in(), body).into_response())
        }
        .await,
    )
}

/// Who hit a rate limit lately, on this instance.
fn limit_hits(hits: &[LimitHit]) -> String {
    if hits.is_empty() {
        return "<h2>Rate-limit hits (this instance)</h2><p>None lately.</p>".to_owned();
    }
    let mut html = String::from(
        "<h2>Rate-limit hits (this instance, latest first)</h2><table><thead><tr>\
         <th>When</th><th>Limit</th><th>Address</th><th>Client</th></tr></thead><tbody>",
    );
    for hit in hits {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(hit.at),
            hit.limit,
            hit.ip,
            text(hit.client_id.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// What a chart of `kind` is called.
fn title(kind: Activity) -> &'static str {
    match kind {
        Activity::Registration => "Registrations",
        Activity::Management => "RFC 7592 calls",
        Activity::Login => "Front logins",
        Activity::TokenGrant => "Token grants",
        Activity::Refusal => "Refusals",
        Activity::RateLimited => "Rate-limit hits",
    }
}

/// An hourly bar's label: `YYYY-MM-DD HH:00`.
fn hour_label(hour: i64) -> String {
    let shown = when(hour); // YYYY-MM-DD HH:MM:SS UTC
    format!("{}:00", shown.get(..13).unwrap_or_default())
}

/// A daily bar's label: `YYYY-MM-DD`.
fn day_label(day: i64) -> String {
    when(day).get(..10).unwrap_or_default().to_owned()
}
