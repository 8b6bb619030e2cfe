//! The Hydra backend against a stateful fake of Hydra's admin API that checks
//! every request against Hydra's OpenAPI document.

use std::collections::BTreeSet;
use std::time::Duration;

use dcr_gateway::domain::ClientId;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::hydra::{Fault, HydraFake};
use crate::support::*;

pub(crate) async fn gateway_for(fake: &HydraFake) -> TestApp {
    gateway_at(&fake.base).await
}

/// Without retries and with a breaker that never sheds, so that each fault
/// shows how it is classified.
async fn gateway_at(admin_url: &str) -> TestApp {
    gateway_with(admin_url, "retries = 0\ncircuit_failure_rate = 1.0\n").await
}

/// The `[provider]` keys of a gateway in front of Hydra's admin API at `admin_url`.
pub(crate) fn keys_for(admin_url: &str) -> String {
    format!("kind = \"hydra\"\nadmin_url = \"{admin_url}\"\nissuer = \"{admin_url}\"")
}

async fn gateway_with(admin_url: &str, resilience: &str) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"1s\"\nreconcile_interval = \"0s\"\n{resilience}\
         [provider.lifespans]\nauthorization_code_grant_access_token_lifespan = \"1h\"\n",
        keys_for(admin_url)
    ))
    .await
}

#[tokio::test]
async fn hydra_holds_what_it_can_and_the_gateway_keeps_the_rest() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb?x=1"],
            "client_name": "Hydra app",
            "client_name#ja-Jpan-JP": "ハイドラ",
            "scope": "openid offline",
            "contacts": ["ops@example.com"],
            "grant_types": ["authorization_code", "refresh_token"],
            "software_id": "4NRB1-0XZABZI9E6-5SM3R",
            "software_version": "2.1",
            "default_max_age": 600,
            "require_auth_time": true,
            "id_token_signed_response_alg": "ES256",
            "skip_consent": true,
            "metadata": { "role": "admin" },
            "access_token_strategy": "jwt",
            "owner": "someone",
            "audience": ["https://api.example.com"],
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    assert_eq!(id.len(), 22, "the gateway chose the id");
    let held = fake.client(id).expect("the client is at Hydra");
    assert_eq!(
        held["client_secret"], client["client_secret"],
        "the app's secret is Hydra's"
    );
    assert_eq!(held["client_name"], "Hydra app");
    assert_eq!(
        held["redirect_uris"],
        json!(["https://app.example.com/cb?x=1"])
    );
    assert_eq!(held["scope"], "openid offline");
    assert_eq!(held["contacts"], json!(["ops@example.com"]));
    assert_eq!(
        held["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(held["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        held["authorization_code_grant_access_token_lifespan"],
        "3600s"
    );
    assert_eq!(
        held["owner"], "dcr-gateway",
        "the gateway's mark, not the app's"
    );
    for operator_only in [
        "skip_consent",
        "metadata",
        "access_token_strategy",
        "audience",
        "skip_logout_consent",
    ] {
        assert!(
            held.get(operator_only).is_none(),
            "{operator_only} reached Hydra"
        );
    }

    // What Hydra cannot hold comes back from the gateway.
    let read: Value = app
        .read(&client, Some(token_of(&client)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_name#ja-Jpan-JP"], "ハイドラ");
    assert_eq!(read["software_id"], "4NRB1-0XZABZI9E6-5SM3R");
    assert_eq!(read["software_version"], "2.1");
    assert_eq!(read["default_max_age"], 600);
    assert_eq!(read["require_auth_time"], true);
    assert_eq!(read["id_token_signed_response_alg"], "ES256");
    assert!(read.get("skip_consent").is_none());

    // Replace reaches Hydra; the secret stays.
    let updated = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(&client, json!({ "redirect_uris": ["https://app.example.com/new"], "client_name": "Renamed" })),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let held = fake.client(id).unwrap();
    assert_eq!(held["client_name"], "Renamed");
    assert_eq!(
        held["redirect_uris"],
        json!(["https://app.example.com/new"])
    );
    assert_eq!(held["client_secret"], client["client_secret"]);
    assert!(
        held.get("contacts").is_none(),
        "a full replace drops omitted members"
    );

    // Delete removes it at Hydra.
    assert_eq!(
        app.delete(&client, Some(token_of(&client))).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(fake.client(id).is_none());
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn discovery_comes_from_hydra_with_the_gateway_as_registration_endpoint() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = app.get_json(path).await;
        assert_eq!(doc["issuer"], fake.base);
        assert_eq!(doc["token_endpoint"], format!("{}/oauth2/token", fake.base));
        assert_eq!(doc["registration_endpoint"], app.url("/register"));
    }
}

#[tokio::test]
async fn hydra_refusals_and_outages_get_answers_a_client_can_act_on() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;

    fake.reject_next("The redirect URL is not allowed by policy.");
    let (code, description) = app.register_error(&web_client()).await;
    assert_eq!(code, "invalid_client_metadata");
    // The gateway's own words: Hydra's text is for the operator's log.
    assert!(
        description.contains("hydra provider refused this client (HTTP 400)"),
        "{description}"
    );
    assert!(!description.contains("redirect URL"), "{description}");

    fake.ledger.queue_faults(&[Fault::RateLimited]);
    let response = app.post_register(&web_client()).await;
    assert_eq!(response.headers()["retry-after"], "7");
    let (code, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(code, "temporarily_unavailable");

    let mut keys = web_client();
    keys["token_endpoint_auth_method"] = json!("private_key_jwt");
    keys["jwks"] = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] });
    let (code, description) = app.register_error(&keys).await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(
        description.contains("hydra") && description.contains("kid"),
        "{description}"
    );

    // Refusals and definite outages leave nothing behind.
    assert!(app.rows().await.is_empty());
    assert!(fake.client_ids().is_empty());
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn a_provider_that_does_not_answer_is_503_with_retry_after() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let app = gateway_at(&closed).await;
    let response = app.post_register(&web_client()).await;
    assert!(response.headers().contains_key("retry-after"));
    let (code, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(code, "temporarily_unavailable");
    assert!(
        app.rows().await.is_empty(),
        "nothing was created: no row is kept"
    );
}

#[tokio::test]
async fn unknown_outcomes_are_resolved_by_reconcile() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    for fault in [
        Fault::ServerError,
        Fault::Hang,
        Fault::Garbage,
        Fault::CommitAndDrop,
    ] {
        fake.ledger.queue_faults(&[fault]);
        let response = app.post_register(&web_client()).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{fault:?}"
        );
        assert!(response.headers().contains_key("retry-after"));
    }
    // Garbage and CommitAndDrop committed at Hydra; all four rows are pending.
    assert_eq!(fake.client_ids().len(), 2);
    let rows = app.rows().await;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|(_, state)| *state == "pending"));

    let report = app.reconcile().await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 2);
    assert_eq!(report.abandoned_never_created.len(), 2);
    assert!(!report.has_drift(), "{report:?}");
    assert!(app.rows().await.is_empty());
    assert!(fake.client_ids().is_empty());

    // A delete whose answer is lost finishes in reconcile; the token is dead at once.
    let client = app.register(&web_client()).await;
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    let response = app.delete(&client, Some(token_of(&client))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.read(&client, Some(token_of(&client))).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let report = app.reconcile().await;
    assert_eq!(report.deletions_completed.len(), 1);
    assert!(app.rows().await.is_empty());

    // An update that fails leaves the gateway's registration as it was.
    let client = app
        .register(
            &json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "Before" }),
        )
        .await;
    fake.ledger.queue_faults(&[Fault::ServerError]);
    let response = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "After" }),
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let read: Value = app
        .read(&client, Some(token_of(&client)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_name"], "Before");
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn reconcile_reports_drift_both_ways() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    let kept = app.register(&web_client()).await;
    let lost = app.register(&web_client()).await;
    // Someone deletes one client at Hydra and creates another there directly.
    reqwest::Client::new()
        .delete(format!(
            "{}/admin/clients/{}",
            fake.base,
            lost["client_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    reqwest::Client::new()
        .post(format!("{}/admin/clients", fake.base))
        .json(
            &json!({ "client_id": "made-by-hand", "redirect_uris": ["https://x.example.com/cb"] }),
        )
        .send()
        .await
        .unwrap();
    let report = app.reconcile().await;
    assert!(report.has_drift());
    assert_eq!(
        report
            .unknown_to_gateway
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["made-by-hand"]
    );
    assert_eq!(
        report
            .missing_at_provider
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [lost["client_id"].as_str().unwrap()]
    );
    assert!(fake.client(kept["client_id"].as_str().unwrap()).is_some());
}

#[tokio::test]
async fn drift_check_follows_hydra_pages() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    fake.limit_page_size(2);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.register(&web_client()).await["client_id"].clone());
    }
    let report = app.reconcile().await;
    assert!(
        !report.has_drift(),
        "all five are on three pages: {report:?}"
    );
    // A client on the last page that Hydra lost is found missing.
    let last = ids
        .iter()
        .map(|v| v.as_str().unwrap())
        .max()
        .unwrap()
        .to_owned();
    reqwest::Client::new()
        .delete(format!("{}/admin/clients/{last}", fake.base))
        .send()
        .await
        .unwrap();
    let report = app.reconcile().await;
    assert_eq!(
        report
            .missing_at_provider
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [last]
    );
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn under_random_faults_gateway_and_hydra_end_with_the_same_clients() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
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

    let rows = app.rows().await;
    assert!(rows.iter().all(|(_, state)| *state == "active"), "{rows:?}");
    let gateway: BTreeSet<String> = rows.into_iter().map(|(id, _)| id).collect();
    let hydra: BTreeSet<String> = fake.client_ids().into_iter().collect();
    assert_eq!(gateway, hydra, "gateway and Hydra disagree after reconcile");
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
async fn retries_absorb_transient_failures_without_duplicates() {
    let fake = HydraFake::start().await;
    let app = gateway_with(&fake.base, "retries = 2\n").await;
    // A 500, then an answer lost after the client was created: the retried
    // create finds its own client (409) and succeeds.
    fake.ledger
        .queue_faults(&[Fault::ServerError, Fault::CommitAndDrop]);
    let client = app.register(&web_client()).await;
    assert_eq!(fake.client_ids(), [client["client_id"].as_str().unwrap()]);
    assert_eq!(
        app.rows().await,
        [(client["client_id"].as_str().unwrap().to_owned(), "active")]
    );
    // Idempotent calls are retried too.
    fake.ledger.queue_faults(&[Fault::Garbage]);
    assert_eq!(
        app.delete(&client, Some(token_of(&client))).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(fake.client_ids().is_empty());
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn a_failing_provider_is_shed_in_proportion_and_trials_find_it_recovered() {
    let fake = HydraFake::start().await;
    let app = gateway_with(
        &fake.base,
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
    // know yet: most calls are answered at once, unsent, and the trials it
    // lets through succeed until it sheds nothing.
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
    assert!(
        shed >= 3,
        "calls were shed while every call failed ({shed})"
    );
    assert_eq!(successes_in_a_row, 10, "trials found Hydra recovered");
    // The ten failed registrations are pending: reconcile clears them.
    let report = app.reconcile().await;
    assert_eq!(report.abandoned_never_created.len(), 10);
    assert!(!report.has_drift(), "{report:?}");
}

#[tokio::test]
async fn a_client_deleted_at_hydra_answers_invalid_token_to_updates() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    let client = app.register(&web_client()).await;
    // An operator deletes it with Hydra's own admin API.
    let removed = reqwest::Client::new()
        .delete(format!(
            "{}/admin/clients/{}",
            fake.base,
            client["client_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_missing_at_provider_reads_as_gone(&app, &client).await;
    fake.ledger.assert_clean("Hydra");
}

/// Two replaces of one client at once: the first holds the client while
/// Hydra works on it; the second is refused with 409 and changes nothing.
/// The winner's rotated token works, and gateway and Hydra hold the
/// winner's metadata.
#[tokio::test]
async fn concurrent_replaces_one_wins_the_other_is_refused() {
    let fake = HydraFake::start().await;
    let app = spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"5s\"\nreconcile_interval = \"0s\"\n\
         [registration]\nrotate_registration_access_token = \"on_update\"\n",
        keys_for(&fake.base)
    ))
    .await;
    let client = app.register(&web_client()).await;
    // Hydra takes a second over the first replace.
    fake.ledger.queue_faults(&[Fault::Slow]);
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
    let first = tokio::spawn(put("first"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = put("second").await;
    let (code, description) = error_of(second, StatusCode::CONFLICT).await;
    assert_eq!(code, "conflict");
    assert!(description.contains("retry"), "{description}");
    let winner: Value = first.await.unwrap().json().await.unwrap();
    assert_eq!(
        winner["redirect_uris"],
        json!(["https://app.example.com/first"])
    );
    let token = token_of(&winner);
    assert_ne!(token, token_of(&client), "the token rotated");
    let read: Value = app.read(&winner, Some(token)).await.json().await.unwrap();
    assert_eq!(
        read["redirect_uris"],
        json!(["https://app.example.com/first"])
    );
    assert_eq!(
        fake.client(id_of(&client)).unwrap()["redirect_uris"],
        json!(["https://app.example.com/first"])
    );
    // Once the first is done, the client can be changed again, and deleted.
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
    fake.ledger.assert_clean("Hydra");
}

/// A replace whose outcome at Hydra is unknown keeps its hold on the
/// client: the stored registration is sent again by reconcile once the hold
/// lapses, so gateway and Hydra agree.
#[tokio::test]
async fn a_replace_with_an_unknown_outcome_is_sent_again_by_reconcile() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    let client = app.register(&web_client()).await;
    // The replace reaches Hydra, which commits it and drops the answer.
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    let changed = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({ "redirect_uris": ["https://app.example.com/new"] }),
            ),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        fake.client(id_of(&client)).unwrap()["redirect_uris"],
        json!(["https://app.example.com/new"]),
        "Hydra took it"
    );
    // Until reconcile settles it, another change waits; reads go on.
    let read = app.read(&client, Some(token_of(&client))).await;
    assert_eq!(read.status(), StatusCode::OK);
    let blocked = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(&client, web_client()),
        )
        .await;
    assert_eq!(blocked.status(), StatusCode::CONFLICT);
    let report = app.reconcile().await;
    assert_eq!(report.replaces_completed, [ClientId::new(id_of(&client))]);
    assert!(!report.has_drift(), "{report:?}");
    // The app was told the change failed: gateway and Hydra hold the old one.
    assert_eq!(
        fake.client(id_of(&client)).unwrap()["redirect_uris"],
        json!(["https://app.example.com/cb"])
    );
    let changed = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({ "redirect_uris": ["https://app.example.com/new"] }),
            ),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    fake.ledger.assert_clean("Hydra");
}
