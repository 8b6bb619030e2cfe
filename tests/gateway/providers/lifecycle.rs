//! A client's life at the provider: made, read, replaced, given a new
//! secret, deleted; and what becomes of it when the provider loses it or
//! a replace or delete loses its answer.

use dcr_gateway::domain::ClientId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Subject, fault_on_write, gateway, texts};
use crate::support::faults::Fault;
use crate::support::*;

pub async fn register_read_replace_rotate_delete<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Contract app",
            "scope": "read write",
            "contacts": ["ops@example.com"],
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    let id = id_of(&client).to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(fake.ids(), [id.as_str()], "the client is at {}", S::VENDOR);
    assert_eq!(
        fake.secret_of(&id).as_deref(),
        Some(secret.as_str()),
        "the app's secret is the one {} holds",
        S::VENDOR
    );
    assert_eq!(
        fake.redirect_uris_of(&id),
        Some(vec!["https://app.example.com/cb".to_owned()])
    );

    // What the provider cannot hold, the gateway keeps.
    let read = app.read(&client, Some(token_of(&client))).await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["client_name"], "Contract app");
    assert_eq!(read["scope"], "read write");
    assert_eq!(read["contacts"], json!(["ops@example.com"]));
    assert!(read.get("client_secret").is_none());

    // A replace reaches the provider and keeps the secret.
    let replaced = app
        .replace(
            &client,
            json!({ "redirect_uris": ["https://app.example.com/new"], "client_name": "Renamed" }),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(replaced["client_name"], "Renamed");
    assert!(
        replaced.get("client_secret").is_none(),
        "the secret did not change"
    );
    assert_eq!(
        fake.redirect_uris_of(&id),
        Some(vec!["https://app.example.com/new".to_owned()])
    );
    assert_eq!(fake.secret_of(&id).as_deref(), Some(secret.as_str()));

    let rotated = app.service.rotate_secret(&id, "test").await.unwrap();
    assert_eq!(
        fake.secret_of(&id).as_deref(),
        Some(rotated.expose()),
        "the new secret reached {}",
        S::VENDOR
    );
    assert_ne!(rotated.expose(), secret);

    let deleted = app.delete(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(fake.ids().is_empty(), "deleted at {}", S::VENDOR);
    let gone = app.read(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    let report = app.reconcile().await;
    assert!(!report.has_drift(), "a deleted client is gone: {report:?}");
    assert!(app.rows().await.is_empty());
    fake.ledger().assert_clean(S::VENDOR);
}

/// An admin removes the client at the provider: the gateway cannot change
/// it, reconcile reports it missing, and it reads as gone to its app.
pub async fn a_client_deleted_behind_the_gateways_back_reads_as_gone<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    let client = app.register(&web_client()).await;
    let id = id_of(&client);
    fake.forget(id).await;
    assert!(app.service.rotate_secret(id, "test").await.is_err());
    let report = app.reconcile().await;
    assert_eq!(
        texts(&report.missing_at_provider),
        [id],
        "reconcile reports the client missing at {}",
        S::VENDOR
    );
    assert_missing_at_provider_reads_as_gone(&app, &client).await;
    assert!(app.rows().await.is_empty());
    fake.ledger().assert_clean(S::VENDOR);
}

pub async fn a_failed_replace_leaves_the_registration_as_it_was<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    let client = app
        .register(
            &json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "Before" }),
        )
        .await;
    fault_on_write(&fake, S::READS_BEFORE_REPLACE, Fault::ServerError);
    let response = app
        .replace(
            &client,
            json!({ "redirect_uris": ["https://app.example.com/new"], "client_name": "After" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let read: Value = app.read_json(&client).await;
    assert_eq!(read["client_name"], "Before");
    assert_eq!(read["redirect_uris"], json!(["https://app.example.com/cb"]));
    fake.ledger().assert_clean(S::VENDOR);
}

/// A replace whose outcome at the provider is unknown keeps its hold on
/// the client: the stored registration is sent again by reconcile once the
/// hold lapses, so that gateway and provider agree.
pub async fn a_replace_with_an_unknown_outcome_is_sent_again_by_reconcile<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    let client = app.register(&web_client()).await;
    let id = id_of(&client);
    let new = json!({ "redirect_uris": ["https://app.example.com/new"] });
    // The replace reaches the provider, which commits it and drops the answer.
    fault_on_write(&fake, S::READS_BEFORE_REPLACE, Fault::CommitAndDrop);
    let changed = app.replace(&client, new.clone()).await;
    assert_eq!(changed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        fake.redirect_uris_of(id),
        Some(vec!["https://app.example.com/new".to_owned()]),
        "{} took it",
        S::VENDOR
    );
    // Until reconcile settles it, another change waits; reads go on.
    let read = app.read(&client, Some(token_of(&client))).await;
    assert_eq!(read.status(), StatusCode::OK);
    let blocked = app.replace(&client, web_client()).await;
    assert_eq!(blocked.status(), StatusCode::CONFLICT);
    let report = app.reconcile().await;
    assert_eq!(report.replaces_completed, [ClientId::new(id)]);
    assert!(!report.has_drift(), "{report:?}");
    // The app was told the change failed: gateway and provider hold the old one.
    assert_eq!(
        fake.redirect_uris_of(id),
        Some(vec!["https://app.example.com/cb".to_owned()])
    );
    let changed = app.replace(&client, new).await;
    assert_eq!(changed.status(), StatusCode::OK);
    fake.ledger().assert_clean(S::VENDOR);
}

/// Two replaces of one client at once: the first holds the client while
/// the provider works on it; the second is refused with 409 and changes
/// nothing. The winner's rotated token works, and gateway and provider hold
/// the winner's metadata.
pub async fn concurrent_replaces_one_wins_the_other_is_refused<S: Subject>() {
    let fake = S::start().await;
    let app = spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"5s\"\nreconcile_interval = \"0s\"\n\
         [registration]\nrotate_registration_access_token = \"on_update\"\n",
        S::keys_at(fake.base())
    ))
    .await;
    let client = app.register(&web_client()).await;
    // The provider takes a second over the first replace.
    fault_on_write(&fake, S::READS_BEFORE_REPLACE, Fault::Slow);
    let put = |uri: &str| {
        let body = update_body(
            &client,
            json!({ "redirect_uris": [format!("https://app.example.com/{uri}")] }),
        );
        let request = app
            .http
            .put(uri_of(&client))
            .bearer_auth(token_of(&client))
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let before = fake.ledger().requests();
    let first = tokio::spawn(put("first"));
    // Once its write is at the provider, the first holds the client.
    fake.ledger()
        .await_requests(
            before + S::READS_BEFORE_REPLACE + 1,
            "the first replace's write",
        )
        .await;
    let second = put("second").await;
    let (code, description) = error_of(second, StatusCode::CONFLICT).await;
    assert_eq!(code, "conflict");
    assert!(description.contains("retry"), "{description}");
    let winner: Value = first.await.unwrap().json().await.unwrap();
    let first = json!(["https://app.example.com/first"]);
    assert_eq!(winner["redirect_uris"], first);
    let token = token_of(&winner);
    assert_ne!(token, token_of(&client), "the token rotated");
    let read: Value = app.read(&winner, Some(token)).await.json().await.unwrap();
    assert_eq!(read["redirect_uris"], first);
    assert_eq!(
        fake.redirect_uris_of(id_of(&client)),
        Some(vec!["https://app.example.com/first".to_owned()])
    );
    // Once the first is done, the client can be changed again.
    let again = app
        .update(
            &winner,
            Some(token),
            &update_body(
                &client,
                json!({ "redirect_uris": ["https://app.example.com/third"] }),
            ),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    fake.ledger().assert_clean(S::VENDOR);
}

/// A delete whose answer is lost finishes in reconcile; the token is dead
/// at once.
pub async fn a_delete_whose_answer_is_lost_finishes_in_reconcile<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    let client = app.register(&web_client()).await;
    fault_on_write(&fake, S::READS_BEFORE_DELETE, Fault::CommitAndDrop);
    let response = app.delete(&client, Some(token_of(&client))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.read(&client, Some(token_of(&client))).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let report = app.reconcile().await;
    assert_eq!(report.deletions_completed.len(), 1);
    assert!(!report.has_drift(), "{report:?}");
    assert!(app.rows().await.is_empty());
    assert!(fake.ids().is_empty());
    fake.ledger().assert_clean(S::VENDOR);
}
