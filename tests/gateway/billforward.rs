//! The BillForward backend against a stateful fake of its Clients API that
//! checks every request against the documented Client model.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::billforward::{API_TOKEN, BillForwardFake, Fault};
use crate::support::*;

/// The `[provider]` keys of a gateway in front of `fake`.
pub(crate) fn keys_for(fake: &BillForwardFake, separator: &str) -> String {
    format!(
        "kind = \"billforward\"\nbase_url = \"{}\"\napi_token = \"{API_TOKEN}\"\n\
         organization_id = \"ORG-1\"\nresource_ids = [\"billing\", \"invoices\"]\n\
         authorities = [\"ROLE_CLIENT\"]\naccess_token_validity_seconds = 600\n\
         list_separator = \"{separator}\"",
        fake.base
    )
}

pub(crate) async fn gateway_for(fake: &BillForwardFake, separator: &str) -> TestApp {
    spawn_app_for_provider(&keys_for(fake, separator)).await
}

#[tokio::test]
async fn billforward_register_read_replace_rotate_retire() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Billing app",
            "scope": "read write",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    let id = id_of(&client);
    let held = fake.client(id).expect("the gateway chose the clientId");
    assert_eq!(
        held["clientSecret"], client["client_secret"],
        "the gateway made the secret"
    );
    assert_eq!(held["organizationID"], "ORG-1");
    assert_eq!(held["scope"], "read,write");
    assert_eq!(
        held["authorizedGrantTypes"],
        "authorization_code,refresh_token"
    );
    assert_eq!(held["registeredRedirectUris"], "https://app.example.com/cb");
    assert_eq!(held["resourceIds"], "billing,invoices");
    assert_eq!(held["authorities"], "ROLE_CLIENT");
    assert_eq!(held["accessTokenValiditySeconds"], 600);
    assert_eq!(
        held["refreshTokenValiditySeconds"], 2_592_000,
        "Spring's default"
    );
    assert_eq!(
        client["client_name"], "Billing app",
        "the gateway keeps the name"
    );

    let read = app.read(&client, Some(token_of(&client))).await;
    assert_eq!(read.status(), StatusCode::OK);

    let replaced = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({
                    "redirect_uris": ["https://app.example.com/a", "https://app.example.com/b"],
                    "scope": "read",
                }),
            ),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    let held = fake.client(id).unwrap();
    assert_eq!(
        held["registeredRedirectUris"],
        "https://app.example.com/a,https://app.example.com/b"
    );
    assert_eq!(held["scope"], "read");
    assert_eq!(
        held["clientSecret"], client["client_secret"],
        "the whole record, secret kept"
    );

    let rotated = app.service.rotate_secret(id).await.unwrap();
    assert_eq!(fake.client(id).unwrap()["clientSecret"], rotated.expose());

    let deleted = app.delete(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        fake.client(id).unwrap()["deleted"],
        true,
        "retired, not removed"
    );
    let gone = app.read(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    let report = app.reconcile().await;
    assert!(
        !report.has_drift(),
        "a retired client reads as gone: {report:?}"
    );
    fake.ledger.assert_clean("BillForward");
}

#[tokio::test]
async fn billforward_refuses_what_it_cannot_hold_before_calling() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    for (body, limit) in [
        (
            json!({ "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none" }),
            "always authenticate with a client secret",
        ),
        (
            json!({
                "redirect_uris": ["https://app.example.com/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://app.example.com/jwks.json",
            }),
            "always authenticate with a client secret",
        ),
        (
            json!({ "redirect_uris": ["https://app.example.com/cb?a=1,2"] }),
            "`,`-separated",
        ),
    ] {
        let (error, description) = app.register_error(&body).await;
        assert_eq!(error, "invalid_client_metadata");
        assert!(description.contains("billforward"), "{description}");
        assert!(description.contains(limit), "{description}");
    }
    assert_eq!(fake.ledger.requests(), 0);

    // With another separator the same URI can be held.
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, " ").await;
    let client = app
        .register(&json!({ "redirect_uris": ["https://app.example.com/cb?a=1,2"], "scope": "a b" }))
        .await;
    assert_eq!(fake.client(id_of(&client)).unwrap()["scope"], "a b");
    fake.ledger.assert_clean("BillForward");
}

#[tokio::test]
async fn billforward_failures_rate_limit_unknown_and_lost_creates() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    fake.ledger.queue_faults(&[Fault::RateLimited]);
    let response = app.post_register(&web_client()).await;
    assert_eq!(response.headers()["retry-after"], "7");
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(app.rows().await.is_empty());

    let client = app.register(&web_client()).await;
    fake.forget(id_of(&client));
    assert_missing_at_provider_reads_as_gone(&app, &client).await;

    // A lost answer is checked by id: the client is there, with the gateway's secret.
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    let adopted = app.register(&web_client()).await;
    assert_eq!(fake.active_ids(), vec![id_of(&adopted).to_owned()]);
    assert_eq!(
        fake.client(id_of(&adopted)).unwrap()["clientSecret"],
        adopted["client_secret"]
    );

    // Lost answer, failed check: pending until reconcile retires it. Pages
    // shorter than asked for must not end the listing.
    fake.limit_page_size(1);
    for _ in 0..3 {
        app.register(&web_client()).await;
    }
    fake.ledger
        .queue_faults(&[Fault::CommitAndDrop, Fault::ServerError]);
    let response = app.post_register(&web_client()).await;
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert_eq!(fake.active_ids().len(), 5);
    let report = app.reconcile().await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 1, "{report:?}");
    assert_eq!(fake.active_ids().len(), 4);
    assert!(fake.active_ids().contains(&id_of(&adopted).to_owned()));
    assert!(!report.has_drift(), "{report:?}");
    fake.ledger.assert_clean("BillForward");
}

#[tokio::test]
async fn billforward_replace_issues_a_new_secret_when_the_held_one_is_not_shown() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    let client = app.register(&web_client()).await;
    fake.hide_secrets();
    let replaced = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({ "redirect_uris": ["https://app.example.com/2"] }),
            ),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    let held = fake.client(id_of(&client)).unwrap();
    assert_eq!(
        held["clientSecret"], replaced["client_secret"],
        "never a blank secret"
    );
    assert_ne!(replaced["client_secret"], client["client_secret"]);
    fake.ledger.assert_clean("BillForward");
}

/// A listing that never advances (the API ignores `offset`) ends reconcile's
/// comparison with an error instead of a loop.
#[tokio::test]
async fn a_listing_that_does_not_advance_ends_with_an_error() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    for _ in 0..3 {
        app.register(&web_client()).await;
    }
    fake.limit_page_size(2);
    fake.ignore_offset();
    let report = tokio::time::timeout(std::time::Duration::from_secs(10), app.reconcile())
        .await
        .expect("reconcile ends");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].contains("does not advance"), "{report:?}");
    fake.ledger.assert_clean("BillForward");
}
