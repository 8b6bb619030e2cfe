//! The gateway's own machinery under provider faults, shown through
//! Hydra's fake (the contract suite, `providers`, runs what every back end
//! must do): random faults on every call, the breaker, the background task,
//! the janitor, reconcile's audits, and initial access tokens.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::providers::Subject;
use crate::support::faults::Fault;
use crate::support::hydra::HydraFake;
use crate::support::*;

/// A gateway in front of `fake` whose calls time out after 1 s, with extra
/// configuration (provider keys first, then any sections).
async fn hydra_gateway_with(fake: &HydraFake, extra: &str) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"1s\"\nreconcile_interval = \"0s\"\n{extra}",
        HydraFake::keys_at(&fake.base)
    ))
    .await
}

/// A gateway in front of `fake` with extra configuration, calls sent once
/// and never shed, so that each queued fault lands where the test says.
async fn hydra_gateway(fake: &HydraFake, extra: &str) -> TestApp {
    hydra_gateway_with(
        fake,
        &format!("retries = 0\ncircuit_failure_rate = 1.0\n{extra}"),
    )
    .await
}

const ONE_HOUR_CLIENTS: &str = "[policies.default]\nclient_lifetime = \"1h\"\n";

#[tokio::test]
async fn the_background_task_resolves_unknown_outcomes_and_expires_clients() {
    let fake = HydraFake::start().await;
    let app = hydra_gateway(&fake, ONE_HOUR_CLIENTS).await;
    let kept = app.register(&web_client()).await;
    // Hydra makes this one and loses the answer: the row stays pending.
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    assert_eq!(
        app.post_register(&web_client()).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(fake.client_ids().len(), 2);
    // An hour later the first client's lifetime is over, and the pending
    // row is far older than the grace period.
    app.clock.advance(Duration::from_secs(3600));
    let task = app.reconciler.spawn(Duration::from_millis(50)).unwrap();
    let settled =
        eventually(|| async { app.rows().await.is_empty() && fake.client_ids().is_empty() }).await;
    drop(task);
    assert!(
        settled,
        "rows {:?}, at Hydra {:?}",
        app.rows().await,
        fake.client_ids()
    );
    assert_eq!(
        app.read(&kept, Some(token_of(&kept))).await.status(),
        StatusCode::UNAUTHORIZED,
        "an expired client answers as one that does not exist"
    );
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn the_janitor_goes_past_a_client_whose_delete_fails() {
    let fake = HydraFake::start().await;
    let app = hydra_gateway(&fake, ONE_HOUR_CLIENTS).await;
    for _ in 0..3 {
        app.register(&web_client()).await;
    }
    app.clock.advance(Duration::from_secs(3600));
    // Hydra refuses the first delete for now.
    fake.ledger.queue_faults(&[Fault::RateLimited]);
    let (removed, events) = audited(app.reconciler.expire_clients()).await;
    let removed = removed.unwrap();
    assert_eq!(removed.len(), 2, "the other two went");
    let outcomes: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "expire")
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    assert_eq!(outcomes.len(), 3, "every expiry is audited: {events:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "success").count(), 2);
    let left = app.rows().await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].1, "active",
        "the refused delete left the client whole"
    );
    assert_eq!(fake.client_ids(), [left[0].0.clone()]);
    let removed = app.reconciler.expire_clients().await.unwrap();
    assert_eq!(removed.len(), 1, "the next run takes it");
    assert!(fake.client_ids().is_empty());
    fake.ledger.assert_clean("Hydra");
}

/// Every deletion reconcile makes is audited like an app's delete.
#[tokio::test]
async fn reconcile_deletions_are_audited() {
    let fake = HydraFake::start().await;
    let app = hydra_gateway(&fake, "").await;
    let pending = fake.client_ids();
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    app.post_register(&web_client()).await;
    let made: Vec<String> = fake
        .client_ids()
        .into_iter()
        .filter(|id| !pending.contains(id))
        .collect();
    let (report, events) = audited(app.reconcile()).await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 1);
    let event = events
        .iter()
        .find(|e| e["action"] == "reconcile_delete")
        .unwrap_or_else(|| panic!("no reconcile_delete event in {events:?}"));
    assert_eq!(event["client_id"], made[0]);
    assert_eq!(event["outcome"], "deleted_at_provider");
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn an_initial_access_tokens_use_is_given_back_when_nothing_was_made() {
    let fake = HydraFake::start().await;
    let app = hydra_gateway(&fake, "[registration]\nmode = \"initial_access_token\"\n").await;
    let (token, _) = app
        .service
        .create_initial_access_token(Some(1), None, None, None)
        .await
        .unwrap();
    let register = || {
        app.http
            .post(app.url("/register"))
            .bearer_auth(token.expose())
            .json(&web_client())
            .send()
    };
    fake.reject_next("the client is not allowed");
    assert_eq!(register().await.unwrap().status(), StatusCode::BAD_REQUEST);
    fake.ledger.queue_faults(&[Fault::RateLimited]);
    assert_eq!(
        register().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(register().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(
        register().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "the one use is spent"
    );
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn under_random_faults_gateway_and_hydra_end_with_the_same_clients() {
    let fake = HydraFake::start().await;
    let app = hydra_gateway(&fake, "").await;
    fake.ledger.random_faults(0.2, 7);

    let mut workers = Vec::new();
    // 1000 registrations (a third deleted, a third replaced) over 8 connections.
    for worker in 0..8u64 {
        let http = app.http.clone();
        let base = app.base.clone();
        workers.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for i in 0..125u64 {
                let response = http
                    .post(format!("{base}/register"))
                    .json(&json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": format!("w{worker}-{i}") }))
                    .send()
                    .await
                    .unwrap();
                if response.status() != StatusCode::CREATED {
                    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
                    continue;
                }
                let client: Value = response.json().await.unwrap();
                let uri = uri_of(&client);
                let token = token_of(&client).to_owned();
                match i % 3 {
                    0 => {
                        let status = http.delete(&uri).bearer_auth(&token).send().await.unwrap().status();
                        assert!(status == StatusCode::NO_CONTENT || status == StatusCode::SERVICE_UNAVAILABLE);
                        if status == StatusCode::SERVICE_UNAVAILABLE {
                            kept.push((client, false));
                        }
                    }
                    1 => {
                        let body = json!({ "client_id": client["client_id"], "redirect_uris": ["https://app.example.com/cb2"] });
                        let status = http.put(&uri).bearer_auth(&token).json(&body).send().await.unwrap().status();
                        assert!(status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE);
                        kept.push((client, true));
                    }
                    _ => kept.push((client, true)),
                }
            }
            kept
        }));
    }
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.unwrap());
    }
    fake.ledger.random_faults(0.0, 0);
    let report = app.reconcile().await;
    assert!(report.failed.is_empty(), "{report:?}");

    let hydra = assert_same_clients(&app, "Hydra", fake.client_ids()).await;
    assert!(!report.has_drift(), "{report:?}");

    // Every 201 that was not deleted is still readable and at Hydra.
    let mut readable = 0;
    for (client, must_exist) in &acknowledged {
        let status = app.read(client, Some(token_of(client))).await.status();
        if *must_exist {
            assert_eq!(status, StatusCode::OK);
            readable += 1;
        }
        assert_eq!(
            status == StatusCode::OK,
            hydra.contains(client["client_id"].as_str().unwrap())
        );
    }
    assert!(
        readable > 50,
        "too few registrations succeeded to mean anything: {readable}"
    );
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn a_failing_provider_is_shed_in_proportion_and_trials_find_it_recovered() {
    let fake = HydraFake::start().await;
    let app = hydra_gateway_with(
        &fake,
        "retries = 0\ncircuit_min_calls = 10\ncircuit_window = \"1h\"\n",
    )
    .await;
    fake.ledger.queue_faults(&[Fault::ServerError; 10]);
    for _ in 0..10 {
        assert_eq!(
            app.post_register(&web_client()).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    // Every call failed; Hydra is healthy again, but the breaker does not
    // know yet: it sheds a share of calls, answered at once and unsent, and
    // the trials it lets through succeed until it sheds nothing.
    let mut shed = 0;
    let mut successes_in_a_row = 0;
    for _ in 0..300 {
        let before = fake.ledger.requests();
        let response = app.post_register(&web_client()).await;
        if response.status() == StatusCode::CREATED {
            successes_in_a_row += 1;
            if successes_in_a_row == 10 {
                break;
            }
            continue;
        }
        successes_in_a_row = 0;
        assert!(response.headers().contains_key("retry-after"));
        let (code, description) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(code, "temporarily_unavailable");
        assert!(
            description.contains("unavailable; retry in"),
            "{description}"
        );
        assert_eq!(fake.ledger.requests(), before, "a shed call sends nothing");
        shed += 1;
    }
    // After s successes the share is (10 - s) / (11 + s) (k = 2): its
    // running sum passes a whole number 8 times before s reaches 10.
    assert_eq!(shed, 8, "calls shed while Hydra seemed to fail");
    assert_eq!(successes_in_a_row, 10, "trials found Hydra recovered");
    // The ten failed registrations are pending: reconcile clears them.
    let report = app.reconcile().await;
    assert_eq!(report.abandoned_never_created.len(), 10);
    assert!(!report.has_drift(), "{report:?}");
    fake.ledger.assert_clean("Hydra");
}
