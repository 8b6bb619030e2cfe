//! The console's pages: one layout (navigation, the operator, sign out),
//! one style allowed by its digest, and the headers every page sends: a
//! policy with no script and nothing from elsewhere, no framing, no
//! caching, no sniffing. Everything shown that the gateway did not write
//! itself goes through [`text`].

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::front::consent::protected_page;
use crate::front::error::escape_html;

/// The console's only style, allowed by its digest.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;line-height:1.4;color:#111}\
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;padding:.5rem 1rem;\
background:#1f2937;color:#fff}header a{color:#fff}header form{margin-left:auto}\
main{padding:1rem;overflow-wrap:anywhere}table{border-collapse:collapse;width:100%;\
font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;\
vertical-align:top}form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;\
margin-bottom:1rem}label{display:flex;flex-direction:column;font-size:.8rem}\
pre{background:#f3f4f6;padding:.5rem;overflow:auto;white-space:pre-wrap}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}\
figure{margin:0}svg{width:100%;height:auto;background:#f9fafb}svg rect{fill:#2563eb}\
svg text{font-size:10px;fill:#374151}.danger{background:#b91c1c;color:#fff;border:0;\
padding:.4rem .8rem}.note{color:#4b5563}";

/// The pages' `Content-Security-Policy`: no script at all, the one style,
/// forms only to the gateway, never in a frame.
static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{digest}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// `value` escaped for HTML content and attribute values.
#[must_use]
pub fn text(value: &str) -> String {
    escape_html(value)
}

/// Who is signed in, as the layout shows it.
pub struct SignedIn<'a> {
    /// The operator's name.
    pub name: &'a str,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: &'a str,
}

/// A console page.
pub struct Page<'a> {
    /// Its title (escaped here).
    pub title: &'a str,
    /// Who is signed in, if anyone.
    pub operator: Option<SignedIn<'a>>,
    /// Its content, already HTML.
    pub body: String,
    /// Its status.
    pub status: StatusCode,
}

impl Page<'_> {
    /// A page answered `200`.
    #[must_use]
    pub fn ok<'a>(title: &'a str, operator: SignedIn<'a>, body: String) -> Page<'a> {
        Page {
            title,
            operator: Some(operator),
            body,
            status: StatusCode::OK,
        }
    }
}

impl IntoResponse for Page<'_> {
    fn into_response(self) -> Response {
        let nav = match &self.operator {
            Some(operator) => format!(
                "<nav><a href=\"/console/clients\">Clients</a> · \
                 <a href=\"/console/activity\">Activity</a> · \
                 <a href=\"/console/provider\">Provider</a></nav>\
                 <form method=\"post\" action=\"/console/logout\">\
                 <span>{name}</span> \
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\">Sign out</button></form>",
                name = text(operator.name),
                csrf = text(operator.csrf),
            ),
            None => String::new(),
        };
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · dcr-gateway</title><style>{STYLE}</style></head><body>\
             <header><strong>dcr-gateway console</strong>{nav}</header>\
             <main><h1>{title}</h1>{body}</main></body></html>",
            title = text(self.title),
            body = self.body,
        );
        with_page_headers((self.status, Html(html)).into_response())
    }
}

/// `response` with the headers every console answer carries.
#[must_use]
pub fn with_page_headers(response: Response) -> Response {
    protected_page(response, &POLICY)
}

/// A date and time (seconds since the epoch) as the pages show it, in UTC.
#[must_use]
pub fn when(at: i64) -> String {
    u64::try_from(at)
        .ok()
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .map_or_else(
            || "-".to_owned(),
            |time| {
                humantime::format_rfc3339_seconds(time)
                    .to_string()
                    .replace('T', " ")
                    .replace('Z', " UTC")
            },
        )
}
