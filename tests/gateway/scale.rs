//! The read cache, and several gateway processes on one PostgreSQL database.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::postgres::TestDatabase;
use crate::support::*;

/// The first read of a client takes the full way (a miss of the client
/// cache) and leaves its answer in the edge's memory; the next ones are
/// answered from there, touching neither the service nor the store; a
/// write drops it.
#[tokio::test]
async fn reads_come_from_memory_and_writes_invalidate_it() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "v1" }))
        .await;
    let token = token_of(&client);
    let start = app.cache.stats();
    let served = app.read_answers.served();
    for _ in 0..3 {
        assert_eq!(
            app.read(&client, Some(token)).await.status(),
            StatusCode::OK
        );
    }
    let after_reads = app.cache.stats();
    assert_eq!(
        after_reads.misses - start.misses,
        1,
        "the first read fills the cache"
    );
    assert_eq!(after_reads.hits, start.hits, "the next ones do not ask it");
    assert_eq!(
        app.read_answers.served() - served,
        2,
        "the next ones are answered from memory"
    );

    let body = update_body(
        &client,
        json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "v2" }),
    );
    assert_eq!(
        app.update(&client, Some(token), &body).await.status(),
        StatusCode::OK
    );
    let read: Value = app.read(&client, Some(token)).await.json().await.unwrap();
    assert_eq!(read["client_name"], "v2", "an update is visible at once");
    assert!(
        app.cache.stats().misses > after_reads.misses,
        "the update invalidated the entry"
    );

    assert_eq!(
        app.delete(&client, Some(token)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.read(&client, Some(token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn two_instances_on_one_postgres_database_agree() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let a = ServerProcess::start(
        &write_config_with_store(dir.path(), port_a, &database.url),
        port_a,
    )
    .await;
    let b = ServerProcess::start(
        &write_config_with_store(dir.path(), port_b, &database.url),
        port_b,
    )
    .await;
    let http = reqwest::Client::new();

    // Registered on A, readable on B (and B caches it).
    let client = a
        .register(&json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "v1" }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let token = token_of(&client).to_owned();
    let read_on = |base: &str| {
        let http = http.clone();
        let url = format!("{base}/register/{id}");
        let token = token.clone();
        async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or_default())
        }
    };
    for _ in 0..2 {
        let (status, body) = read_on(&b.base).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["client_name"], "v1");
    }

    // Updated on A: B's cached copy is invalidated (its TTL is ten minutes).
    let update = json!({ "client_id": id, "redirect_uris": ["https://app.example.com/cb"], "client_name": "v2" });
    let status = http
        .put(format!("{}/register/{id}", a.base))
        .bearer_auth(&token)
        .json(&update)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    assert!(
        eventually(|| async { read_on(&b.base).await.1["client_name"] == "v2" }).await,
        "B kept serving the old registration"
    );

    // Registered on B, readable on A.
    let from_b = b.register(&web_client()).await;
    let on_a = http
        .get(format!(
            "{}/register/{}",
            a.base,
            from_b["client_id"].as_str().unwrap()
        ))
        .bearer_auth(token_of(&from_b))
        .send()
        .await
        .unwrap();
    assert_eq!(on_a.status(), StatusCode::OK);

    // Deleted on A: B stops answering for it.
    let status = http
        .delete(format!("{}/register/{id}", a.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        eventually(|| async { read_on(&b.base).await.0 == StatusCode::UNAUTHORIZED }).await,
        "B kept answering for a deleted client"
    );

    // Concurrent registrations on both instances all land, none lost.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let http = http.clone();
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        tasks.push(tokio::spawn(async move {
            register_at(&http, &base, &web_client()).await
        }));
    }
    for task in tasks {
        let client = task.await.unwrap();
        for base in [&a.base, &b.base] {
            let status = http
                .get(format!(
                    "{base}/register/{}",
                    client["client_id"].as_str().unwrap()
                ))
                .bearer_auth(token_of(&client))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::OK);
        }
    }
}

/// The cap of clients per software in the two instances' policy.
const CAP: usize = 5;

/// Two instances on `database` whose policy caps clients per software at
/// [`CAP`].
async fn two_capped_instances(database: &TestDatabase) -> (TestApp, TestApp) {
    let extra =
        format!("{NO_RATE_LIMITS}[policies.default]\nmax_clients_per_software_id = {CAP}\n");
    let public = "http://127.0.0.1:9";
    (
        spawn_instance(public, &database.url, &extra).await,
        spawn_instance(public, &database.url, &extra).await,
    )
}

/// Sends `per_software` registrations of each of `software` at once, half
/// to each instance, and adds the 201s to `created` (per software); every
/// other answer must be the cap's refusal. At most 60 are sent to an
/// instance, under the 64 connections an address may hold.
async fn race_registrations(
    (a, b): (&TestApp, &TestApp),
    software: &[String],
    per_software: usize,
    created: &mut BTreeMap<String, usize>,
) {
    let racers: Vec<_> = (0..per_software * software.len())
        .map(|i| {
            let software_id = software[i % software.len()].clone();
            let instance = if (i / software.len()) % 2 == 0 { a } else { b };
            let body = json!({ "redirect_uris": ["https://app.example.com/cb"], "software_id": software_id });
            let request = instance.http.post(instance.url("/register")).json(&body);
            tokio::spawn(async move { (software_id, request.send().await.unwrap()) })
        })
        .collect();
    for racer in racers {
        let (software_id, response) = racer.await.unwrap();
        let landed = created.entry(software_id).or_insert(0);
        if response.status() == StatusCode::CREATED {
            *landed += 1;
        } else {
            let (code, description) = error_of(response, StatusCode::BAD_REQUEST).await;
            assert_eq!(code, "invalid_client_metadata", "{description}");
            assert!(
                description.contains("max_clients_per_software_id"),
                "{description}"
            );
        }
    }
}

/// Asserts that `created` holds [`CAP`] clients of every software, and
/// that both instances read exactly those rows from the database.
async fn assert_capped(created: &BTreeMap<String, usize>, instances: [&TestApp; 2]) {
    assert!(
        created.values().all(|n| *n == CAP),
        "201s per software across both instances: {created:?}"
    );
    for instance in instances {
        let mut held = BTreeMap::new();
        for client in instance.service.list(None, 1000).await.unwrap() {
            let software_id = client.metadata.software_id.clone().unwrap_or_default();
            *held.entry(software_id).or_insert(0) += 1;
        }
        assert_eq!(&held, created, "rows per software in the database");
    }
}

/// The per-software cap (`max_clients_per_software_id`) holds across
/// instances: 60 registrations of one software_id race on two instances of
/// one PostgreSQL database, and exactly the cap's worth land. Each
/// instance's writer counts and inserts in one transaction; only the
/// database's advisory lock orders the two writers. Eight rounds, one
/// software each: without the lock, nearly every run overshoots in some
/// round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_software_cap_holds_across_two_instances_on_one_postgres_database() {
    let database = TestDatabase::create().await;
    let (a, b) = two_capped_instances(&database).await;
    let mut created = BTreeMap::new();
    for round in 0..8 {
        let software = [format!("software-{round}")];
        race_registrations((&a, &b), &software, 60, &mut created).await;
    }
    assert_eq!(created.len(), 8);
    assert_capped(&created, [&a, &b]).await;
}

/// Registrations of several software_ids at once on two instances (six
/// rounds of eight): each is answered 201 or refused by the cap, and the
/// cap holds for each. Each writer's batch takes its software locks in one
/// order (before, in arrival order: two instances' batches deadlocked in
/// about nine runs of ten, and every registration of the aborted batch was
/// answered 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_capped_software_race_on_two_instances_on_one_postgres_database() {
    let database = TestDatabase::create().await;
    let (a, b) = two_capped_instances(&database).await;
    let mut created = BTreeMap::new();
    for round in 0..6 {
        let software: Vec<String> = (0..8).map(|n| format!("software-{round}-{n}")).collect();
        race_registrations((&a, &b), &software, 15, &mut created).await;
    }
    assert_eq!(created.len(), 48);
    assert_capped(&created, [&a, &b]).await;
}
