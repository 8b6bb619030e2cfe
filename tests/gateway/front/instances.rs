//! Several gateway instances on one PostgreSQL database, under one public
//! URL: each hop of a flow may land on any of them.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::support::postgres::TestDatabase;

#[tokio::test]
async fn each_hop_may_reach_another_instance_on_one_postgres_database() {
    let database = TestDatabase::create().await;
    let upstream = OidcProvider::start().await;
    // The balancer's name for both: a loopback address, as the provider
    // accepts for native clients; the test routes each hop itself.
    let public = "http://127.0.0.1:9";
    let a = spawn_instance(public, &database.url, &front_toml(&upstream)).await;
    let b = spawn_instance(public, &database.url, &front_toml(&upstream)).await;
    let client_id = native_client(&a).await;
    let pkce = pkce("instances");
    let redirect_uri = "http://127.0.0.1:61000/cb";

    let to_provider = location(&authorize(&a, &client_id, redirect_uri, &pkce, &[]).await);
    assert_eq!(
        param(&to_provider, "redirect_uri").unwrap(),
        format!("{public}/callback")
    );
    let callback = log_in(&upstream, &to_provider, "bob").await;
    let on_b = format!("{}/callback?{}", b.base, callback.query().unwrap());
    let back = location(&browser().get(on_b).send().await.unwrap());
    assert!(back.as_str().starts_with(redirect_uri), "{back}");
    assert_eq!(param(&back, "iss").unwrap(), public);

    let (status, tokens) = redeem(&a, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        userinfo(&upstream, tokens["access_token"].as_str().unwrap())
            .await
            .1["sub"],
        "bob"
    );
    let (status, error) = redeem(&b, &client_id, &back, &pkce).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
}
