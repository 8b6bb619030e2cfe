//! The gateway's own tokens (issue 30) in front of providers that hold the
//! apps' clients (node oidc-provider as an RFC 7591 server, the Hydra and
//! Okta fakes, which sign their ID tokens RS256 and publish the key): the
//! provider signs the user in for the app's own client,
//! the gateway checks its ID token against the provider's keys and hands
//! the app an RFC 9068 JWT made out to the resource it named, its own ID
//! token and refresh token; the provider's tokens stay with the gateway.
//! Also the MCP TypeScript SDK through oidc-provider, its MCP server
//! checking the gateway's tokens with `jose`.

use super::broker::id_token_claims;
use super::gateway_tokens::check_at;
use super::mcp::sdk_flow_with;
use super::*;

const MCP: &str = "https://mcp.example.com/mcp";
const OTHER: &str = "https://other.example.com/mcp";

/// A gateway issuing its own tokens in front of `upstream`, with a
/// resource server for [`MCP`] that may introspect.
async fn issuing_before(upstream: &impl Upstream) -> TestApp {
    spawn_app_with(&format!(
        "{}tokens = \"gateway\"\nallowed_resources = [\"{MCP}\", \"{OTHER}\"]\n\
         [[front.resource_servers]]\nresource = \"{MCP}\"\nclient_id = \"mcp\"\n\
         client_secret = \"secret-mcp\"\n",
        front_toml(upstream)
    ))
    .await
}

/// What `/introspect` tells the resource server of [`MCP`] of `token`.
async fn introspected(app: &TestApp, token: &str) -> Value {
    app.http
        .post(app.url("/introspect"))
        .basic_auth("mcp", Some("secret-mcp"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A refresh of `token` by `client_id`, with `extra` parameters.
async fn refreshed(
    app: &TestApp,
    client_id: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client_id),
    ];
    form.extend_from_slice(extra);
    super::token(app, &form).await
}

through_each_upstream!(the_gateway_issues_its_own_tokens_for_the_apps_own_clients);

async fn the_gateway_issues_its_own_tokens_for_the_apps_own_clients(upstream: &impl Upstream) {
    let app = issuing_before(upstream).await;
    let discovery = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(discovery["jwks_uri"], app.url("/jwks"));
    assert_eq!(discovery["userinfo_endpoint"], app.url("/userinfo"));

    let client_id = native_client(&app).await;
    let pkce = pkce("own-tokens");
    let redirect_uri = "http://127.0.0.1:53128/cb";
    let ask = [
        ("scope", upstream.scope()),
        ("resource", MCP),
        ("nonce", "app-nonce-7"),
    ];
    let to_provider = location(&authorize(&app, &client_id, redirect_uri, &pkce, &ask).await);
    let scope = param(&to_provider, "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    let callback = log_in(upstream, &to_provider, "alice").await;
    let back = location(&browser().get(callback).send().await.unwrap());
    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // The access token is the gateway's, for MCP only.
    let access = tokens["access_token"].as_str().unwrap();
    let claims = check_at(&app, MCP, access).await.unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(
        check_at(&app, OTHER, access).await.unwrap_err(),
        "InvalidAudience"
    );
    assert_eq!(introspected(&app, access).await["active"], true);
    // The ID token is the gateway's too, with the app's nonce.
    let id = id_token_claims(&tokens);
    assert_eq!(
        (id["iss"].as_str(), id["aud"].as_str(), id["sub"].as_str()),
        (
            Some(app.base.as_str()),
            Some(client_id.as_str()),
            Some("alice")
        )
    );
    assert_eq!(id["nonce"], "app-nonce-7");
    let userinfo = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    assert_eq!(userinfo.json::<Value>().await.unwrap()["sub"], "alice");

    // A refresh for another resource is refused; one for the grant's gives
    // a new pair; the old refresh token again revokes the family.
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, refused) = refreshed(&app, &client_id, first, &[("resource", OTHER)]).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    let (status, renewed) = refreshed(&app, &client_id, first, &[]).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let renewed_access = renewed["access_token"].as_str().unwrap();
    assert_eq!(
        check_at(&app, MCP, renewed_access).await.unwrap()["sub"],
        "alice"
    );
    let second = renewed["refresh_token"].as_str().unwrap();
    let (_, reused) = refreshed(&app, &client_id, first, &[]).await;
    assert_eq!(reused["error"], "invalid_grant");
    let (_, after) = refreshed(&app, &client_id, second, &[]).await;
    assert_eq!(after["error"], "invalid_grant", "the family is revoked");
    assert_eq!(introspected(&app, renewed_access).await["active"], false);

    // The gateway's refresh tokens are not stored in clear.
    let bytes = std::fs::read(&app.db_path).unwrap();
    for secret in [first, second] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    upstream.assert_clean();
}

#[tokio::test]
async fn the_mcp_sdk_gets_the_gateways_own_tokens_through_an_rfc7591_provider() {
    let upstream = OidcProvider::start().await;
    let app = spawn_app_with(&format!(
        "{}tokens = \"gateway\"\nallowed_resources = [\"http://127.0.0.1:*/mcp\"]\n",
        front_toml(&upstream)
    ))
    .await;
    let env = vec![("GATEWAY_TOKENS", "1".to_owned())];
    let outcome = sdk_flow_with(&app, &upstream, &[], env).await;
    assert_eq!(outcome["other_audience_refused"], true, "{outcome}");
    assert_eq!(
        outcome["old_refresh_token_error"], "invalid_grant",
        "{outcome}"
    );
}
