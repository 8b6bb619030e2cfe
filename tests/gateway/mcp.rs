//! MCP clients register as they are: the registrations six current MCP
//! clients send, through the built-in registry and every back end; the
//! client-compatibility rules that let them pass, each switched off; CORS
//! from `[server.cors]`; and what a public client that was removed answers.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::providers::{Subject, gateway};
use crate::support::billforward::BillForwardFake;
use crate::support::hydra::HydraFake;
use crate::support::oidc_provider::OidcProvider;
use crate::support::okta::OktaFake;
use crate::support::zendesk::ZendeskFake;
use crate::support::*;

/// The bodies six MCP clients send to `/register` (see the README's MCP
/// section for their sources), by client; loopback ports are random.
fn mcp_bodies() -> Vec<(&'static str, Value)> {
    let port = free_port();
    vec![
        (
            "mcp-remote",
            json!({
                "redirect_uris": [format!("http://localhost:{port}/oauth/callback")],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "client_name": "MCP CLI Proxy",
                "client_uri": "https://github.com/modelcontextprotocol/mcp-cli",
                "software_id": "2e6dc280-f3c3-4e01-99a7-8181dbd1d23d",
                "software_version": "0.1.29",
            }),
        ),
        (
            "MCP Inspector",
            json!({
                "redirect_uris": [
                    "http://localhost:6274/oauth/callback",
                    "http://localhost:6274/oauth/callback/debug",
                ],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "client_name": "MCP Inspector",
                "client_uri": "https://github.com/modelcontextprotocol/inspector",
                "scope": "",
            }),
        ),
        ("VS Code", vs_code()),
        (
            "Cursor",
            json!({
                "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "client_name": "Cursor",
            }),
        ),
        ("claude.ai", claude_ai()),
        (
            "Claude Code",
            json!({
                "client_name": "Claude Code",
                "redirect_uris": [format!("http://localhost:{}/callback", free_port())],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }),
        ),
    ]
}

/// VS Code's registration: native, public, with the device-code grant.
fn vs_code() -> Value {
    json!({
        "client_name": "Visual Studio Code",
        "client_uri": "https://code.visualstudio.com",
        "application_type": "native",
        "grant_types": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "response_types": ["code"],
        "redirect_uris": [
            "https://insiders.vscode.dev/redirect",
            "https://vscode.dev/redirect",
            "http://127.0.0.1/",
            "http://127.0.0.1:33418/",
        ],
        "token_endpoint_auth_method": "none",
    })
}

/// claude.ai's registration, sent again on every connect.
fn claude_ai() -> Value {
    json!({
        "client_name": "Claude",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// Each body registers (`201`) with its redirect URIs answered byte for
/// byte, and reads back the same; `back_end` names the gateway in failures.
async fn assert_all_register(app: &TestApp, back_end: &str) {
    for (client, body) in mcp_bodies() {
        let response = app.post_register(&body).await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{client} through {back_end}: {answer}"
        );
        assert_eq!(
            answer["redirect_uris"], body["redirect_uris"],
            "{client} through {back_end}"
        );
        assert_eq!(answer["token_endpoint_auth_method"], "none");
        assert!(answer.get("client_secret").is_none(), "{client}: public");
        let read = app.read_json(&answer).await;
        assert_eq!(read["redirect_uris"], body["redirect_uris"], "{client}");
    }
}

#[tokio::test]
async fn mcp_clients_register_at_the_built_in_registry() {
    let app = spawn_app().await;
    assert_all_register(&app, "the built-in registry").await;
}

/// Starts `S`'s fake and a gateway in front of it, and registers every body.
async fn assert_all_register_behind<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    assert_all_register(&app, S::VENDOR).await;
    fake.ledger().assert_clean(S::VENDOR);
}

#[tokio::test]
async fn mcp_clients_register_through_hydra() {
    assert_all_register_behind::<HydraFake>().await;
}

#[tokio::test]
async fn mcp_clients_register_through_okta() {
    assert_all_register_behind::<OktaFake>().await;
}

#[tokio::test]
async fn mcp_clients_register_through_zendesk_as_public_clients() {
    let fake = ZendeskFake::start().await;
    let app = gateway(&fake).await;
    assert_all_register(&app, "Zendesk").await;
    for id in fake.identifiers() {
        assert_eq!(fake.client(&id).unwrap()["kind"], "public", "{id}");
    }
    fake.ledger.assert_clean("Zendesk");
}

#[tokio::test]
async fn mcp_clients_register_through_an_rfc7591_upstream() {
    let upstream = OidcProvider::start().await;
    let app = spawn_app_with(&format!(
        "[provider]\nkind = \"rfc7591\"\nissuer = \"{}\"\nregistration_endpoint = \"{}\"\n\
         timeout = \"5s\"\nreconcile_interval = \"0s\"\n",
        upstream.issuer,
        upstream.registration_endpoint()
    ))
    .await;
    assert_all_register(&app, "an RFC 7591 upstream").await;
}

#[tokio::test]
async fn billforward_refuses_mcp_clients_naming_itself() {
    let fake = BillForwardFake::start().await;
    let app = gateway(&fake).await;
    for (client, body) in mcp_bodies() {
        let (code, description) = app.register_error(&body).await;
        assert_eq!(code, "invalid_client_metadata", "{client}");
        assert!(
            description.to_lowercase().contains("billforward"),
            "{client}: {description}"
        );
    }
    assert!(fake.ids().is_empty(), "nothing reached BillForward");
    fake.ledger.assert_clean("BillForward");
}

/// The bodies of the two clients a strict OpenID Connect server refuses.
fn refused_by_strict_servers() -> Vec<(&'static str, Value)> {
    mcp_bodies()
        .into_iter()
        .filter(|(client, _)| matches!(*client, "MCP Inspector" | "Cursor"))
        .collect()
}

#[tokio::test]
async fn strict_mode_refuses_inspector_and_cursor_again() {
    let app = spawn_app_with(
        "[registration.compat]\nempty_scope_is_absent = false\n\
         native_by_redirect_uris = false\nclient_schemes = false\n\
         device_code_for_native = false\n",
    )
    .await;
    let refusals: Vec<(String, String)> = {
        let mut refusals = Vec::new();
        for (_, body) in refused_by_strict_servers() {
            refusals.push(app.register_error(&body).await);
        }
        refusals
    };
    assert_eq!(refusals[0].0, "invalid_client_metadata");
    assert!(refusals[0].1.contains("scope"), "{:?}", refusals[0]);
    assert_eq!(refusals[1].0, "invalid_redirect_uri");
    assert!(refusals[1].1.contains("native"), "{:?}", refusals[1]);
}

/// Each rule alone is what lets its client through: with only that one
/// switched off, the client is refused.
#[tokio::test]
async fn each_compat_rule_is_needed_by_its_client() {
    let cases = [
        ("empty_scope_is_absent", "MCP Inspector"),
        ("native_by_redirect_uris", "Cursor"),
        ("client_schemes", "Cursor"),
    ];
    for (rule, client) in cases {
        let app = spawn_app_with(&format!("[registration.compat]\n{rule} = false\n")).await;
        let body = &mcp_bodies()
            .into_iter()
            .find(|(name, _)| *name == client)
            .unwrap()
            .1;
        let response = app.post_register(body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{rule}");
    }
}

/// The rules apply to RFC 7592 replaces as to registrations: MCP Inspector
/// sends its body again as it is.
#[tokio::test]
async fn compat_rules_apply_to_replaces() {
    let app = spawn_app().await;
    let inspector = mcp_bodies().swap_remove(1).1;
    let client = app.register(&inspector).await;
    assert!(client.get("scope").is_none(), "an empty scope is no scope");
    assert_eq!(client["application_type"], "native");
    let replaced = app.replace(&client, inspector).await;
    assert_eq!(replaced.status(), StatusCode::OK);
}

/// A Cursor body that says `web` keeps the web rules, rules on or off.
#[tokio::test]
async fn an_explicit_web_application_type_keeps_the_web_rules() {
    let app = spawn_app().await;
    let (code, _) = app
        .register_error(&json!({
            "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"],
            "application_type": "web",
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(code, "invalid_redirect_uri");
}

/// Zendesk issues no device codes: VS Code's request for one is left out
/// of the registration, and refused with the rule switched off.
#[tokio::test]
async fn device_code_is_left_out_where_the_back_end_cannot_issue_it() {
    let vs_code = vs_code();
    let fake = ZendeskFake::start().await;
    let app = gateway(&fake).await;
    let client = app.register(&vs_code).await;
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );

    let strict = spawn_app_with(&format!(
        "[provider]\n{}\nreconcile_interval = \"0s\"\n\
         [registration.compat]\ndevice_code_for_native = false\n",
        ZendeskFake::keys_at(&fake.base)
    ))
    .await;
    let (code, description) = strict.register_error(&vs_code).await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(description.contains("zendesk"), "{description}");

    // The built-in registry holds the grant as asked.
    let local = spawn_app().await.register(&vs_code).await;
    assert_eq!(local["grant_types"], vs_code["grant_types"]);
    fake.ledger.assert_clean("Zendesk");
}

const APP_ORIGIN: &str = "https://app.example.com";

fn cors_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

/// With `[server.cors] allowed_origins` set, a listed origin gets CORS
/// answers on the registration and discovery routes, another origin gets
/// none, and operational routes never do.
#[tokio::test]
async fn cors_follows_the_configured_origins() {
    let app = spawn_app_with(&format!(
        "[server.cors]\nallowed_origins = [\"{APP_ORIGIN}\"]\n"
    ))
    .await;
    let register = app.url("/register");
    let allowed = app.preflight(&register, APP_ORIGIN, "POST").await;
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    let headers = allowed.headers();
    assert_eq!(cors_origin(headers), Some(APP_ORIGIN));
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    assert!(headers.get("access-control-allow-credentials").is_none());
    let other = app
        .preflight(&register, "https://evil.example.net", "POST")
        .await;
    assert_eq!(cors_origin(other.headers()), None);

    let body = claude_ai();
    for (origin, expected) in [
        (APP_ORIGIN, Some(APP_ORIGIN)),
        ("https://evil.example.net", None),
    ] {
        let posted = app
            .http
            .post(app.url("/register"))
            .header("origin", origin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::CREATED);
        assert_eq!(cors_origin(posted.headers()), expected, "{origin}");
        let discovery = app
            .get_from("/.well-known/oauth-authorization-server", origin)
            .await;
        assert_eq!(discovery.status(), StatusCode::OK);
        assert_eq!(cors_origin(discovery.headers()), expected, "{origin}");
    }
    for path in ["/metrics", "/readyz"] {
        let answer = app.get_from(path, APP_ORIGIN).await;
        assert_eq!(cors_origin(answer.headers()), None, "{path}");
    }
}

/// Each listed origin must be an origin as browsers send it; `*` only alone.
#[test]
fn cors_origins_must_be_origins() {
    let config = |origins: &str| {
        dcr_gateway::config::Config::from_sources(
            &format!("[server.cors]\nallowed_origins = {origins}\n"),
            Vec::new(),
        )
    };
    let errors = config(r#"["https://app.example.com/cb", "*", "HTTPS://App.example.com"]"#)
        .unwrap_err()
        .0;
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("server.cors.allowed_origins"))
    );
    config(r#"["https://app.example.com", "http://localhost:6274"]"#).unwrap();
    config("[]").unwrap();
}

/// RFC 7592's answer for a client that is gone, to each of its requests.
async fn assert_gone(app: &TestApp, client: &Value) {
    let token = Some(token_of(client));
    let body = update_body(client, claude_ai());
    for response in [
        app.read(client, token).await,
        app.update(client, token, &body).await,
        app.delete(client, token).await,
    ] {
        assert!(response.headers().contains_key("www-authenticate"));
        let (error, _) = error_of(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(error, "invalid_token");
    }
}

/// claude.ai registers again on every connect: an abandoned public client
/// expires, and then answers `401 invalid_token`, which makes a client
/// register again; so does one an operator deleted.
#[tokio::test]
async fn removed_public_clients_answer_invalid_token() {
    let app = spawn_app_with("[policies.default]\nclient_lifetime = \"30d\"\n").await;
    let claude = claude_ai();
    let expiring = app.register(&claude).await;
    let deleted = app.register(&claude).await;

    app.service.remove(id_of(&deleted), "test").await.unwrap();
    assert_gone(&app, &deleted).await;

    assert!(app.reconciler.expire_clients().await.unwrap().is_empty());
    app.clock.advance(Duration::from_secs(30 * 24 * 3600 + 1));
    let expired = app.reconciler.expire_clients().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_gone(&app, &expiring).await;
}
