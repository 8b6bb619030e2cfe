//! Graceful shutdown: SIGTERM stops accepting, lets in-flight requests
//! finish within the configured deadline, then exits 0.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::hydra::{Fault, HydraFake};
use crate::support::*;

/// A binary fronting the fake, whose provider calls time out after
/// `provider_timeout`, with the given shutdown deadline.
async fn server(
    fake: &HydraFake,
    provider_timeout: &str,
    shutdown: &str,
) -> (ServerProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_config(dir.path(), port);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace(
        "[server]\n",
        // A long provider timeout needs a request timeout beyond the
        // provider operation deadline it gives.
        &format!("[server]\nshutdown_timeout = \"{shutdown}\"\nrequest_timeout = \"1h\"\n"),
    );
    text.push_str(&format!(
        "[provider]\nkind = \"hydra\"\nadmin_url = \"{0}\"\nissuer = \"{0}\"\ntimeout = \"{provider_timeout}\"\nreconcile_interval = \"0s\"\n",
        fake.base
    ));
    std::fs::write(&path, text).unwrap();
    (ServerProcess::start(&path, port).await, dir)
}

/// Starts a registration whose provider call hangs, then sends SIGTERM once
/// that call is at the fake; returns the request.
async fn terminate_during_a_hanging_registration(
    fake: &HydraFake,
    server: &ServerProcess,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    fake.ledger.queue_faults(&[Fault::Hang]);
    let before = fake.ledger.requests();
    let url = format!("{}/register", server.base);
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&web_client())
            .send()
            .await
    });
    fake.ledger
        .await_requests(before + 1, "the registration's create")
        .await;
    server.terminate();
    in_flight
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    let fake = HydraFake::start().await;
    let (mut server, _dir) = server(&fake, "2s", "20s").await;
    let in_flight = terminate_during_a_hanging_registration(&fake, &server).await;
    // The request that was running gets its answer: its first provider call
    // timed out, the retry went through.
    let response = in_flight
        .await
        .unwrap()
        .expect("an answer, not a dropped connection");
    assert_eq!(response.status(), StatusCode::CREATED);
    let status = server
        .exit_within(Duration::from_secs(10))
        .await
        .expect("the process exits");
    assert!(status.success(), "{status:?}");
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn the_shutdown_deadline_bounds_how_long_requests_may_run() {
    let fake = HydraFake::start().await;
    let (mut server, _dir) = server(&fake, "60s", "1s").await;
    let in_flight = terminate_during_a_hanging_registration(&fake, &server).await;
    let status = server
        .exit_within(Duration::from_secs(15))
        .await
        .expect("the process exits although a request still hangs");
    assert!(status.success(), "{status:?}");
    assert!(
        in_flight.await.unwrap().is_err(),
        "the hanging request was cut off"
    );
    fake.ledger.assert_clean("Hydra");
}
