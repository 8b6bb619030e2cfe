//! The `ClientStore` contract, written once and run against each backend
//! (SQLite here, on a real file).

use std::sync::Arc;

use dcr_gateway::clock::SystemClock;
use dcr_gateway::domain::{
    ClientId, ClientMetadata, ClientSecret, ClientState, InitialAccessToken,
    InitialAccessTokenRecord, MetadataDocument, ProviderState, RedirectRules, RegisteredClient,
    RegistrationAccessToken,
};
use dcr_gateway::store::sealing::Sealer;
use dcr_gateway::store::sql::SqlStore;
use dcr_gateway::store::{
    Change, ClientQueries, ClientStore, Health, InitialAccessTokens, StoreError,
};
use serde_json::json;
use sqlx::Connection;

use crate::support::postgres::TestDatabase;

pub(crate) fn client(id: &str, name: &str) -> RegisteredClient {
    let document: MetadataDocument = serde_json::from_value(json!({
        "redirect_uris": ["https://app.example.com/cb?x=1"],
        "client_name": name,
        "client_name#de": "Kunde",
    }))
    .unwrap();
    RegisteredClient {
        client_id: ClientId::new(id),
        metadata: std::sync::Arc::new(
            ClientMetadata::validate(document, RedirectRules::default()).unwrap(),
        ),
        issued_at: 1_700_000_000,
        registration_token: RegistrationAccessToken::generate().hash(),
        client_secret: Some(ClientSecret::generate().hash()),
        client_secret_expires_at: 0,
        state: ClientState::Active,
        provider_state: None,
        policy: "default".into(),
        expires_at: None,
        initial_access_token_id: None,
        revision: 0,
        lease_until: None,
        vouched: None,
    }
}

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

fn sealer() -> Option<Sealer> {
    Some(Sealer::from_base64(KEY).unwrap())
}

/// The store at `url` with `connections` pooled, sealing with the test key.
async fn open(url: &str, connections: u32) -> SqlStore {
    SqlStore::open(url, connections, Arc::new(SystemClock), sealer())
        .await
        .unwrap()
}

async fn sqlite() -> (tempfile::TempDir, SqlStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/store.db").display()
    );
    let store = open(&url, 4).await;
    (dir, store)
}

/// What every store promises, on each of its ports.
async fn contract(store: SqlStore) {
    store.ping().await.unwrap();
    let a = client("a-client", "A");
    store.insert(&a, None).await.unwrap();
    assert_eq!(store.get(&a.client_id).await.unwrap(), Some(a.clone()));
    assert!(matches!(
        store.insert(&a, None).await,
        Err(StoreError::Duplicate(id)) if id == a.client_id
    ));
    assert_eq!(store.get(&ClientId::new("missing")).await.unwrap(), None);

    // Update touches metadata and hashes of active clients only, at the
    // revision it read, and moves the revision on.
    let mut changed = client("a-client", "A2");
    changed.client_secret = None;
    assert!(store.update(&changed).await.unwrap());
    assert!(
        !store.update(&changed).await.unwrap(),
        "a second update at the same revision is refused"
    );
    changed.revision = 1;
    assert_eq!(
        store.get(&a.client_id).await.unwrap(),
        Some(changed.clone())
    );
    leases(&store, &changed).await;
    assert!(
        store
            .set_state(&a.client_id, ClientState::Deleting)
            .await
            .unwrap()
    );
    assert!(
        !store.update(&a).await.unwrap(),
        "a deleting client is not updated"
    );
    let stored = store.get(&a.client_id).await.unwrap().unwrap();
    assert_eq!(stored.state, ClientState::Deleting);
    assert_eq!(stored.metadata, changed.metadata);

    for id in ["c", "b", "d"] {
        store.insert(&client(id, id), None).await.unwrap();
    }
    let ids = |clients: Vec<RegisteredClient>| {
        clients
            .into_iter()
            .map(|c| c.client_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list(None, 10).await.unwrap()),
        ["a-client", "b", "c", "d"]
    );
    assert_eq!(ids(store.list(None, 2).await.unwrap()), ["a-client", "b"]);
    assert_eq!(
        ids(store.list(Some(&ClientId::new("b")), 10).await.unwrap()),
        ["c", "d"]
    );

    // A pending row becomes active under the provider's id, with its state.
    let mut pending = client("provisional", "P");
    pending.state = ClientState::Pending;
    store.insert(&pending, None).await.unwrap();
    let now = i64::MAX;
    let stale = store
        .list_stale(ClientState::Pending, now, 10)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].client_id, pending.client_id);
    assert!(
        store
            .list_stale(ClientState::Pending, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut activated = pending.clone();
    activated.client_id = ClientId::new("upstream-chosen");
    activated.state = ClientState::Active;
    activated.client_secret_expires_at = 1_900_000_000;
    activated.provider_state = Some(ProviderState(
        json!({ "registration_access_token": "upstream-secret" }),
    ));
    assert!(
        store
            .activate(&pending.client_id, &activated)
            .await
            .unwrap()
    );
    assert!(
        !store
            .activate(&pending.client_id, &activated)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&pending.client_id).await.unwrap(), None);
    assert_eq!(
        store.get(&activated.client_id).await.unwrap(),
        Some(activated.clone())
    );
    assert!(
        store
            .list_stale(ClientState::Pending, now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_stale(ClientState::Deleting, now, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.remove(&activated.client_id).await.unwrap());

    // A pending row takes the provider's id and the backend's state for
    // it, unless another row holds that id.
    let backend_state = ProviderState(json!({ "default_name": "dcr-adopting" }));
    let mut adopting = client("adopting", "Ad");
    adopting.state = ClientState::Pending;
    store.insert(&adopting, None).await.unwrap();
    assert!(
        !store
            .claim_pending(&adopting.client_id, &ClientId::new("b"), &backend_state)
            .await
            .unwrap(),
        "another row holds it"
    );
    let claimed = ClientId::new("provider-made");
    assert!(
        store
            .claim_pending(&adopting.client_id, &claimed, &backend_state)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&adopting.client_id).await.unwrap(), None);
    let held = store.get(&claimed).await.unwrap().unwrap();
    assert_eq!(held.state, ClientState::Pending);
    assert_eq!(held.provider_state, Some(backend_state));
    assert!(store.remove(&claimed).await.unwrap());

    // Expired clients come in order of expiry then id, page after page.
    for id in ["b", "c", "d"] {
        let mut expiring = store.get(&ClientId::new(id)).await.unwrap().unwrap();
        expiring.expires_at = Some(10);
        store.remove(&expiring.client_id).await.unwrap();
        store.insert(&expiring, None).await.unwrap();
    }
    assert_eq!(
        ids(store.list_expired(5, None, 10).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store.list_expired(10, None, 2).await.unwrap()),
        ["b", "c"]
    );
    assert_eq!(
        ids(store
            .list_expired(10, Some((10, &ClientId::new("c"))), 2)
            .await
            .unwrap()),
        ["d"]
    );

    assert!(store.remove(&a.client_id).await.unwrap());
    assert!(!store.remove(&a.client_id).await.unwrap());
    assert!(
        !store
            .set_state(&a.client_id, ClientState::Active)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&a.client_id).await.unwrap(), None);

    concurrent_inserts(&store).await;
    initial_access_tokens(&store).await;
    usage(&store).await;
}

/// Last uses: kept at the latest, skipped for clients that do not exist,
/// and gone with their client; the idle listing of a policy pages by id.
async fn usage(store: &SqlStore) {
    use dcr_gateway::store::usage::ClientUsage;
    let issued = 1_700_000_000;
    for id in ["idle-1", "idle-2", "idle-3"] {
        store.insert(&client(id, "Idle"), None).await.unwrap();
    }
    let uses = [
        ("idle-2".to_owned(), issued + 500),
        ("no-such-client".to_owned(), issued + 500),
    ];
    store.record_uses(&uses).await.unwrap();
    // An older use changes nothing.
    store
        .record_uses(&[("idle-2".to_owned(), issued + 10)])
        .await
        .unwrap();
    let idle = |since, after: Option<&str>| {
        let after = after.map(ClientId::new);
        async move {
            let listed = store
                .list_idle("default", since, after.as_ref(), 10)
                .await
                .unwrap();
            listed
                .into_iter()
                .map(|c| c.client_id.as_str().to_owned())
                .filter(|id| id.starts_with("idle-"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(idle(issued + 100, None).await, ["idle-1", "idle-3"]);
    assert_eq!(idle(issued + 100, Some("idle-1")).await, ["idle-3"]);
    assert_eq!(
        idle(issued + 500, None).await,
        ["idle-1", "idle-2", "idle-3"]
    );
    assert!(
        idle(issued - 1, None).await.is_empty(),
        "not before registration"
    );
    assert!(
        store
            .list_idle("other", issued + 500, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for id in ["idle-1", "idle-2", "idle-3"] {
        assert!(store.remove(&ClientId::new(id)).await.unwrap());
    }
    // The use row went with its client: a new client of the same id is
    // idle from its registration.
    store
        .insert(&client("idle-2", "Again"), None)
        .await
        .unwrap();
    assert_eq!(idle(issued, None).await, ["idle-2"]);
    assert!(store.remove(&ClientId::new("idle-2")).await.unwrap());
}

/// Inserts sent together share a commit and its multi-row statements; each
/// is still answered for itself, and of two with one id exactly one is
/// written, whether they meet in one statement or not.
async fn concurrent_inserts(store: &dyn ClientStore) {
    let mut clients = (0..45)
        .map(|n| client(&format!("together-{n:02}"), &format!("T{n}")))
        .collect::<Vec<_>>();
    let mut twin = client("together-07", "twin");
    twin.policy = "twin".into();
    clients.insert(20, twin);
    let capped = client("together-capped", "capped");
    let (mut answers, capped_answer) = tokio::join!(
        futures_util::future::join_all(clients.iter().map(|c| store.insert(c, None))),
        store.insert(&capped, Some(10)),
    );
    answers.push(capped_answer);
    let refused = answers
        .iter()
        .filter(|answer| matches!(answer, Err(StoreError::Duplicate(id)) if id.as_str() == "together-07"))
        .count();
    assert_eq!(refused, 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 46);
    for expected in clients
        .iter()
        .filter(|c| c.policy != "twin")
        .chain([&capped])
    {
        let stored = store.get(&expected.client_id).await.unwrap();
        if expected.client_id.as_str() == "together-07" {
            assert!(stored.is_some());
        } else {
            assert_eq!(stored.as_ref(), Some(expected));
        }
        assert!(store.remove(&expected.client_id).await.unwrap());
    }
}

/// A replace's lease: one holder at a time, at the revision it read; a
/// delete waits for it; a lapsed one is listed for reconcile and can be
/// taken over.
async fn leases(store: &SqlStore, client: &RegisteredClient) {
    let id = &client.client_id;
    let revision = client.revision;
    let leased = store.lease(id, revision, 100, 200).await.unwrap();
    assert_eq!(leased, Some(revision + 1));
    assert_eq!(
        store.lease(id, revision + 1, 150, 300).await.unwrap(),
        None,
        "a live lease keeps others out"
    );
    assert_eq!(
        store.lease(id, revision, 250, 300).await.unwrap(),
        None,
        "a stale revision is refused"
    );
    assert!(
        !store.begin_delete(id, 150).await.unwrap(),
        "a delete waits"
    );
    assert!(store.list_lapsed_leases(150, 10).await.unwrap().is_empty());
    let lapsed = store.list_lapsed_leases(250, 10).await.unwrap();
    assert_eq!(lapsed.len(), 1);
    assert_eq!(lapsed[0].lease_until, Some(200));
    // Taken over once lapsed, then ended by an update.
    let again = store
        .lease(id, revision + 1, 250, 400)
        .await
        .unwrap()
        .unwrap();
    let mut updated = store.get(id).await.unwrap().unwrap();
    updated.revision = again;
    assert!(store.update(&updated).await.unwrap());
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(stored.lease_until, None);
    // Released without a change.
    let leased = store
        .lease(id, stored.revision, 300, 400)
        .await
        .unwrap()
        .unwrap();
    assert!(store.release(id, leased).await.unwrap());
    assert!(!store.release(id, leased).await.unwrap());
    assert_eq!(store.get(id).await.unwrap().unwrap().lease_until, None);
}

/// Tokens are found by digest, and spending is exact under concurrency.
async fn initial_access_tokens(store: &SqlStore) {
    let token = InitialAccessToken::generate();
    let record = InitialAccessTokenRecord {
        id: InitialAccessTokenRecord::new_id(),
        hash: token.hash(),
        uses_left: Some(3),
        expires_at: Some(2_000_000_000),
        policy: Some("partners".into()),
        note: None,
        created_at: 1_700_000_000,
        revoked: false,
    };
    store.insert_initial_access_token(&record).await.unwrap();
    assert_eq!(
        store
            .find_initial_access_token(&token.hash())
            .await
            .unwrap(),
        Some(record.clone())
    );
    let spenders: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let id = record.id.clone();
            tokio::spawn(async move { store.spend_initial_access_token(&id, 1_800_000_000).await })
        })
        .collect();
    let mut spent = 0;
    for spender in spenders {
        spent += usize::from(spender.await.unwrap().unwrap());
    }
    assert_eq!(spent, 3, "exactly the uses the token had");
    assert!(
        !store
            .spend_initial_access_token(&record.id, 2_100_000_000)
            .await
            .unwrap()
    );
    store.refund_initial_access_token(&record.id).await.unwrap();
    assert!(
        store
            .spend_initial_access_token(&record.id, 1_800_000_000)
            .await
            .unwrap(),
        "a refunded use can be spent again"
    );
    assert!(store.revoke_initial_access_token(&record.id).await.unwrap());
    assert!(!store.revoke_initial_access_token("missing").await.unwrap());
    let listed = store.list_initial_access_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked);
    assert_eq!(listed[0].uses_left, Some(0));
}

#[tokio::test]
async fn sqlite_store_honours_the_contract() {
    let (_dir, store) = sqlite().await;
    contract(store).await;
}

#[tokio::test]
async fn postgres_store_honours_the_contract() {
    let database = TestDatabase::create().await;
    let store = open(&database.url, 4).await;
    contract(store).await;
}

/// The group-commit writer keeps its own connection; when the server cuts
/// it (a restart, an administrator), the next write opens a new one
/// instead of failing.
#[tokio::test]
async fn postgres_writes_go_on_after_the_database_cuts_the_writers_connection() {
    let database = TestDatabase::create().await;
    let store = open(&database.url, 2).await;
    store
        .insert(&client("before-cut", "B"), None)
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS cut",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(cut >= 1, "the writer's connection was open");
    let after = client("after-cut", "A");
    store.insert(&after, None).await.unwrap();
    assert_eq!(store.get(&after.client_id).await.unwrap(), Some(after));
}

/// A store at `url` hears of inserts, updates and removals that another
/// process (another store on the same database) makes.
async fn reports_other_processes_changes(url: &str) {
    let writer = open(url, 2).await;
    let watcher = open(url, 2).await;
    let mut feed = watcher.change_feed().await.unwrap();
    let a = client("watched", "W");
    writer.insert(&a, None).await.unwrap();
    writer.update(&a).await.unwrap();
    writer.remove(&a.client_id).await.unwrap();
    for _ in 0..2 {
        let change = tokio::time::timeout(std::time::Duration::from_secs(5), feed.next())
            .await
            .expect("a change arrives")
            .unwrap();
        assert_eq!(change, Change::Client(a.client_id.clone()), "{url}");
    }
}

#[tokio::test]
async fn sqlite_store_reports_other_processes_changes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("feed.db").display());
    reports_other_processes_changes(&url).await;
}

#[tokio::test]
async fn postgres_store_reports_other_processes_changes() {
    let database = TestDatabase::create().await;
    reports_other_processes_changes(&database.url).await;
}

#[tokio::test]
async fn sqlite_store_reopens_with_its_data_and_seals_provider_state() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let mut a = client("kept", "Kept");
    a.provider_state = Some(ProviderState(json!({ "token": "sealed-upstream-token" })));
    {
        let store = open(&url, 4).await;
        store.insert(&a, None).await.unwrap();
    }
    let store = open(&url, 4).await;
    assert_eq!(store.get(&a.client_id).await.unwrap(), Some(a.clone()));
    drop(store);
    // The provider state is not on disk in clear.
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!bytes.windows(21).any(|w| w == b"sealed-upstream-token"));
    }
    // Without the key, a sealed row is an error, not a silent loss.
    let keyless = SqlStore::open(&url, 4, Arc::new(SystemClock), None)
        .await
        .unwrap();
    assert!(matches!(
        keyless.get(&a.client_id).await,
        Err(StoreError::Sealing { .. })
    ));
}
