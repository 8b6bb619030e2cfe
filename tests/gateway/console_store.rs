//! What the console keeps in the store, on SQLite and on PostgreSQL:
//! operator tokens (digests only), the hourly activity counts added to by
//! several instances, each client's trail, and the documents held.

use std::sync::Arc;

use dcr_gateway::clock::SystemClock;
use dcr_gateway::domain::{OperatorToken, SecretHash};
use dcr_gateway::store::activity::{Activity, ActivityLog, HourCount};
use dcr_gateway::store::front::{CimdStore, DocumentCaps, Mapping, Reserved};
use dcr_gateway::store::operators::{OperatorTokenRecord, OperatorTokens};
use dcr_gateway::store::sql::SqlStore;
use dcr_gateway::store::trail::{AuditTrail, TrailEntry};

use crate::support::postgres::TestDatabase;

async fn open(url: &str) -> SqlStore {
    SqlStore::open(url, 4, Arc::new(SystemClock), None)
        .await
        .unwrap()
}

async fn contract(store: SqlStore) {
    operator_tokens(&store).await;
    activity(&store).await;
    trails(&store).await;
    documents(&store).await;
}

async fn operator_tokens(store: &SqlStore) {
    let token = OperatorToken::generate();
    let record = OperatorTokenRecord {
        id: "op1".into(),
        hash: token.hash(),
        name: "alice".into(),
        created_at: 100,
        expires_at: Some(200),
        revoked: false,
    };
    store.insert_operator_token(&record).await.unwrap();
    let found = store.operator_token_by_hash(&token.hash()).await.unwrap();
    assert_eq!(found.as_ref(), Some(&record));
    assert_eq!(
        store.operator_token("op1").await.unwrap(),
        Some(record.clone())
    );
    assert!(record.usable(199) && !record.usable(200));
    let other = SecretHash::of("not the token");
    assert_eq!(store.operator_token_by_hash(&other).await.unwrap(), None);
    assert!(
        store.insert_operator_token(&record).await.is_err(),
        "ids are unique"
    );
    assert!(store.revoke_operator_token("op1").await.unwrap());
    assert!(!store.revoke_operator_token("nobody").await.unwrap());
    let revoked = store.operator_token("op1").await.unwrap().unwrap();
    assert!(revoked.revoked && !revoked.usable(150));
    assert_eq!(store.list_operator_tokens().await.unwrap().len(), 1);
}

async fn activity(store: &SqlStore) {
    let count = |hour, kind, count| HourCount { hour, kind, count };
    // Two instances add to the same hour.
    store
        .add_activity(&[
            count(3600, Activity::Registration, 2),
            count(3600, Activity::Refusal, 1),
        ])
        .await
        .unwrap();
    store
        .add_activity(&[
            count(3600, Activity::Registration, 3),
            count(7200, Activity::Login, 4),
        ])
        .await
        .unwrap();
    store.add_activity(&[]).await.unwrap();
    let mut seen = store.activity_since(0).await.unwrap();
    seen.sort_by_key(|c| (c.hour, c.kind.as_str()));
    assert_eq!(
        seen,
        [
            count(3600, Activity::Refusal, 1),
            count(3600, Activity::Registration, 5),
            count(7200, Activity::Login, 4),
        ]
    );
    assert_eq!(store.activity_since(7200).await.unwrap().len(), 1);
    store.prune_activity(7200).await.unwrap();
    assert_eq!(
        store.activity_since(0).await.unwrap(),
        [count(7200, Activity::Login, 4)]
    );
}

async fn trails(store: &SqlStore) {
    let entry = |at, client: &str, action: &str, actor: Option<&str>| TrailEntry {
        at,
        client_id: client.into(),
        action: action.into(),
        outcome: "success".into(),
        actor: actor.map(Into::into),
    };
    store
        .append_trail(&[
            entry(10, "c1", "register", None),
            entry(20, "c2", "register", None),
            entry(30, "c1", "operator_delete", Some("operator:alice")),
        ])
        .await
        .unwrap();
    let trail = store.trail_of("c1", 10).await.unwrap();
    assert_eq!(
        trail,
        [
            entry(30, "c1", "operator_delete", Some("operator:alice")),
            entry(10, "c1", "register", None)
        ]
    );
    assert_eq!(store.trail_of("c1", 1).await.unwrap().len(), 1);
    store.prune_trail(15).await.unwrap();
    assert_eq!(store.trail_of("c1", 10).await.unwrap().len(), 1);
    assert_eq!(store.trail_of("c2", 10).await.unwrap().len(), 1);
}

async fn documents(store: &SqlStore) {
    let caps = DocumentCaps {
        per_host: 10,
        in_all: 10,
    };
    for (url, client, used) in [
        ("https://a.example/doc", "ca", 50),
        ("https://b.example/doc", "cb", 70),
    ] {
        let host = url::Url::parse(url).unwrap().host_str().unwrap().to_owned();
        let reserved = store.reserve(url, &host, caps, 0, 100).await.unwrap();
        assert_eq!(reserved, Reserved::Yes);
        let mapping = Mapping {
            client_id: client.into(),
            document_hash: vec![1; 32],
            fresh_until: 1000,
            last_used: used,
        };
        store.update_mapping(url, &mapping, used).await.unwrap();
    }
    // A reservation is no document held.
    let reserved = store
        .reserve("https://c.example/doc", "c.example", caps, 0, 100)
        .await
        .unwrap();
    assert_eq!(reserved, Reserved::Yes);
    let held = store.documents(10).await.unwrap();
    let urls: Vec<&str> = held.iter().map(|(url, _)| url.as_str()).collect();
    assert_eq!(urls, ["https://b.example/doc", "https://a.example/doc"]);
    assert_eq!(held[0].1.client_id, "cb");
    assert_eq!(store.documents(1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_store_keeps_what_the_console_reads() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    contract(open(&url).await).await;
}

#[tokio::test]
async fn postgres_store_keeps_what_the_console_reads() {
    let database = TestDatabase::create().await;
    contract(open(&database.url).await).await;
}
