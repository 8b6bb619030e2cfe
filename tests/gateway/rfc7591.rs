//! Interop with a real RFC 7591/7592 server (node-oidc-provider) through the
//! `rfc7591` backend.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::oidc_provider::OidcProvider;
use crate::support::*;

async fn gateway_for(upstream: &OidcProvider) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\nkind = \"rfc7591\"\nissuer = \"{}\"\nregistration_endpoint = \"{}\"\n\
         timeout = \"5s\"\nreconcile_interval = \"0s\"\n",
        upstream.issuer,
        upstream.registration_endpoint()
    ))
    .await
}

/// Asks the upstream's token endpoint for a client_credentials token.
async fn token_status(upstream: &OidcProvider, id: &str, secret: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{}/token", upstream.issuer))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn registers_manages_and_deletes_at_a_real_rfc7591_server() {
    let upstream = OidcProvider::start().await;
    let app = gateway_for(&upstream).await;
    let client = app
        .register(&json!({
            "grant_types": ["client_credentials"],
            "client_name": "Interop",
            "client_name#fr": "Interopérabilité",
            "software_id": "interop-suite",
        }))
        .await;
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(id.len(), 22, "the upstream chose the id");
    assert_eq!(uri_of(&client), app.url(&format!("/register/{id}")));
    assert_eq!(token_status(&upstream, &id, &secret).await, StatusCode::OK);

    let read: Value = app
        .read(&client, Some(token_of(&client)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_name"], "Interop");
    assert_eq!(read["client_name#fr"], "Interopérabilité");
    assert_eq!(read["software_id"], "interop-suite");

    // Two replaces: the upstream rotates its own token on each, so the second
    // only works if the gateway kept the rotated one.
    let mut current_secret = secret.clone();
    for name in ["Renamed once", "Renamed twice"] {
        let response = app
            .update(
                &client,
                Some(token_of(&client)),
                &update_body(
                    &client,
                    json!({ "grant_types": ["client_credentials"], "client_name": name }),
                ),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let updated: Value = response.json().await.unwrap();
        assert_eq!(updated["client_name"], name);
        if let Some(new_secret) = updated["client_secret"].as_str() {
            current_secret = new_secret.to_owned();
        }
    }
    assert_eq!(
        token_status(&upstream, &id, &current_secret).await,
        StatusCode::OK
    );

    // The upstream's registration access token is sealed, not stored in clear:
    // nothing in the database file looks like the app's secret or token either.
    let bytes = std::fs::read(&app.db_path).unwrap();
    for needle in [current_secret.as_str(), token_of(&client)] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()));
    }

    assert_eq!(
        app.delete(&client, Some(token_of(&client))).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        token_status(&upstream, &id, &current_secret).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(app.rows().await.is_empty());
}

#[tokio::test]
async fn discovery_comes_from_the_upstream_issuer() {
    let upstream = OidcProvider::start().await;
    let app = gateway_for(&upstream).await;
    let doc: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], upstream.issuer);
    assert_eq!(doc["token_endpoint"], format!("{}/token", upstream.issuer));
    assert_eq!(doc["registration_endpoint"], app.url("/register"));
}

#[tokio::test]
async fn upstream_refusals_name_the_upstream_reason() {
    let upstream = OidcProvider::start().await;
    let app = gateway_for(&upstream).await;
    // Valid for the gateway, refused by oidc-provider (it does not support this alg).
    let (code, description) = app
        .register_error(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "id_token_signed_response_alg": "HS384",
        }))
        .await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(description.contains("rfc7591"), "{description}");
    assert!(app.rows().await.is_empty());
}

#[tokio::test]
async fn a_client_deleted_upstream_answers_invalid_token_to_updates() {
    let upstream = OidcProvider::start().await;
    let app = gateway_for(&upstream).await;
    let client = app
        .register(&json!({ "grant_types": ["client_credentials"] }))
        .await;
    // Someone deletes it upstream with the upstream's own RFC 7592 handle.
    let held = app.service.show(id_of(&client)).await.unwrap();
    let handle = held.provider_state.unwrap().0;
    let removed = reqwest::Client::new()
        .delete(handle["registration_client_uri"].as_str().unwrap())
        .bearer_auth(handle["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_missing_at_provider_reads_as_gone(&app, &client).await;
}

/// An RFC 7591 server that substitutes values (§3.2.1): it registers with a
/// secret of its own and a narrower scope, and answers replaces without
/// showing the secret but with a new expiry for it.
async fn substituting_upstream() -> String {
    use axum::routing::{post, put};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let uri = format!("{base}/reg/c1");
    let router = axum::Router::new()
        .route(
            "/reg",
            post(move |axum::Json(sent): axum::Json<Value>| {
                let uri = uri.clone();
                async move {
                    let mut held = sent;
                    held["client_id"] = json!("c1");
                    held["client_secret"] = json!("the-upstream-secret");
                    held["client_secret_expires_at"] = json!(4_000_000_000_i64);
                    held["scope"] = json!("openid");
                    held["registration_access_token"] = json!("upstream-token");
                    held["registration_client_uri"] = json!(uri);
                    (StatusCode::CREATED, axum::Json(held))
                }
            }),
        )
        .route(
            "/reg/c1",
            put(|axum::Json(sent): axum::Json<Value>| async move {
                let mut held = sent;
                held["client_secret_expires_at"] = json!(4_100_000_000_i64);
                held["scope"] = json!("openid");
                axum::Json(held)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// The app is handed only a secret the upstream holds, and is told the
/// values the upstream substituted.
#[tokio::test]
async fn the_app_is_told_what_the_upstream_holds() {
    let base = substituting_upstream().await;
    let app = spawn_app_with(&format!(
        "[provider]\nkind = \"rfc7591\"\nissuer = \"{base}\"\nregistration_endpoint = \"{base}/reg\"\n\
         timeout = \"5s\"\nreconcile_interval = \"0s\"\n\
         [policies.default]\nclient_secret_lifetime = \"1h\"\n"
    ))
    .await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "scope": "openid profile email",
        }))
        .await;
    assert_eq!(client["client_secret"], "the-upstream-secret");
    assert_eq!(client["client_secret_expires_at"], 4_000_000_000_i64);
    assert_eq!(client["scope"], "openid", "the upstream's scope");
    // The gateway's own secret lifetime is past: a replace would renew the
    // secret, but the upstream keeps its own and does not show it, so the
    // app is handed none.
    app.clock.advance(std::time::Duration::from_secs(7200));
    let replaced: Value = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({ "redirect_uris": ["https://app.example.com/cb"], "scope": "openid profile" }),
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(replaced.get("client_secret").is_none(), "{replaced}");
    assert_eq!(replaced["client_secret_expires_at"], 4_100_000_000_i64);
    assert_eq!(replaced["scope"], "openid");
    let read: Value = app
        .read(&client, Some(token_of(&client)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["scope"], "openid");
    assert_eq!(read["client_secret_expires_at"], 4_100_000_000_i64);
}

/// The official MCP TypeScript SDK, as an MCP client: its discovery finds
/// the gateway's metadata (with PKCE S256 and the gateway's registration
/// endpoint), and its registration helper registers through the gateway.
// The SDK runs as a child process while this runtime serves the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_sdk_discovers_and_registers_through_the_gateway() {
    let upstream = OidcProvider::start().await;
    let app = gateway_for(&upstream).await;
    let base = app.base.clone();
    let learnt = tokio::task::spawn_blocking(move || {
        crate::support::oidc_provider::mcp_sdk_register(
            &base,
            &json!({
                "client_name": "mcp-remote",
                "redirect_uris": ["http://localhost:3334/oauth/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "software_id": "2e6dc280-f3c3-4e01-99a7-8181dbd1d23d",
                "software_version": "0.1.29",
            }),
        )
    })
    .await
    .unwrap();
    let metadata = &learnt["metadata"];
    assert_eq!(metadata["registration_endpoint"], app.url("/register"));
    assert!(
        metadata["code_challenge_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("S256"))
    );
    let client = &learnt["client"];
    assert_eq!(
        client["redirect_uris"],
        json!(["http://localhost:3334/oauth/callback"])
    );
    // The SDK keeps only the members it knows (not the registration access
    // token): the client is looked up on the gateway's side.
    let held = app.service.show(id_of(client)).await.unwrap();
    assert_eq!(
        held.metadata.client_name.plain.as_deref(),
        Some("mcp-remote")
    );
}
