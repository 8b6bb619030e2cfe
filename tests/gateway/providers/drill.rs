//! The fault drill: behind its fake failing a fifth of writes (a third as
//! 500s, a third hanging past the gateway's timeout, a third committing and
//! then dropping the connection), 8 workers send 300 registrations that all
//! share one `client_name`, then 60 deletes. Most of them must succeed, and
//! after reconcile gateway and provider must hold exactly the same clients,
//! with every acknowledged registration readable.
//!
//! The figures go to stderr: `cargo test --all-features --test gateway
//! drill -- --nocapture` prints them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::Subject;
use crate::support::faults::Fault;
use crate::support::*;

const WORKERS: usize = 8;
const REGISTRATIONS: usize = 300;
const DELETES: usize = 60;
const FAULT_RATE: f64 = 0.2;
const FAULTS: [Fault; 3] = [Fault::ServerError, Fault::Hang, Fault::CommitAndDrop];

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

/// Runs the drill against a gateway in front of the subject's fake, which
/// fails as the drill says; calls time out after 1 s, with the default
/// retries and breaker. Asserts what the drill promises.
pub async fn drill<S: Subject>() {
    let fake = S::start().await;
    fake.allow_bulk();
    let app = spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"1s\"\nreconcile_interval = \"0s\"\n",
        S::keys_at(fake.base())
    ))
    .await;
    let name = S::VENDOR;
    let started = Instant::now();
    fake.ledger().random_write_faults(FAULT_RATE, &FAULTS, 42);
    let acknowledged = register_all(&app).await;
    let doomed = acknowledged.len().min(DELETES);
    let delete_answers = delete_first(&app, &acknowledged[..doomed]).await;
    let under_faults = started.elapsed();
    fake.ledger().random_faults(0.0, 0);
    let report = app.reconcile().await;

    let deleted = delete_answers
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count();
    eprintln!(
        "fault drill, {name}: {}/{REGISTRATIONS} registrations and {deleted}/{doomed} deletes \
         succeeded in {:.1} s; reconcile: {} abandoned registrations removed ({} had reached \
         the provider), {} deletions completed, {} orphans removed, {} unknown, {} missing",
        acknowledged.len(),
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
        deleted * 5 >= doomed * 4,
        "{name}: only {deleted} of {doomed} deletes succeeded: {delete_answers:?}"
    );
    assert!(report.failed.is_empty(), "{name}: {report:?}");
    assert!(!report.has_drift(), "{name}: {report:?}");
    let provider = assert_same_clients(&app, name, fake.ids()).await;
    assert_each_answer_holds(name, &app, &acknowledged, &delete_answers, &provider).await;
    fake.ledger().assert_clean(name);
}

/// Sends the registrations; returns the acknowledged ones (a 503 is the
/// only other answer allowed).
async fn register_all(app: &TestApp) -> Vec<Value> {
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
    registered.into_iter().flatten().collect()
}

/// Deletes `doomed`; returns each answer's status, in order.
async fn delete_first(app: &TestApp, doomed: &[Value]) -> Vec<StatusCode> {
    let http = app.http.clone();
    let doomed = Arc::new(doomed.to_vec());
    in_workers(doomed.len(), move |i| {
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
    })
    .await
}

/// Every acknowledged registration reads and is at the provider, unless
/// its delete was acknowledged: then it is gone from both.
async fn assert_each_answer_holds(
    name: &str,
    app: &TestApp,
    acknowledged: &[Value],
    delete_answers: &[StatusCode],
    provider: &BTreeSet<String>,
) {
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
}
