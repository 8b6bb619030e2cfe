//! The front's store ports (`TransactionStore`, `CimdStore`) on both
//! databases: each step of a transaction happens once, consent is bound to
//! its browser, shares and document caps hold however many callers race,
//! a replay and the first redemption always learn of each other. On
//! PostgreSQL the races run across two stores, as two instances would.

use std::sync::Arc;

use dcr_gateway::clock::SystemClock;
use dcr_gateway::front::transactions::FrontSecret;
use dcr_gateway::store::front::{
    AwaitedConsent, CimdStore, DocumentCaps, Holder, Mapping, NewCode, NewTransaction, Reserved,
    Transaction, TransactionStore,
};
use dcr_gateway::store::sql::SqlStore;

use crate::support::TEST_ENCRYPTION_KEY;
use crate::support::postgres::TestDatabase;

async fn open(url: &str) -> SqlStore {
    let key = dcr_gateway::store::sealing::Sealer::from_base64(TEST_ENCRYPTION_KEY).unwrap();
    SqlStore::open(url, 4, Arc::new(SystemClock), Some(key))
        .await
        .unwrap()
}

const NOW: i64 = 1_000_000;

fn transaction(client_id: &str) -> Transaction {
    Transaction {
        client_id: client_id.to_owned(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        app_state: Some("s".into()),
        code_challenge: "c".repeat(43),
        scope: None,
        resource: Some("https://mcp.example.com".into()),
        expires_at: NOW + 600,
    }
}

/// Opens a transaction of `client_id` for `caller`, named by a fresh state.
async fn open_one(store: &SqlStore, caller: &str, client_id: &str) {
    let transaction = transaction(client_id);
    let new = NewTransaction {
        transaction: &transaction,
        caller,
        consent: None,
    };
    let state = FrontSecret::generate().hash();
    store.open(&state, &new).await.unwrap();
}

async fn transactions(store: &SqlStore) {
    // Live transactions per caller and per client, counted up to a limit.
    for (caller, client) in [("caller-a", "c1"), ("caller-a", "c1"), ("caller-b", "c1")] {
        open_one(store, caller, client).await;
    }
    open_one(store, "caller-c", "c2").await;
    let live = |holder| store.live(holder, NOW, 10);
    assert_eq!(live(Holder::Caller("caller-a")).await.unwrap(), 2);
    assert_eq!(live(Holder::Client("c1")).await.unwrap(), 3);
    assert_eq!(store.live(Holder::Client("c1"), NOW, 2).await.unwrap(), 2);
    assert_eq!(live(Holder::Client("c9")).await.unwrap(), 0);
    assert_eq!(
        store.live(Holder::Client("c1"), NOW + 600, 10).await.unwrap(),
        0,
        "expired ones do not count"
    );

    // Consent: only with the form token and the browser that saw it, once.
    let (form, browser, other) = (
        FrontSecret::generate().hash(),
        FrontSecret::generate().hash(),
        FrontSecret::generate().hash(),
    );
    let waiting = transaction("c3");
    let new = NewTransaction {
        transaction: &waiting,
        caller: "caller-d",
        consent: Some(AwaitedConsent {
            form: &form,
            browser: &browser,
            provider_url: "https://idp.example/auth?client_id=x",
        }),
    };
    let placeholder = FrontSecret::generate().hash();
    store.open(&placeholder, &new).await.unwrap();
    let state = FrontSecret::generate().hash();
    assert!(
        store
            .consent(&form, &other, &state, NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.decline(&form, &other, NOW).await.unwrap().is_none());
    let (consented, url) = store
        .consent(&form, &browser, &state, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consented, waiting);
    assert_eq!(url, "https://idp.example/auth?client_id=x");
    assert!(
        store
            .consent(&form, &browser, &state, NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.decline(&form, &browser, NOW).await.unwrap().is_none());

    // The provider leg completes once, bound to the browser.
    let code = FrontSecret::generate();
    let issued = NewCode {
        hash: &code.hash(),
        sealed: b"sealed provider code",
        expires_at: NOW + 60,
    };
    let completed = store
        .complete(&state, Some(issued), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(completed.browser, Some(browser));
    assert!(store.complete(&state, None, NOW).await.unwrap().is_none());

    // A replay during the first redemption: the redemption learns of it.
    assert!(store.redeem(&code.hash(), NOW, NOW + 600).await.unwrap());
    assert_eq!(store.mark_replayed(&code.hash()).await.unwrap(), None);
    assert!(store.record_tokens(&code.hash(), b"tokens").await.unwrap());
    // A replay after it: the replay gets what to revoke.
    let later = FrontSecret::generate();
    let state = FrontSecret::generate().hash();
    let transaction = transaction("c4");
    let new = NewTransaction {
        transaction: &transaction,
        caller: "caller-e",
        consent: None,
    };
    store.open(&state, &new).await.unwrap();
    let issued = NewCode {
        hash: &later.hash(),
        sealed: b"code",
        expires_at: NOW + 60,
    };
    store
        .complete(&state, Some(issued), NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(store.redeem(&later.hash(), NOW, NOW + 600).await.unwrap());
    assert!(!store.record_tokens(&later.hash(), b"tokens").await.unwrap());
    assert_eq!(
        store.mark_replayed(&later.hash()).await.unwrap().as_deref(),
        Some(&b"tokens"[..])
    );

    // The sweep removes what expired and counts what lives.
    let live = store.sweep(NOW).await.unwrap();
    assert_eq!(live, 6, "the six opened above");
    assert_eq!(store.sweep(NOW + 10_000).await.unwrap(), 0);
}

/// Reserves places for 20 documents of one host at once, across `stores`,
/// against a cap of 3 per host.
async fn reservations_race(stores: &[SqlStore]) {
    let caps = DocumentCaps {
        per_host: 3,
        in_all: 100,
    };
    let attempts = (0..20).map(|i| {
        let store = stores[i % stores.len()].clone();
        async move {
            let url = format!("https://docs.example/{i}.json");
            store
                .reserve(&url, "docs.example", caps, NOW, NOW + 600)
                .await
                .unwrap()
        }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let reserved = outcomes.iter().filter(|o| **o == Reserved::Yes).count();
    assert_eq!(reserved, 3, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Reserved::Yes | Reserved::HostFull))
    );
    let store = &stores[0];
    assert_eq!(
        store
            .reserve(
                "https://docs.example/0.json",
                "docs.example",
                caps,
                NOW,
                NOW
            )
            .await
            .unwrap(),
        if outcomes[0] == Reserved::Yes {
            Reserved::Taken
        } else {
            Reserved::HostFull
        }
    );
    // A reservation is filled in, touched, found unused, removed.
    let url = (0..20)
        .map(|i| format!("https://docs.example/{i}.json"))
        .zip(&outcomes)
        .find(|(_, o)| **o == Reserved::Yes)
        .map(|(url, _)| url)
        .unwrap();
    let reservation = store.mapping(&url).await.unwrap().unwrap();
    assert!(reservation.is_reservation());
    let mapping = Mapping {
        client_id: "doc-client".into(),
        document_hash: vec![1, 2, 3],
        fresh_until: NOW + 60,
        last_used: NOW,
    };
    store.update_mapping(&url, &mapping, NOW).await.unwrap();
    assert!(store.is_document_client("doc-client").await.unwrap());
    assert!(!store.is_document_client("another").await.unwrap());
    store.touch(&url, NOW + 100).await.unwrap();
    assert!(store.unused_since(NOW + 100, 10).await.unwrap().is_empty());
    assert_eq!(
        store.unused_since(NOW + 101, 10).await.unwrap(),
        vec![(url.clone(), "doc-client".to_owned())]
    );
    let seen = store.mapping(&url).await.unwrap().unwrap();
    assert!(!store.remove_mapping(&url, &reservation).await.unwrap());
    assert!(store.remove_mapping(&url, &seen).await.unwrap());
}

#[tokio::test]
async fn the_front_store_keeps_its_promises_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&format!(
        "sqlite://{}",
        dir.path().join("front.db").display()
    ))
    .await;
    transactions(&store).await;
    reservations_race(&[store]).await;
}

#[tokio::test]
async fn the_front_store_keeps_its_promises_on_postgres() {
    let database = TestDatabase::create().await;
    let store = open(&database.url).await;
    transactions(&store).await;
    let other = open(&database.url).await;
    reservations_race(&[store, other]).await;
}
