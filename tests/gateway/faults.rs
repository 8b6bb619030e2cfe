//! The fault drill, per provider: behind its fake failing a fifth of writes
//! (a third as 500s, a third hanging past the gateway's timeout, a third
//! committing and then dropping the connection), 8 workers send 300
//! registrations that all share one `client_name`, then 60 deletes. Most of
//! them must succeed, and after reconcile gateway and provider must hold
//! exactly the same clients, with every acknowledged registration readable.
//!
//! The figures go to stderr: `cargo test --all-features --test gateway
//! drill -- --nocapture` prints them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::billforward::BillForwardFake;
use crate::support::faults::{Fault, Ledger};
use crate::support::hydra::HydraFake;
use crate::support::okta::OktaFake;
use crate::support::zendesk::ZendeskFake;
use crate::support::*;

const WORKERS: usize = 8;
const REGISTRATIONS: usize = 300;
const DELETES: usize = 60;
const FAULT_RATE: f64 = 0.2;
const FAULTS: [Fault; 3] = [Fault::ServerError, Fault::Hang, Fault::CommitAndDrop];

/// A gateway in front of a provider whose fake fails as the drill says:
/// calls time out after 1 s, with the default retries and breaker.
async fn gateway(provider_keys: &str) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\n{provider_keys}\ntimeout = \"1s\"\nreconcile_interval = \"0s\"\n"
    ))
    .await
}

/// What every registration sends: every claude.ai connection looks alike.
fn claude() -> Value {
    json!({
        "client_name": "Claude",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
    })
}

/// Sends `requests` through `WORKERS` concurrent workers; `send(i)` makes
/// request `i`. Returns each request's answer, in order.
async fn in_workers<F, Fut, T>(requests: usize, send: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let send = Arc::new(send);
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let send = send.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in (worker..requests).step_by(WORKERS) {
                    answers.push((i, send(i).await));
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.unwrap());
    }
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// Runs the drill against `app`, whose provider's fake keeps `ledger` and
/// holds `at_provider()`; asserts what the drill promises.
async fn drill(name: &str, app: &TestApp, ledger: &Ledger, at_provider: impl Fn() -> Vec<String>) {
    let started = Instant::now();
    ledger.random_write_faults(FAULT_RATE, &FAULTS, 42);
    let http = app.http.clone();
    let base = app.base.clone();
    let registered: Vec<Option<Value>> = in_workers(REGISTRATIONS, move |_| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http
                .post(format!("{base}/register"))
                .json(&claude())
                .send()
                .await
                .unwrap();
            match response.status() {
                StatusCode::CREATED => Some(response.json::<Value>().await.unwrap()),
                StatusCode::SERVICE_UNAVAILABLE => None,
                other => panic!("{other}: {}", response.text().await.unwrap()),
            }
        }
    })
    .await;
    let acknowledged: Vec<Value> = registered.into_iter().flatten().collect();
    let doomed: Vec<Value> = acknowledged.iter().take(DELETES).cloned().collect();
    let http = app.http.clone();
    let delete_answers: Vec<StatusCode> = in_workers(doomed.len(), {
        let doomed = Arc::new(doomed.clone());
        move |i| {
            let http = http.clone();
            let client = doomed[i].clone();
            async move {
                http.delete(uri_of(&client))
                    .bearer_auth(token_of(&client))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        }
    })
    .await;
    let under_faults = started.elapsed();
    ledger.random_faults(0.0, 0);
    let report = app.reconcile().await;

    let deleted = delete_answers
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count();
    eprintln!(
        "fault drill, {name}: {}/{REGISTRATIONS} registrations and {deleted}/{} deletes \
         succeeded in {:.1} s; reconcile: {} abandoned registrations removed ({} had reached \
         the provider), {} deletions completed, {} orphans removed, {} unknown, {} missing",
        acknowledged.len(),
        doomed.len(),
        under_faults.as_secs_f64(),
        report.abandoned_never_created.len() + report.abandoned_removed_at_provider.len(),
        report.abandoned_removed_at_provider.len(),
        report.deletions_completed.len(),
        report.orphans_removed.len(),
        report.unknown_to_gateway.len(),
        report.missing_at_provider.len(),
    );
    assert!(
        acknowledged.len() * 5 >= REGISTRATIONS * 4,
        "{name}: only {} of {REGISTRATIONS} registrations succeeded",
        acknowledged.len()
    );
    assert!(
        deleted * 5 >= doomed.len() * 4,
        "{name}: only {deleted} of {} deletes succeeded: {delete_answers:?}",
        doomed.len()
    );
    assert!(report.failed.is_empty(), "{name}: {report:?}");
    assert!(!report.has_drift(), "{name}: {report:?}");

    let rows = app.rows().await;
    assert!(
        rows.iter().all(|(_, state)| *state == "active"),
        "{name}: {rows:?}"
    );
    let gateway: BTreeSet<String> = rows.into_iter().map(|(id, _)| id).collect();
    let provider: BTreeSet<String> = at_provider().into_iter().collect();
    assert_eq!(
        gateway, provider,
        "{name}: gateway and provider disagree after reconcile"
    );
    for (i, client) in acknowledged.iter().enumerate() {
        let read = app.read(client, Some(token_of(client))).await.status();
        let deleted = i < DELETES && delete_answers[i] == StatusCode::NO_CONTENT;
        if deleted {
            assert_eq!(
                read,
                StatusCode::UNAUTHORIZED,
                "{name}: a deleted client reads"
            );
            assert!(!provider.contains(id_of(client)));
        } else if i >= DELETES {
            assert_eq!(
                read,
                StatusCode::OK,
                "{name}: an acknowledged client is lost"
            );
            assert!(
                provider.contains(id_of(client)),
                "{name}: missing at the provider"
            );
        }
    }
    ledger.assert_clean(name);
}

#[tokio::test]
async fn drill_hydra() {
    let fake = HydraFake::start().await;
    let app = gateway(&crate::hydra::keys_for(&fake.base)).await;
    drill("Hydra", &app, &fake.ledger, || fake.client_ids()).await;
}

#[tokio::test]
async fn drill_okta() {
    let fake = OktaFake::start().await;
    // Every lost create costs a search of the 300 clients named "Claude",
    // two pages each: more than the fake's usual 600 calls a minute.
    fake.set_budget_limit(2000);
    let app = gateway(&crate::okta::keys_for(&fake)).await;
    drill("Okta", &app, &fake.ledger, || fake.client_ids()).await;
}

#[tokio::test]
async fn drill_zendesk() {
    let fake = ZendeskFake::start().await;
    let app = gateway(&crate::zendesk::keys_for(&fake)).await;
    drill("Zendesk", &app, &fake.ledger, || fake.identifiers()).await;
}

#[tokio::test]
async fn drill_billforward() {
    let fake = BillForwardFake::start().await;
    let app = gateway(&crate::billforward::keys_for(&fake, ",")).await;
    drill("BillForward", &app, &fake.ledger, || fake.active_ids()).await;
}

/// A gateway in front of `fake` with extra configuration, calls sent once
/// and never shed, so that each queued fault lands where the test says.
async fn hydra_gateway(fake: &HydraFake, extra: &str) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"1s\"\nreconcile_interval = \"0s\"\nretries = 0\n\
         circuit_failure_rate = 1.0\n{extra}",
        crate::hydra::keys_for(&fake.base)
    ))
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
    let task =
        dcr_gateway::app::spawn_reconciler(app.service.clone(), Duration::from_millis(50)).unwrap();
    let settled =
        eventually(|| async { app.rows().await.is_empty() && fake.client_ids().is_empty() }).await;
    task.abort();
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
    let (removed, events) = audited(app.service.expire_clients()).await;
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
    let removed = app.service.expire_clients().await.unwrap();
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
