//! Client ID Metadata Documents: clients whose `client_id` is the URL of a
//! document the test serves on loopback (allowed by `private_hosts`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode as AxumStatus, Uri, header};
use axum::response::IntoResponse;
use reqwest::StatusCode;
use serde_json::json;

use super::*;

/// Documents the test serves: path → (body, `Cache-Control`).
#[derive(Clone, Default)]
pub(super) struct Served(Arc<Mutex<HashMap<String, (String, String)>>>);

impl Served {
    /// Starts serving on 127.0.0.1; the base URL.
    pub(super) async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = self.clone();
        let app = Router::new().fallback(move |uri: Uri| {
            let found = served.0.lock().unwrap().get(uri.path()).cloned();
            async move {
                match found {
                    Some((body, cache)) => (
                        [
                            (header::CONTENT_TYPE, "application/json".to_owned()),
                            (header::CACHE_CONTROL, cache),
                        ],
                        body,
                    )
                        .into_response(),
                    None => AxumStatus::NOT_FOUND.into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    pub(super) fn put(&self, path: &str, body: &Value, cache: &str) {
        let entry = (body.to_string(), cache.to_owned());
        self.0.lock().unwrap().insert(path.to_owned(), entry);
    }
}

/// A native client's document, naming itself `url`.
pub(super) fn document(url: &str, name: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": name,
        "redirect_uris": ["http://127.0.0.1/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}

pub(super) async fn gateway(upstream: &OidcProvider, cimd: &str) -> TestApp {
    spawn_app_with(&format!(
        "{}[front.cimd]\nenabled = true\n{cimd}",
        front_toml(upstream)
    ))
    .await
}

pub(super) const LOOPBACK_ALLOWED: &str = "private_hosts = [\"127.0.0.1\"]\n";

/// The client's name at the gateway (so at the provider) for a document.
async fn registered_name(app: &TestApp) -> String {
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1, "one client for the document: {rows:?}");
    let client = app.service.show(&rows[0].0).await.unwrap();
    client.metadata.client_name.plain.clone().unwrap()
}

#[tokio::test]
async fn a_document_client_signs_in_refreshes_and_follows_its_document() {
    let upstream = OidcProvider::start().await;
    let app = gateway(&upstream, LOOPBACK_ALLOWED).await;
    let served = Served::default();
    let url = format!("{}/clients/app.json", served.start().await);
    served.put("/clients/app.json", &document(&url, "v1"), "max-age=60");
    let discovery = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(discovery["client_id_metadata_document_supported"], true);

    let pkce = pkce("cimd");
    let redirect_uri = "http://127.0.0.1:50123/cb";
    let back = authorized(&app, &upstream, &url, redirect_uri, &pkce).await;
    assert_eq!(param(&back, "iss").unwrap(), app.base);
    let (status, tokens) = redeem(&app, &url, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&upstream, access_token).await.1["sub"], "alice");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", url.as_str()),
    ];
    assert_eq!(token(&app, &refresh).await.0, StatusCode::OK);
    assert_eq!(registered_name(&app).await, "v1");

    // A change within the cache time (max-age 60, raised to the 5 minute
    // floor) is not seen; past it, the provider's client is replaced.
    served.put("/clients/app.json", &document(&url, "v2"), "max-age=60");
    authorize(&app, &url, redirect_uri, &pkce, &[]).await;
    assert_eq!(registered_name(&app).await, "v1");
    app.clock.advance(Duration::from_secs(301));
    let response = authorize(&app, &url, redirect_uri, &pkce, &[]).await;
    assert!(location(&response).as_str().starts_with(&upstream.issuer));
    assert_eq!(registered_name(&app).await, "v2");

    // A client removed behind the front's back is registered again.
    let removed = app.rows().await[0].0.clone();
    app.service.remove(&removed, "test").await.unwrap();
    let response = authorize(&app, &url, redirect_uri, &pkce, &[]).await;
    assert!(location(&response).as_str().starts_with(&upstream.issuer));
    assert_eq!(registered_name(&app).await, "v2");
    assert_ne!(app.rows().await[0].0, removed);
}

/// A page naming `words`, and nothing registered.
async fn assert_refused(app: &TestApp, client_id: &str, words: &str) {
    let response = authorize(app, client_id, "http://127.0.0.1:5/cb", &pkce("x"), &[]).await;
    assert_page(response, StatusCode::BAD_REQUEST, words).await;
    assert!(app.rows().await.is_empty());
}

#[tokio::test]
async fn documents_that_break_the_rules_are_refused() {
    let upstream = OidcProvider::start().await;
    let served = Served::default();
    let base = served.start().await;
    let app = gateway(
        &upstream,
        &format!("{LOOPBACK_ALLOWED}max_document_bytes = 600\n"),
    )
    .await;
    let other = format!("{base}/other.json");
    served.put("/mismatch.json", &document(&other, "m"), "max-age=60");
    assert_refused(
        &app,
        &format!("{base}/mismatch.json"),
        "differs from its URL",
    )
    .await;
    let big = format!("{base}/big.json");
    served.put("/big.json", &document(&big, &"b".repeat(700)), "max-age=60");
    assert_refused(&app, &big, "cannot be fetched").await;
    let foreign = format!("{base}/foreign.json");
    let mut elsewhere = document(&foreign, "f");
    elsewhere["redirect_uris"] = json!(["https://elsewhere.example/cb"]);
    served.put("/foreign.json", &elsewhere, "max-age=60");
    assert_refused(&app, &foreign, "redirect URIs").await;
    assert_refused(&app, &format!("{base}/missing.json"), "cannot be fetched").await;
    assert_refused(&app, &format!("{base}/"), "https URL with a path").await;

    // Without the operator's word, loopback is not fetched, and plain http
    // is not accepted.
    let strict = gateway(&upstream, "").await;
    let url = format!("{base}/app.json");
    served.put("/app.json", &document(&url, "a"), "max-age=60");
    assert_refused(&strict, &url, "https URL").await;
    let https = url.replace("http://", "https://");
    assert_refused(&strict, &https, "not a public address").await;
}

#[tokio::test]
async fn hosts_are_allowed_denied_and_capped_by_the_operator() {
    let upstream = OidcProvider::start().await;
    let served = Served::default();
    let base = served.start().await;
    let first = format!("{base}/first.json");
    let second = format!("{base}/second.json");
    served.put("/first.json", &document(&first, "one"), "max-age=60");
    served.put("/second.json", &document(&second, "two"), "max-age=60");

    let denied = gateway(
        &upstream,
        &format!("{LOOPBACK_ALLOWED}denied_hosts = [\"127.0.0.1\"]\n"),
    )
    .await;
    assert_refused(&denied, &first, "not allowed").await;
    let elsewhere = gateway(
        &upstream,
        &format!("{LOOPBACK_ALLOWED}allowed_hosts = [\"*.example.com\"]\n"),
    )
    .await;
    assert_refused(&elsewhere, &first, "not allowed").await;

    let capped = gateway(&upstream, &format!("{LOOPBACK_ALLOWED}max_per_host = 1\n")).await;
    let response = authorize(&capped, &first, "http://127.0.0.1:5/cb", &pkce("cap"), &[]).await;
    assert!(location(&response).as_str().starts_with(&upstream.issuer));
    let response = authorize(&capped, &second, "http://127.0.0.1:5/cb", &pkce("cap"), &[]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("as many clients"));
    assert_eq!(capped.rows().await.len(), 1);

    let full = gateway(
        &upstream,
        &format!(
            "{LOOPBACK_ALLOWED}max_documents = 1
"
        ),
    )
    .await;
    let response = authorize(&full, &first, "http://127.0.0.1:5/cb", &pkce("cap"), &[]).await;
    assert!(location(&response).as_str().starts_with(&upstream.issuer));
    let response = authorize(&full, &second, "http://127.0.0.1:5/cb", &pkce("cap"), &[]).await;
    assert_page(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "as many client_id document clients",
    )
    .await;
    assert_eq!(full.rows().await.len(), 1);
}

#[tokio::test]
async fn idle_document_clients_expire_through_the_janitor_and_come_back_on_use() {
    let upstream = OidcProvider::start().await;
    let app = spawn_app_with(&format!(
        "{}[front.cimd]\nenabled = true\n{LOOPBACK_ALLOWED}policy = \"documents\"\n\
         [policies.default]\n[policies.documents]\nclient_lifetime = \"1h\"\n",
        front_toml(&upstream)
    ))
    .await;
    let served = Served::default();
    let url = format!("{}/clients/app.json", served.start().await);
    served.put(
        "/clients/app.json",
        &document(&url, "lasting"),
        "max-age=60",
    );
    let pkce = pkce("janitor");
    let to_provider = |response: reqwest::Response| location(&response);
    let first = to_provider(authorize(&app, &url, REGISTERED, &pkce, &[]).await);
    let held = app.rows().await[0].0.clone();
    assert_eq!(app.service.show(&held).await.unwrap().policy, "documents");

    app.clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(app.reconciler.expire_clients().await.unwrap().len(), 1);
    assert!(app.rows().await.is_empty());
    let again = to_provider(authorize(&app, &url, REGISTERED, &pkce, &[]).await);
    assert!(again.as_str().starts_with(&upstream.issuer));
    assert_ne!(param(&again, "client_id"), param(&first, "client_id"));
    assert_eq!(app.rows().await.len(), 1);
}
