//! The gateway's own consent page for clients of metadata documents
//! (`[front.cimd] consent_page`): the provider only ever sees the gateway's
//! callback, so it cannot show where the user will be sent back. The page
//! names the client, the host of its document (its `client_id`) and the
//! host of the redirect URI, and links on to the provider.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use url::Url;

use super::error::escape_html;

/// What the consent page shows.
#[derive(Debug)]
pub struct ConsentPage {
    /// The name the document gives, if any.
    pub client_name: Option<String>,
    /// The client id: the document's URL.
    pub client_id: String,
    /// The host the user will be sent back to.
    pub redirect_host: String,
    /// Where "Continue" leads: the provider's authorization URL.
    pub provider_url: String,
}

impl IntoResponse for ConsentPage {
    fn into_response(self) -> Response {
        let document_host = Url::parse(&self.client_id)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        let name = self.client_name.as_deref().unwrap_or("An application");
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Sign in</title></head><body><h1>{name} asks you to sign in</h1>\
             <p>It describes itself at <strong>{document_host}</strong>\
             (<code>{client_id}</code>).</p>\
             <p>After you sign in, you will be sent back to <strong>{redirect_host}</strong>.</p>\
             <p><a href=\"{provider_url}\">Continue</a></p>\
             <p>If you did not start this, close this page.</p></body></html>",
            name = escape_html(name),
            document_host = escape_html(&document_host),
            client_id = escape_html(&self.client_id),
            redirect_host = escape_html(&self.redirect_host),
            provider_url = escape_html(&self.provider_url),
        );
        let mut response = (StatusCode::OK, Html(html)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}
