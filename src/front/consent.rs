//! The gateway's own consent page, shown before the provider for every
//! client in broker mode (the provider only knows the operator's one
//! client, so its own consent screen names the gateway, never the app: the
//! MCP specification's confused-deputy rule) and for clients of metadata
//! documents when `[front.cimd] consent_page` asks (the provider only ever
//! sees the gateway's callback, so it cannot show where the user will be
//! sent back). The page names the client, where it comes from (its
//! document's host, or that it registered itself here) and the host of
//! the redirect URI; its form posts the user's decision, with the
//! transaction's token, to `/consent` ([`super::authorize`]).
//!
//! What the page shows of the client is escaped, and stripped first of
//! control, bidirectional and invisible characters, so a name cannot
//! reorder or hide the text around it. The page sets a strict policy: no
//! script, no resource from elsewhere, no framing, not cached.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use url::Url;

use super::error::escape_html;

/// The page's only style, allowed by its digest.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;overflow-wrap:anywhere}button{font-size:1rem;padding:.5rem 1rem;\
margin:0 .5rem .5rem 0}";

/// The page's `Content-Security-Policy`.
static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{digest}'; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// Longest client name shown, in characters.
const MAX_NAME: usize = 80;

/// What the consent page shows.
#[derive(Debug)]
pub struct ConsentPage {
    /// The name the document gives, if any.
    pub client_name: Option<String>,
    /// The client id: the document's URL, or the id it registered with.
    pub client_id: String,
    /// Whether the client is named by a metadata document (else it
    /// registered with the gateway).
    pub document: bool,
    /// The scope it asks for.
    pub scope: Option<String>,
    /// The resource (RFC 8707) it asks a token for.
    pub resource: Option<String>,
    /// The host the user will be sent back to.
    pub redirect_host: String,
    /// The sealed login, which the form posts back.
    pub form_token: String,
    /// Where the form posts: the gateway's `/consent`.
    pub action: String,
}

impl IntoResponse for ConsentPage {
    fn into_response(self) -> Response {
        let origin = if self.document {
            let document_host = Url::parse(&self.client_id)
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned))
                .unwrap_or_default();
            format!(
                "It describes itself at <strong>{}</strong> (<code>{}</code>).",
                escape_html(&displayable(&document_host)),
                escape_html(&displayable(&self.client_id)),
            )
        } else {
            format!(
                "It registered itself with this gateway as <code>{}</code>; nobody vouches \
                 for its name.",
                escape_html(&displayable(&self.client_id)),
            )
        };
        let name = self
            .client_name
            .as_deref()
            .map(displayable)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "An application".to_owned());
        // Scope tokens and resource URIs were checked to be printable
        // ASCII: shown whole, escaped, never cut short.
        let mut asks = String::new();
        if let Some(scope) = &self.scope {
            asks.push_str(&format!(
                "<p>It asks for: <code>{}</code></p>",
                escape_html(scope)
            ));
        }
        if let Some(resource) = &self.resource {
            asks.push_str(&format!(
                "<p>For use at: <code>{}</code></p>",
                escape_html(resource)
            ));
        }
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Sign in</title><style>{STYLE}</style></head><body><main>\
             <h1>{name} asks you to sign in</h1>\
             <p>{origin}</p>{asks}\
             <p>If you continue, you will be sent back to <strong>{redirect_host}</strong> \
             after you sign in.</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"consent\" value=\"{token}\">\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Continue</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button>\
             </form><p>If you did not start this, choose Cancel or close this page.</p>\
             </main></body></html>",
            name = escape_html(&name),
            redirect_host = escape_html(&displayable(&self.redirect_host)),
            action = escape_html(&self.action),
            token = escape_html(&self.form_token),
        );
        protected_page((StatusCode::OK, Html(html)).into_response(), &POLICY)
    }
}

/// `response`, a page of the gateway's own, with the headers every such
/// page sends: `policy`, no framing, no caching, no sniffing, and the
/// origin sent to the gateway only.
#[must_use]
pub fn protected_page(mut response: Response, policy: &HeaderValue) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    // Not `no-referrer`: under it a browser posts a form with
    // `Origin: null`, which the gateway must refuse. `same-origin` sends
    // the origin to the gateway, and nothing to anyone else.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `text` as it may be shown: without control characters, bidirectional
/// controls, invisible joiners and separators, and at most `MAX_NAME` (80)
/// characters.
#[must_use]
pub fn displayable(text: &str) -> String {
    text.chars()
        .filter(|c| !is_hidden(*c))
        .take(MAX_NAME)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Characters that change how the text around them reads, or show nothing.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'                      // soft hyphen
            | '\u{061C}'                    // Arabic letter mark
            | '\u{180E}'                    // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'       // zero-width spaces, joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}'       // line and paragraph separators, embeddings, overrides
            | '\u{2060}'..='\u{206F}'       // word joiner, invisible operators, isolates
            | '\u{FEFF}'                    // byte order mark
            | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotations
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidirectional_controls_and_invisible_characters_are_removed() {
        assert_eq!(displayable("Good\u{202E}evil"), "Goodevil");
        assert_eq!(displayable("a\u{2066}b\u{2069}c\u{200B}d\u{7}e\n"), "abcde");
        assert_eq!(displayable(&"x".repeat(500)).len(), MAX_NAME);
        assert_eq!(displayable("Café <b>"), "Café <b>");
    }
}
