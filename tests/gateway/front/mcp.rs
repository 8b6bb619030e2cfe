//! The official MCP TypeScript SDK as the client of the front, against a
//! minimal MCP server whose protected resource metadata names the gateway
//! (`tests/interop/mcp-sdk/front-flow.mjs`): by DCR while the gateway
//! announces no metadata documents, by a Client ID Metadata Document once
//! it does.

use super::*;

/// Runs the SDK's flow against `app` (with `extra` arguments) and checks
/// what every flow must show, the SDK's refresh included; the SDK's
/// outcome.
async fn sdk_flow(app: &TestApp, upstream: &OidcProvider, extra: &[&str]) -> Value {
    sdk_flow_with(app, upstream, extra, Vec::new()).await
}

/// [`sdk_flow`] with the environment `env` for the script (see
/// `front-flow.mjs`: `INTROSPECTION_CLIENT`).
pub(super) async fn sdk_flow_with(
    app: &TestApp,
    upstream: &OidcProvider,
    extra: &[&str],
    env: Vec<(&'static str, String)>,
) -> Value {
    let mut args = vec![app.base.clone(), upstream.issuer.clone()];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let outcome = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::oidc_provider::mcp_sdk_with("front-flow.mjs", &args, &env)
    })
    .await
    .unwrap();
    assert_eq!(outcome["authorization_endpoint"], app.url("/authorize"));
    assert_eq!(outcome["iss"], app.base);
    assert_eq!(outcome["state_matches"], true);
    assert_eq!(outcome["tool"], "sub=carol", "{outcome}");
    assert!(outcome["resource"].as_str().unwrap().ends_with("/mcp"));
    // The SDK's refresh got new tokens, and the tool takes the new access
    // token for the same user.
    assert_eq!(outcome["refreshed"], true, "{outcome}");
    assert_eq!(outcome["tool_after_refresh"], "sub=carol", "{outcome}");
    assert_eq!(outcome["new_token_used"], true, "{outcome}");
    outcome
}

#[tokio::test]
async fn the_mcp_sdk_registers_authorizes_and_calls_a_tool() {
    let upstream = OidcProvider::start().await;
    let app = front_for(&upstream).await;
    let outcome = sdk_flow(&app, &upstream, &[]).await;
    let client_id = outcome["client_id"].as_str().unwrap();
    assert!(
        app.service.show(client_id).await.is_ok(),
        "registered by DCR"
    );
}

#[tokio::test]
async fn the_mcp_sdk_uses_a_client_id_metadata_document_once_announced() {
    let upstream = OidcProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let app = spawn_app_with(&format!(
        "{}[front.cimd]\nenabled = true\nprivate_hosts = [\"127.0.0.1\"]\n\
         [outbound]\nextra_root_certificates = [\"{}\"]\n",
        front_toml(&upstream),
        cert.display()
    ))
    .await;
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let outcome = sdk_flow(&app, &upstream, &[&cert, &key]).await;
    let client_id = outcome["client_id"].as_str().unwrap();
    assert!(client_id.starts_with("https://127.0.0.1:"), "{client_id}");
    // The gateway registered one client at the provider for the document.
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].0, client_id);
}
