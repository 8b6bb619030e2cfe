//! The Zendesk backend against a stateful fake of Zendesk's OAuth clients API
//! that checks every request against Zendesk's OpenAPI document.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::zendesk::{ACCESS_TOKEN, API_TOKEN, EMAIL, Fault, ZendeskFake};
use crate::support::*;

/// The admin recorded as creator of every client.
const USER_ID: i64 = 29;

/// The `[provider]` keys of a gateway in front of `fake`.
pub(crate) fn keys_for(fake: &ZendeskFake) -> String {
    format!(
        "kind = \"zendesk\"\nbase_url = \"{}\"\nemail = \"{EMAIL}\"\n\
         api_token = \"{API_TOKEN}\"\nuser_id = {USER_ID}",
        fake.base
    )
}

pub(crate) async fn gateway_for(fake: &ZendeskFake) -> TestApp {
    spawn_app_for_provider(&keys_for(fake)).await
}

#[tokio::test]
async fn zendesk_register_read_replace_rotate_delete() {
    let fake = ZendeskFake::start().await;
    let app = gateway_for(&fake).await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Help widget",
            "scope": "read write",
            "grant_types": ["authorization_code", "refresh_token"],
            "contacts": ["ops@example.com"],
        }))
        .await;
    let id = id_of(&client);
    let held = fake
        .client(id)
        .expect("the identifier is the gateway's client id");
    assert_eq!(held["name"], "Help widget");
    assert_eq!(held["kind"], "confidential");
    assert_eq!(held["user_id"], USER_ID);
    assert_eq!(held["redirect_uri"], json!(["https://app.example.com/cb"]));
    assert_eq!(
        held["secret"], client["client_secret"],
        "the app's secret is Zendesk's"
    );
    assert_eq!(
        client["scope"], "read write",
        "the gateway kept what Zendesk cannot hold"
    );
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );

    // Names need not be unique at Zendesk; identifiers are, and the gateway picks them.
    let twin = app
        .register(&json!({
            "redirect_uris": ["https://twin.example.com/cb"],
            "client_name": "Help widget",
        }))
        .await;
    assert_ne!(id_of(&twin), id);

    let read = app.read(&client, Some(token_of(&client))).await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["contacts"], json!(["ops@example.com"]));

    let replaced = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({
                    "redirect_uris": ["https://app.example.com/new"],
                    "client_name": "Help widget 2",
                }),
            ),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    assert!(
        replaced.get("client_secret").is_none(),
        "the secret did not change"
    );
    let held = fake.client(id).unwrap();
    assert_eq!(held["name"], "Help widget 2");
    assert_eq!(held["redirect_uri"], json!(["https://app.example.com/new"]));
    assert_eq!(held["secret"], client["client_secret"]);

    let rotated = app.service.rotate_secret(id).await.unwrap();
    assert_eq!(fake.client(id).unwrap()["secret"], rotated.expose());
    assert_ne!(rotated.expose(), client["client_secret"].as_str().unwrap());

    let deleted = app.delete(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(fake.client(id).is_none());
    let gone = app.read(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    fake.ledger.assert_clean("Zendesk");
}

#[tokio::test]
async fn zendesk_kind_follows_the_auth_method() {
    let fake = ZendeskFake::start().await;
    let app = gateway_for(&fake).await;
    let public = app
        .register(&json!({
            "redirect_uris": ["https://spa.example.com/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let held = fake.client(id_of(&public)).unwrap();
    assert_eq!(held["kind"], "public");
    assert!(
        held["name"].as_str().unwrap().starts_with("dcr-"),
        "Zendesk requires a name"
    );
    assert!(public.get("client_secret").is_none());

    let confidential = app
        .update(
            &public,
            Some(token_of(&public)),
            &update_body(
                &public,
                json!({
                    "redirect_uris": ["https://spa.example.com/cb"],
                    "token_endpoint_auth_method": "client_secret_post",
                }),
            ),
        )
        .await;
    assert_eq!(confidential.status(), StatusCode::OK);
    let confidential: Value = confidential.json().await.unwrap();
    let held = fake.client(id_of(&public)).unwrap();
    assert_eq!(held["kind"], "confidential");
    assert_eq!(
        held["secret"], confidential["client_secret"],
        "the new secret was generated by Zendesk"
    );
    fake.ledger.assert_clean("Zendesk");
}

#[tokio::test]
async fn zendesk_refuses_jwt_auth_and_grants_it_lacks_before_calling() {
    let fake = ZendeskFake::start().await;
    let app = gateway_for(&fake).await;
    for body in [
        json!({ "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "client_secret_jwt" }),
        json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://app.example.com/jwks.json",
        }),
        json!({ "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "response_types": [] }),
    ] {
        let (error, description) = app.register_error(&body).await;
        assert_eq!(error, "invalid_client_metadata");
        assert!(description.contains("zendesk"), "{description}");
    }
    assert_eq!(fake.ledger.requests(), 0);
    fake.ledger.assert_clean("Zendesk");
}

#[tokio::test]
async fn zendesk_rate_limit_and_unknown_records() {
    let fake = ZendeskFake::start().await;
    let app = gateway_for(&fake).await;
    fake.ledger.queue_faults(&[Fault::RateLimited]);
    let response = app.post_register(&web_client()).await;
    assert_eq!(
        response.headers()["retry-after"],
        "7",
        "Zendesk's Retry-After is passed on"
    );
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(
        app.rows().await.is_empty(),
        "nothing was created, nothing is kept"
    );

    let client = app.register(&web_client()).await;
    fake.forget(id_of(&client));
    assert_missing_at_provider_reads_as_gone(&app, &client).await;
    fake.ledger.assert_clean("Zendesk");
}

#[tokio::test]
async fn zendesk_lost_creates_are_adopted_or_removed_by_reconcile() {
    let fake = ZendeskFake::start().await;
    let app = gateway_for(&fake).await;
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    let adopted = app.register(&web_client()).await;
    assert_eq!(fake.identifiers(), vec![id_of(&adopted).to_owned()]);
    assert_eq!(
        fake.client(id_of(&adopted)).unwrap()["secret"],
        adopted["client_secret"],
        "a fresh secret from generate_secret"
    );

    fake.ledger
        .queue_faults(&[Fault::CommitAndDrop, Fault::ServerError]);
    let response = app.post_register(&web_client()).await;
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert_eq!(fake.identifiers().len(), 2);

    // Paging: the reconcile below must follow the cursor.
    fake.limit_page_size(1);
    for _ in 0..3 {
        app.register(&web_client()).await;
    }
    let report = app.reconcile().await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 1, "{report:?}");
    assert!(
        report.unknown_to_gateway.is_empty() && report.missing_at_provider.is_empty(),
        "{report:?}"
    );
    assert_eq!(fake.identifiers().len(), 4);
    let mut rows: Vec<String> = app.rows().await.into_iter().map(|(id, _)| id).collect();
    let mut held = fake.identifiers();
    rows.sort();
    held.sort();
    assert_eq!(rows, held);
    fake.ledger.assert_clean("Zendesk");
}

#[tokio::test]
async fn zendesk_accepts_an_oauth_access_token_instead_of_an_api_token() {
    let fake = ZendeskFake::start().await;
    let app = spawn_app_for_provider(&format!(
        "kind = \"zendesk\"\nbase_url = \"{}\"\naccess_token = \"{ACCESS_TOKEN}\"\nuser_id = 1",
        fake.base
    ))
    .await;
    let client = app.register(&web_client()).await;
    assert!(fake.client(id_of(&client)).is_some());
    fake.ledger.assert_clean("Zendesk");
}
