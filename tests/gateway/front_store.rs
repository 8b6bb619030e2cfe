//! The front's store ports (`TransactionStore`, `CimdStore`) on both
//! databases: a login is answered once, a code redeemed once, a replay and
//! the first redemption always learn of each other, records are kept as
//! long as their state could be presented, and document caps hold however
//! many first sights race (on PostgreSQL across two stores, as two
//! instances would); broker mode's refresh tokens are used once, a used
//! one is told apart from a live one, and of racing rotations of one token
//! exactly one wins (on PostgreSQL across two stores), while many
//! rotations of different tokens at once all win and are kept; the gateway's
//! signing keys are replaced when due only, and instances replacing them
//! together add one key (on PostgreSQL across two stores).

use std::sync::Arc;

use dcr_gateway::clock::SystemClock;
use dcr_gateway::domain::SecretHash;
use dcr_gateway::front::transactions::FrontSecret;
use dcr_gateway::store::front::{
    Answered, CimdStore, CodePhase, DocumentCaps, KeyDue, Mapping, NewCode, PresentedRefresh,
    RefreshFamily, RefreshTokenStore, Reserved, SigningKeyStore, StoredSigningKey, Transaction,
    TransactionStore,
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

/// Records a code for a login answered with `state`; whether it was the
/// first answer to that state.
async fn answer(store: &SqlStore, state: &SecretHash, code: &FrontSecret) -> bool {
    let transaction = transaction("c1");
    let answered = Answered {
        state,
        transaction: &transaction,
        code: Some(NewCode {
            hash: &code.hash(),
            sealed: b"sealed provider code",
        }),
        keep_until: NOW + 600,
    };
    store.answer(&answered).await.unwrap()
}

async fn transactions(store: &SqlStore) {
    // A state is answered once, whatever the answer.
    let state = FrontSecret::generate().hash();
    let code = FrontSecret::generate();
    assert!(answer(store, &state, &code).await);
    assert!(!answer(store, &state, &FrontSecret::generate()).await);
    let failed = FrontSecret::generate().hash();
    let transaction = transaction("c2");
    let refused = Answered {
        state: &failed,
        transaction: &transaction,
        code: None,
        keep_until: NOW + 600,
    };
    assert!(store.answer(&refused).await.unwrap());
    assert!(!answer(store, &failed, &FrontSecret::generate()).await);
    let stored = store.code(&code.hash()).await.unwrap().unwrap();
    assert_eq!(stored.phase, CodePhase::Issued);
    assert_eq!(stored.transaction, self::transaction("c1"));
    assert_eq!(stored.sealed.as_deref(), Some(&b"sealed provider code"[..]));

    // A replay during the first redemption: the redemption learns of it.
    assert!(store.redeem(&code.hash(), NOW, NOW + 900).await.unwrap());
    assert!(!store.redeem(&code.hash(), NOW, NOW + 900).await.unwrap());
    assert_eq!(store.mark_replayed(&code.hash()).await.unwrap(), None);
    assert!(store.record_tokens(&code.hash(), b"tokens").await.unwrap());
    // A replay after it: the replay gets what to revoke.
    let later = FrontSecret::generate();
    assert!(answer(store, &FrontSecret::generate().hash(), &later).await);
    assert!(store.redeem(&later.hash(), NOW, NOW + 600).await.unwrap());
    assert!(!store.record_tokens(&later.hash(), b"tokens").await.unwrap());
    assert_eq!(
        store.mark_replayed(&later.hash()).await.unwrap().as_deref(),
        Some(&b"tokens"[..])
    );
    // An expired code is not redeemed.
    let stale = FrontSecret::generate();
    assert!(answer(store, &FrontSecret::generate().hash(), &stale).await);
    assert!(
        !store
            .redeem(&stale.hash(), NOW + 600, NOW + 900)
            .await
            .unwrap()
    );

    // The sweep keeps each record until its state could no longer be
    // presented (a redeemed code longer), and counts what it keeps.
    assert_eq!(store.sweep(NOW).await.unwrap(), 4);
    assert_eq!(store.sweep(NOW + 600).await.unwrap(), 1, "the redeemed one");
    assert_eq!(store.sweep(NOW + 900).await.unwrap(), 0);
    // A state forgotten by the sweep has expired anyway.
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

async fn refresh_families(stores: &[SqlStore]) {
    let store = &stores[0];
    let family = RefreshFamily {
        id: "family-1".into(),
        client_id: "c1".into(),
        scope: Some("openid".into()),
        resource: None,
        subject: "dana".into(),
        claims: serde_json::Map::new(),
        sealed_upstream: b"sealed upstream 1".to_vec(),
        expires_at: NOW + 100,
    };
    let first = FrontSecret::generate().hash();
    store.start_family(&family, &first).await.unwrap();
    assert_eq!(
        store.presented(&first, NOW).await.unwrap(),
        PresentedRefresh::Live(family.clone())
    );
    assert_eq!(
        store.presented(&first, NOW + 100).await.unwrap(),
        PresentedRefresh::Unknown,
        "lapsed"
    );
    let second = FrontSecret::generate().hash();
    assert!(
        store
            .rotate(&first, &second, Some(b"sealed upstream 2"), NOW + 200)
            .await
            .unwrap()
    );
    let rotated = RefreshFamily {
        claims: serde_json::Map::new(),
        sealed_upstream: b"sealed upstream 2".to_vec(),
        expires_at: NOW + 200,
        ..family.clone()
    };
    assert_eq!(
        store.presented(&first, NOW).await.unwrap(),
        PresentedRefresh::Reused(rotated.clone())
    );
    assert_eq!(
        store.presented(&second, NOW + 150).await.unwrap(),
        PresentedRefresh::Live(rotated.clone())
    );
    let third = FrontSecret::generate().hash();
    assert!(
        !store.rotate(&first, &third, None, NOW + 300).await.unwrap(),
        "a used token does not rotate"
    );
    assert_eq!(
        store.presented(&third, NOW).await.unwrap(),
        PresentedRefresh::Unknown
    );

    // Racing rotations of one token, on every store: exactly one wins.
    let mut racing = Vec::new();
    for i in 0..12 {
        let store = stores[i % stores.len()].clone();
        let second = second.clone();
        racing.push(tokio::spawn(async move {
            let next = FrontSecret::generate().hash();
            store.rotate(&second, &next, None, NOW + 400).await.unwrap()
        }));
    }
    let mut won = 0;
    for task in racing {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);

    assert_eq!(
        store.revoke_family("family-1").await.unwrap(),
        Some(b"sealed upstream 2".to_vec())
    );
    assert_eq!(store.revoke_family("family-1").await.unwrap(), None, "once");
    assert_eq!(
        store.presented(&second, NOW).await.unwrap(),
        PresentedRefresh::Unknown
    );
    store.sweep_families(NOW + 1_000).await.unwrap();
    let again = FrontSecret::generate().hash();
    store
        .start_family(&family, &again)
        .await
        .unwrap_or_else(|e| panic!("swept: {e}"));
}

/// The family `id`, of client `c1`, lapsing at `expires_at`.
fn refresh_family(id: &str, expires_at: i64) -> RefreshFamily {
    RefreshFamily {
        id: id.to_owned(),
        client_id: "c1".into(),
        scope: None,
        resource: None,
        subject: "dana".into(),
        claims: serde_json::Map::new(),
        sealed_upstream: b"sealed upstream".to_vec(),
        expires_at,
    }
}

/// Many rotations at once, across `stores` (batched on SQLite): rotations
/// of different tokens all win and are all kept (as `reader`, another
/// store on the same database, reads them); of two rotations of each
/// token, exactly one wins.
async fn concurrent_rotations(stores: &[SqlStore], reader: &SqlStore) {
    const FAMILIES: usize = 100;
    let mut firsts = Vec::new();
    for i in 0..FAMILIES {
        let first = FrontSecret::generate().hash();
        stores[0]
            .start_family(&refresh_family(&format!("many-{i}"), NOW + 100), &first)
            .await
            .unwrap();
        firsts.push(first);
    }
    let mut racing = Vec::new();
    for (i, first) in firsts.iter().enumerate() {
        let store = stores[i % stores.len()].clone();
        let first = first.clone();
        racing.push(tokio::spawn(async move {
            let next = FrontSecret::generate().hash();
            let rotated = store.rotate(&first, &next, None, NOW + 500).await.unwrap();
            (rotated, next)
        }));
    }
    let mut seconds = Vec::new();
    for task in racing {
        let (rotated, next) = task.await.unwrap();
        assert!(rotated, "a rotation of its own token wins");
        seconds.push(next);
    }
    for (i, (first, second)) in firsts.iter().zip(&seconds).enumerate() {
        let family = refresh_family(&format!("many-{i}"), NOW + 500);
        assert_eq!(
            reader.presented(first, NOW).await.unwrap(),
            PresentedRefresh::Reused(family.clone())
        );
        assert_eq!(
            reader.presented(second, NOW + 400).await.unwrap(),
            PresentedRefresh::Live(family)
        );
    }

    // Each token rotated twice at once: one of the two wins.
    let mut racing = Vec::new();
    for (i, second) in seconds.iter().enumerate() {
        for turn in 0..2 {
            let store = stores[(i + turn) % stores.len()].clone();
            let second = second.clone();
            racing.push(tokio::spawn(async move {
                let next = FrontSecret::generate().hash();
                let rotated = store.rotate(&second, &next, None, NOW + 600).await.unwrap();
                (i, rotated, next)
            }));
        }
    }
    let mut won = vec![0; FAMILIES];
    for task in racing {
        let (i, rotated, next) = task.await.unwrap();
        let presented = reader.presented(&next, NOW).await.unwrap();
        if rotated {
            won[i] += 1;
            assert!(matches!(presented, PresentedRefresh::Live(_)));
        } else {
            assert_eq!(
                presented,
                PresentedRefresh::Unknown,
                "nothing of a loser is kept"
            );
        }
    }
    assert_eq!(won, vec![1; FAMILIES]);
}

/// A signing key `kid` of `algorithm` signing from `signs_from` (the
/// store keeps the private half as it is given, sealed or not).
fn signing_key(kid: &str, algorithm: &str, signs_from: i64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.to_owned(),
        algorithm: algorithm.to_owned(),
        sealed_private: b"sealed".to_vec(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        signs_from,
        retired_at: None,
    }
}

async fn signing_keys(stores: &[SqlStore]) {
    let store = &stores[0];
    let first = signing_key("first", "ES256", NOW);
    assert!(
        store
            .add_signing_key(&first, NOW, KeyDue::First)
            .await
            .unwrap()
    );
    let second = signing_key("second", "ES256", NOW);
    assert!(
        !store
            .add_signing_key(&second, NOW, KeyDue::First)
            .await
            .unwrap(),
        "one first key"
    );
    let fresh = KeyDue::Stale {
        algorithm: "ES256",
        aged: Some(NOW - 1),
    };
    let renewed = signing_key("renewed", "ES256", NOW + 300);
    assert!(
        !store
            .add_signing_key(&renewed, NOW + 3900, fresh)
            .await
            .unwrap(),
        "not due"
    );
    let off = KeyDue::Stale {
        algorithm: "ES256",
        aged: None,
    };
    assert!(
        !store
            .add_signing_key(&renewed, NOW + 3900, off)
            .await
            .unwrap()
    );
    let aged = KeyDue::Stale {
        algorithm: "ES256",
        aged: Some(NOW),
    };
    assert!(
        store
            .add_signing_key(&renewed, NOW + 3900, aged)
            .await
            .unwrap()
    );
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|key| (key.kid.as_str(), key.retired_at))
            .collect::<Vec<_>>(),
        [("first", Some(NOW + 3900)), ("renewed", None)]
    );

    // Instances finding together that the algorithm changed add one key,
    // on every store.
    let mut racing = Vec::new();
    for i in 0..12 {
        let store = stores[i % stores.len()].clone();
        racing.push(tokio::spawn(async move {
            let key = signing_key(&format!("eddsa-{i}"), "EdDSA", NOW + 600);
            let due = KeyDue::Stale {
                algorithm: "EdDSA",
                aged: Some(NOW),
            };
            store.add_signing_key(&key, NOW + 4200, due).await.unwrap()
        }));
    }
    let mut added = 0;
    for task in racing {
        added += usize::from(task.await.unwrap());
    }
    assert_eq!(added, 1);
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0].retired_at, Some(NOW + 3900), "retired earlier");
    assert_eq!(keys[1].retired_at, Some(NOW + 4200));
    assert_eq!(
        (keys[2].algorithm.as_str(), keys[2].retired_at),
        ("EdDSA", None)
    );

    // The operator's rotation adds a key whatever the newest is.
    let operator = signing_key("operator", "EdDSA", NOW + 700);
    assert!(
        store
            .add_signing_key(&operator, NOW + 4300, KeyDue::Always)
            .await
            .unwrap()
    );
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
    refresh_families(std::slice::from_ref(&store)).await;
    let reader = open(&format!(
        "sqlite://{}",
        dir.path().join("front.db").display()
    ))
    .await;
    concurrent_rotations(std::slice::from_ref(&store), &reader).await;
    signing_keys(std::slice::from_ref(&store)).await;
    reservations_race(&[store]).await;
}

#[tokio::test]
async fn the_front_store_keeps_its_promises_on_postgres() {
    let database = TestDatabase::create().await;
    let store = open(&database.url).await;
    transactions(&store).await;
    let other = open(&database.url).await;
    let both = [store, other];
    refresh_families(&both).await;
    let reader = open(&database.url).await;
    concurrent_rotations(&both, &reader).await;
    signing_keys(&both).await;
    reservations_race(&both).await;
}
