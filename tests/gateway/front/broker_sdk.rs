//! The official MCP TypeScript SDK through broker mode
//! (`tests/interop/mcp-sdk/front-flow.mjs`): its `auth()` completes
//! discovery, registration (DCR) or a Client ID Metadata Document, the
//! gateway's consent page, the provider's login, the code exchange and a
//! refresh of the gateway's own refresh token. The MCP server introspects
//! the provider's access tokens with the operator's client, the provider
//! having registration off; or, with the gateway's own tokens, checks them
//! with `jose` against the gateway's key set, for its own audience.

use super::broker::{UPSTREAM_CLIENT, UPSTREAM_SECRET, broker, broker_with};
use super::mcp::sdk_flow_with;
use super::*;

/// The MCP server's introspection client: the operator's.
fn introspection() -> Vec<(&'static str, String)> {
    vec![(
        "INTROSPECTION_CLIENT",
        format!("{UPSTREAM_CLIENT}:{UPSTREAM_SECRET}"),
    )]
}

/// What every broker flow of the SDK must show beyond [`sdk_flow_with`]'s
/// checks (the gateway's authorization endpoint and iss, the state, the
/// tool answering for carol before and after the refresh with the new
/// access token): the consent page on the way, and the gateway's
/// rotated-out refresh token refused.
fn assert_brokered(outcome: &Value) {
    assert_eq!(outcome["consent_page"], true, "{outcome}");
    assert_eq!(outcome["refreshed"], true, "{outcome}");
    assert_eq!(
        outcome["old_refresh_token_error"], "invalid_grant",
        "{outcome}"
    );
}

#[tokio::test]
async fn the_mcp_sdk_registers_consents_signs_in_and_refreshes_through_the_broker() {
    let (app, upstream) = broker(None, "").await;
    let outcome = sdk_flow_with(&app, &upstream, &[], introspection()).await;
    assert_brokered(&outcome);
    let client_id = outcome["client_id"].as_str().unwrap();
    assert!(
        app.service.show(client_id).await.is_ok(),
        "registered by DCR with the gateway"
    );
}

#[tokio::test]
async fn the_mcp_sdk_signs_in_and_refreshes_through_the_broker_with_a_metadata_document() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let (app, upstream) = broker_with(
        None,
        "",
        &format!(
            "[front.cimd]\nenabled = true\nprivate_hosts = [\"127.0.0.1\"]\n\
             [outbound]\nextra_root_certificates = [\"{}\"]\n",
            cert.display()
        ),
    )
    .await;
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let outcome = sdk_flow_with(&app, &upstream, &[&cert, &key], introspection()).await;
    assert_brokered(&outcome);
    let client_id = outcome["client_id"].as_str().unwrap();
    assert!(client_id.starts_with("https://127.0.0.1:"), "{client_id}");
}

#[tokio::test]
async fn the_mcp_sdk_gets_the_gateways_own_tokens_which_the_server_checks_with_jose() {
    let (app, upstream) = broker_with(
        None,
        "",
        "tokens = \"gateway\"\nallowed_resources = [\"http://127.0.0.1:*/mcp\"]\n",
    )
    .await;
    let env = vec![("GATEWAY_TOKENS", "1".to_owned())];
    let outcome = sdk_flow_with(&app, &upstream, &[], env).await;
    assert_brokered(&outcome);
    assert_eq!(outcome["other_audience_refused"], true, "{outcome}");
}
