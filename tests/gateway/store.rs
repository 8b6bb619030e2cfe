//! The `ClientStore` contract, written once and run against each backend
//! (SQLite here, on a real file).

use std::sync::Arc;

use dcr_gateway::clock::SystemClock;
use dcr_gateway::domain::{
    ClientId, ClientMetadata, ClientSecret, ClientState, MetadataDocument, RedirectRules,
    RegisteredClient, RegistrationAccessToken,
};
use dcr_gateway::store::sqlite::SqliteStore;
use dcr_gateway::store::{ClientStore, StoreError};
use serde_json::json;

fn client(id: &str, name: &str) -> RegisteredClient {
    let document: MetadataDocument = serde_json::from_value(json!({
        "redirect_uris": ["https://app.example.com/cb?x=1"],
        "client_name": name,
        "client_name#de": "Kunde",
    }))
    .unwrap();
    RegisteredClient {
        client_id: ClientId::new(id),
        metadata: ClientMetadata::validate(document, RedirectRules::default()).unwrap(),
        issued_at: 1_700_000_000,
        registration_token: RegistrationAccessToken::generate().hash(),
        client_secret: Some(ClientSecret::generate().hash()),
        client_secret_expires_at: 0,
        state: ClientState::Active,
    }
}

async fn sqlite() -> (tempfile::TempDir, Arc<dyn ClientStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/store.db").display()
    );
    let store = SqliteStore::open(&url, Arc::new(SystemClock))
        .await
        .unwrap();
    (dir, Arc::new(store))
}

async fn contract(store: Arc<dyn ClientStore>) {
    store.ping().await.unwrap();
    let a = client("a-client", "A");
    store.insert(&a).await.unwrap();
    assert_eq!(store.get(&a.client_id).await.unwrap(), Some(a.clone()));
    assert!(matches!(
        store.insert(&a).await,
        Err(StoreError::Duplicate(id)) if id == a.client_id
    ));
    assert_eq!(store.get(&ClientId::new("missing")).await.unwrap(), None);

    // Update touches metadata and hashes of active clients only.
    let mut changed = client("a-client", "A2");
    changed.client_secret = None;
    assert!(store.update(&changed).await.unwrap());
    assert_eq!(
        store.get(&a.client_id).await.unwrap(),
        Some(changed.clone())
    );
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
        store.insert(&client(id, id)).await.unwrap();
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

    assert!(store.remove(&a.client_id).await.unwrap());
    assert!(!store.remove(&a.client_id).await.unwrap());
    assert!(
        !store
            .set_state(&a.client_id, ClientState::Active)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&a.client_id).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_store_honours_the_contract() {
    let (_dir, store) = sqlite().await;
    contract(store).await;
}

#[tokio::test]
async fn sqlite_store_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let a = client("kept", "Kept");
    {
        let store = SqliteStore::open(&url, Arc::new(SystemClock))
            .await
            .unwrap();
        store.insert(&a).await.unwrap();
    }
    let store = SqliteStore::open(&url, Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(store.get(&a.client_id).await.unwrap(), Some(a));
}
