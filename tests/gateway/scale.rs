//! The read cache, and several gateway processes on one PostgreSQL database.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::postgres::TestDatabase;
use crate::support::*;

#[tokio::test]
async fn reads_come_from_the_cache_and_writes_invalidate_it() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "v1" }))
        .await;
    let token = token_of(&client);
    let start = app.cache.stats();
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
    assert_eq!(
        after_reads.hits - start.hits,
        2,
        "the next ones are served from it"
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
