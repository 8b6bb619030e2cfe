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
    directory(&store).await;
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

/// The directory's clients are registered from here on: after every
/// other client of the contract, so the newest.
const DIRECTORY_EPOCH: i64 = 2_000_000_000;

/// A client of the directory's tests, as the tests expect it listed.
#[derive(Debug, Clone)]
struct Expected {
    id: String,
    issued_at: i64,
    software_id: Option<&'static str>,
    hosts: Vec<&'static str>,
    name: Option<&'static str>,
    state: ClientState,
    last_used_at: Option<i64>,
    document_url: Option<String>,
}

impl Expected {
    /// Client `n` of the directory's set: registration times in threes
    /// (ties broken by id), and softwares, hosts, names, states, uses and
    /// documents in cycles of different lengths.
    fn nth(n: usize) -> Self {
        let uses = DIRECTORY_EPOCH + 1_000;
        Self {
            id: format!("dir{n:02}"),
            issued_at: DIRECTORY_EPOCH + i64::try_from(n / 3).unwrap() * 10,
            software_id: [Some("claude.ai"), Some("cursor"), None][(n / 2) % 3],
            hosts: [
                vec!["claude.ai"],
                vec!["127.0.0.1", "localhost"],
                vec!["app.example.com"],
                vec![],
            ][n % 4]
                .clone(),
            name: [
                Some("Claude"),
                Some("Cursor"),
                Some("claude code"),
                Some("VS Code"),
                None,
            ][n % 5],
            state: match n {
                _ if n % 7 == 3 => ClientState::Pending,
                _ if n % 11 == 5 => ClientState::Deleting,
                _ => ClientState::Active,
            },
            last_used_at: match n {
                _ if n % 4 == 1 => Some(uses + 100),
                _ if n % 6 == 2 => Some(uses + 500),
                _ => None,
            },
            document_url: (n % 8 == 6).then(|| format!("https://docs.example/{n}.json")),
        }
    }

    /// The client to insert; its redirect URIs give one host, two, one
    /// twice in two cases, or none.
    fn client(&self) -> RegisteredClient {
        let mut document = json!({
            "redirect_uris": match self.hosts.as_slice() {
                ["claude.ai"] => json!(["https://claude.ai/api/mcp/auth_callback"]),
                ["127.0.0.1", "localhost"] => json!([
                    "http://127.0.0.1:33418/callback",
                    "http://localhost:33418/callback",
                ]),
                // A private-use scheme's host keeps its case in the URL.
                ["app.example.com"] => json!([
                    "com.example.app://App.Example.com/cb",
                    "com.example.app://app.example.com/other",
                ]),
                _ => json!(["com.example.app:/callback"]),
            },
        });
        if !self.hosts.contains(&"claude.ai") {
            document["application_type"] = json!("native");
        }
        if let Some(name) = self.name {
            document["client_name"] = json!(name);
        }
        if let Some(software_id) = self.software_id {
            document["software_id"] = json!(software_id);
        }
        let mut client = directory_client(&self.id, self.issued_at, document);
        client.state = self.state;
        client
    }

    fn matches(&self, filter: &dcr_gateway::store::directory::ClientFilter) -> bool {
        use dcr_gateway::store::directory::{Origin, Used};
        let lower = |text: &str| text.to_ascii_lowercase();
        filter
            .software_id
            .as_deref()
            .is_none_or(|s| self.software_id == Some(s))
            && filter
                .redirect_host
                .as_deref()
                .is_none_or(|h| self.hosts.contains(&lower(h).as_str()))
            && filter
                .name_prefix
                .as_deref()
                .is_none_or(|p| self.name.is_some_and(|n| lower(n).starts_with(&lower(p))))
            && filter.state.is_none_or(|s| self.state == s)
            && filter.registered_from.is_none_or(|t| self.issued_at >= t)
            && filter.registered_until.is_none_or(|t| self.issued_at < t)
            && filter.used.is_none_or(|used| match used {
                Used::Never => self.last_used_at.is_none(),
                Used::NotSince(t) => self.last_used_at.is_none_or(|at| at < t),
                Used::Since(t) => self.last_used_at.is_some_and(|at| at >= t),
            })
            && filter
                .origin
                .is_none_or(|origin| (origin == Origin::Document) == self.document_url.is_some())
    }
}

/// A client registered at `issued_at` with the metadata `document`.
fn directory_client(id: &str, issued_at: i64, document: serde_json::Value) -> RegisteredClient {
    let document: MetadataDocument = serde_json::from_value(document).unwrap();
    RegisteredClient {
        metadata: Arc::new(ClientMetadata::validate(document, RedirectRules::default()).unwrap()),
        issued_at,
        ..client(id, "unused")
    }
}

/// The directory: each filter alone and together, newest first (ties by
/// id, descending), page after page by key; the last use and document of
/// each client; the redirect hosts and names following a client through
/// its insert, activation under another id, update and removal.
async fn directory(store: &SqlStore) {
    use dcr_gateway::store::directory::{
        ClientDirectory, ClientFilter, ListedClient, Origin, PageAfter, Used,
    };
    use dcr_gateway::store::front::{CimdStore, DocumentCaps, Mapping, Reserved};
    use dcr_gateway::store::usage::ClientUsage;

    let expected = (0..36).map(Expected::nth).collect::<Vec<_>>();
    let inserted = expected.iter().map(Expected::client).collect::<Vec<_>>();
    for client in &inserted {
        store.insert(client, None).await.unwrap();
    }
    let uses = expected
        .iter()
        .filter_map(|c| c.last_used_at.map(|at| (c.id.clone(), at)))
        .collect::<Vec<_>>();
    store.record_uses(&uses).await.unwrap();
    let caps = DocumentCaps {
        per_host: 100,
        in_all: 100,
    };
    for client in &expected {
        if let Some(url) = &client.document_url {
            let reserved = store
                .reserve(url, "docs.example", caps, 0, i64::MAX)
                .await
                .unwrap();
            assert_eq!(reserved, Reserved::Yes);
            let mapping = Mapping {
                client_id: client.id.clone(),
                document_hash: vec![1; 32],
                fresh_until: i64::MAX,
                last_used: 0,
            };
            store.update_mapping(url, &mapping, 0).await.unwrap();
        }
    }
    // A place reserved for a document being registered names no client.
    let reserved = store
        .reserve(
            "https://docs.example/pending.json",
            "docs.example",
            caps,
            0,
            i64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(reserved, Reserved::Yes);

    let shown = |listed: &[ListedClient]| {
        listed
            .iter()
            .map(|l| {
                (
                    l.client.client_id.as_str().to_owned(),
                    l.last_used_at,
                    l.document_url.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let want = |filter: &ClientFilter| {
        let mut matching = expected
            .iter()
            .filter(|c| c.matches(filter))
            .collect::<Vec<_>>();
        matching.sort_by(|a, b| (b.issued_at, &b.id).cmp(&(a.issued_at, &a.id)));
        matching
            .into_iter()
            .map(|c| (c.id.clone(), c.last_used_at, c.document_url.clone()))
            .collect::<Vec<_>>()
    };
    // Every page of `filter`, `size` at a time, each after the last row of
    // the one before.
    let pages = |filter: ClientFilter, size: u32| async move {
        let mut all = Vec::new();
        let mut after: Option<PageAfter> = None;
        loop {
            let page = store.find(&filter, after.as_ref(), size).await.unwrap();
            assert!(page.len() <= size as usize);
            let Some(last) = page.last() else { break };
            after = Some(PageAfter {
                issued_at: last.client.issued_at,
                client_id: last.client.client_id.clone(),
            });
            all.extend(shown(&page));
        }
        all
    };

    // Within the set's registration times, every filter alone, then
    // together, both in one page and page after page.
    let ours = ClientFilter {
        registered_from: Some(DIRECTORY_EPOCH),
        ..ClientFilter::default()
    };
    let uses = DIRECTORY_EPOCH + 1_000;
    let filters = [
        ours.clone(),
        ClientFilter {
            software_id: Some("claude.ai".into()),
            ..ours.clone()
        },
        ClientFilter {
            software_id: Some("nobody".into()),
            ..ours.clone()
        },
        ClientFilter {
            redirect_host: Some("claude.ai".into()),
            ..ours.clone()
        },
        ClientFilter {
            redirect_host: Some("127.0.0.1".into()),
            ..ours.clone()
        },
        ClientFilter {
            redirect_host: Some("localhost".into()),
            ..ours.clone()
        },
        ClientFilter {
            redirect_host: Some("app.example.com".into()),
            ..ours.clone()
        },
        ClientFilter {
            redirect_host: Some("example.com".into()),
            ..ours.clone()
        },
        ClientFilter {
            name_prefix: Some("claude".into()),
            ..ours.clone()
        },
        ClientFilter {
            name_prefix: Some("CL".into()),
            ..ours.clone()
        },
        ClientFilter {
            name_prefix: Some("claude c".into()),
            ..ours.clone()
        },
        ClientFilter {
            name_prefix: Some("Vs".into()),
            ..ours.clone()
        },
        ClientFilter {
            name_prefix: Some(String::new()),
            ..ours.clone()
        },
        ClientFilter {
            state: Some(ClientState::Active),
            ..ours.clone()
        },
        ClientFilter {
            state: Some(ClientState::Pending),
            ..ours.clone()
        },
        ClientFilter {
            state: Some(ClientState::Deleting),
            ..ours.clone()
        },
        ClientFilter {
            registered_from: Some(DIRECTORY_EPOCH + 30),
            registered_until: Some(DIRECTORY_EPOCH + 70),
            ..ours.clone()
        },
        ClientFilter {
            used: Some(Used::Never),
            ..ours.clone()
        },
        ClientFilter {
            used: Some(Used::NotSince(uses + 200)),
            ..ours.clone()
        },
        ClientFilter {
            used: Some(Used::Since(uses + 200)),
            ..ours.clone()
        },
        ClientFilter {
            used: Some(Used::Since(uses)),
            ..ours.clone()
        },
        ClientFilter {
            origin: Some(Origin::Document),
            ..ours.clone()
        },
        ClientFilter {
            origin: Some(Origin::Registered),
            ..ours.clone()
        },
        ClientFilter {
            software_id: Some("claude.ai".into()),
            redirect_host: Some("claude.ai".into()),
            ..ours.clone()
        },
        ClientFilter {
            state: Some(ClientState::Active),
            name_prefix: Some("c".into()),
            used: Some(Used::Never),
            ..ours.clone()
        },
        ClientFilter {
            redirect_host: Some("app.example.com".into()),
            origin: Some(Origin::Document),
            ..ours.clone()
        },
        ClientFilter {
            software_id: Some("cursor".into()),
            used: Some(Used::Since(uses)),
            registered_until: Some(DIRECTORY_EPOCH + 80),
            ..ours.clone()
        },
        ClientFilter {
            name_prefix: Some("cursor".into()),
            used: Some(Used::Since(uses)),
            origin: Some(Origin::Registered),
            state: Some(ClientState::Active),
            ..ours.clone()
        },
        ClientFilter {
            software_id: Some("claude.ai".into()),
            redirect_host: Some("localhost".into()),
            name_prefix: Some("claude".into()),
            state: Some(ClientState::Active),
            registered_until: Some(DIRECTORY_EPOCH + 100),
            used: Some(Used::NotSince(uses + 200)),
            origin: Some(Origin::Registered),
            ..ours.clone()
        },
    ];
    for filter in filters {
        let want = want(&filter);
        assert_eq!(
            shown(&store.find(&filter, None, 100).await.unwrap()),
            want,
            "{filter:?}"
        );
        assert_eq!(pages(filter.clone(), 4).await, want, "{filter:?}, by 4");
        assert_eq!(pages(filter.clone(), 1).await, want, "{filter:?}, by 1");
    }
    assert!(
        !want(&ClientFilter {
            software_id: Some("claude.ai".into()),
            redirect_host: Some("localhost".into()),
            name_prefix: Some("claude".into()),
            ..ours.clone()
        })
        .is_empty(),
        "the set has clients matching several filters"
    );
    // A host is matched in any case.
    assert_eq!(
        shown(
            &store
                .find(
                    &ClientFilter {
                        redirect_host: Some("Claude.AI".into()),
                        ..ours.clone()
                    },
                    None,
                    100
                )
                .await
                .unwrap()
        ),
        want(&ClientFilter {
            redirect_host: Some("claude.ai".into()),
            ..ours.clone()
        })
    );

    // Without a filter: the newest first, then every other client of the
    // contract, each once.
    let first = store.find(&ClientFilter::default(), None, 5).await.unwrap();
    assert_eq!(shown(&first), want(&ours)[..5]);
    let everything = pages(ClientFilter::default(), 7).await;
    assert_eq!(everything[..expected.len()], want(&ours)[..]);
    let mut ids = everything.iter().map(|(id, ..)| id).collect::<Vec<_>>();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), everything.len(), "each client once");
    assert_eq!(store.find(&ours, None, 0).await.unwrap().len(), 0);

    // One client, in any state, with its use and document.
    for n in [6, 9, 10] {
        let client = &expected[n];
        let listed = store
            .listed(&ClientId::new(client.id.as_str()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(listed.client, inserted[n]);
        assert_eq!(listed.last_used_at, client.last_used_at);
        assert_eq!(listed.document_url, client.document_url);
    }
    assert!(
        store
            .listed(&ClientId::new("dir-missing"))
            .await
            .unwrap()
            .is_none()
    );

    // Hosts and names follow the client: written with it, under the id a
    // provider gave it on activation or adoption, anew with its metadata,
    // and gone with it.
    let found = |host: &'static str, name: &'static str| async move {
        let by = |filter: ClientFilter| async move {
            let listed = store.find(&filter, None, 10).await.unwrap();
            listed
                .iter()
                .map(|l| l.client.client_id.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        let by_host = by(ClientFilter {
            redirect_host: Some(host.into()),
            ..ClientFilter::default()
        })
        .await;
        let by_name = by(ClientFilter {
            name_prefix: Some(name.into()),
            ..ClientFilter::default()
        })
        .await;
        (by_host, by_name)
    };
    let moving = |id: &str, host: &str, name: &str| {
        let mut client = directory_client(
            id,
            DIRECTORY_EPOCH - 10,
            json!({ "redirect_uris": [format!("https://{host}/cb")], "client_name": name }),
        );
        client.state = ClientState::Pending;
        client
    };
    let pending = moving("dir-pending", "before.example", "Before");
    store.insert(&pending, None).await.unwrap();
    assert_eq!(
        found("before.example", "bef").await,
        (
            vec!["dir-pending".to_owned()],
            vec!["dir-pending".to_owned()]
        )
    );
    let mut active = pending.clone();
    active.client_id = ClientId::new("dir-activated");
    active.state = ClientState::Active;
    assert!(store.activate(&pending.client_id, &active).await.unwrap());
    assert_eq!(
        found("before.example", "bef").await,
        (
            vec!["dir-activated".to_owned()],
            vec!["dir-activated".to_owned()]
        )
    );
    let mut updated = moving("dir-activated", "after.example", "After");
    updated.state = ClientState::Active;
    updated.registration_token = active.registration_token.clone();
    assert!(store.update(&updated).await.unwrap());
    assert_eq!(found("before.example", "bef").await, (vec![], vec![]));
    assert_eq!(
        found("after.example", "aft").await,
        (
            vec!["dir-activated".to_owned()],
            vec!["dir-activated".to_owned()]
        )
    );
    // A host's clients filtered by software and name too, as updated.
    let on_host = |software_id: &'static str, name: &'static str| async move {
        let filter = ClientFilter {
            redirect_host: Some("after.example".into()),
            software_id: Some(software_id.into()),
            name_prefix: Some(name.into()),
            ..ClientFilter::default()
        };
        let listed = store.find(&filter, None, 10).await.unwrap();
        listed.len()
    };
    let mut renamed = directory_client(
        "dir-activated",
        DIRECTORY_EPOCH - 10,
        json!({
            "redirect_uris": ["https://after.example/again"],
            "client_name": "Later",
            "software_id": "later-soft",
        }),
    );
    renamed.revision = 1;
    renamed.registration_token = active.registration_token.clone();
    assert_eq!(on_host("later-soft", "lat").await, 0);
    assert!(store.update(&renamed).await.unwrap());
    assert_eq!(on_host("later-soft", "lat").await, 1);
    assert_eq!(on_host("later-soft", "aft").await, 0);
    assert_eq!(on_host("other-soft", "lat").await, 0);
    let adopting = moving("dir-adopting", "adopted.example", "Adopted");
    store.insert(&adopting, None).await.unwrap();
    let adopted = ClientId::new("dir-adopted");
    assert!(
        store
            .claim_pending(&adopting.client_id, &adopted, &ProviderState(json!({})))
            .await
            .unwrap()
    );
    assert_eq!(
        found("adopted.example", "adop").await,
        (
            vec!["dir-adopted".to_owned()],
            vec!["dir-adopted".to_owned()]
        )
    );
    assert!(store.remove(&ClientId::new("dir-activated")).await.unwrap());
    assert!(store.remove(&adopted).await.unwrap());
    assert_eq!(found("after.example", "aft").await, (vec![], vec![]));
    assert_eq!(found("adopted.example", "adop").await, (vec![], vec![]));
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

/// Clients written before the directory's migration are found by their
/// redirect hosts and names after it, without a change logged for each.
async fn the_directory_migration_fills_in_existing_clients(url: &str) {
    use dcr_gateway::store::directory::{ClientDirectory, ClientFilter};
    use sqlx::migrate::Migrator;
    let (mut migrator, directory_migration): (Migrator, i64) = if url.starts_with("sqlite:") {
        (sqlx::migrate!("migrations/sqlite"), 15)
    } else {
        (sqlx::migrate!("migrations/postgres"), 13)
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < directory_migration)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let clients = [
        directory_client(
            "old-claude",
            1_700_000_000,
            json!({
                "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
                "client_name": "Claude",
                "software_id": "claude.ai",
            }),
        ),
        directory_client(
            "old-native",
            1_700_000_001,
            json!({
                "redirect_uris": [
                    "com.example.app://User@App.Example.com:8080/cb?x=http://evil.example",
                    "com.example.app://app.example.com/other",
                    "http://[::1]:3000/cb",
                    "com.example.app:/no-host",
                ],
                "application_type": "native",
                "client_name": "Native ÉCRAN",
            }),
        ),
    ];
    {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap();
        migrator.run(&pool).await.unwrap();
        for client in &clients {
            sqlx::query(
                "INSERT INTO clients (client_id, state, metadata, registration_token_hash, \
                 client_id_issued_at, updated_at, policy, software_id) \
                 VALUES ($1, 'active', $2, $3, $4, $4, 'default', $5)",
            )
            .bind(client.client_id.as_str())
            .bind(serde_json::to_string(&client.metadata.to_document()).unwrap())
            .bind(client.registration_token.as_bytes().to_vec())
            .bind(client.issued_at)
            .bind(client.counted_software_id())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let store = open(url, 2).await;
    let found = |filter: ClientFilter| {
        let store = &store;
        async move {
            store
                .find(&filter, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|l| l.client.client_id.to_string())
                .collect::<Vec<_>>()
        }
    };
    let host = |host: &str| ClientFilter {
        redirect_host: Some(host.into()),
        ..ClientFilter::default()
    };
    assert_eq!(found(host("claude.ai")).await, ["old-claude"]);
    assert_eq!(found(host("app.example.com")).await, ["old-native"]);
    assert_eq!(found(host("[::1]")).await, ["old-native"]);
    assert!(found(host("evil.example")).await.is_empty());
    let name = |prefix: &str| ClientFilter {
        name_prefix: Some(prefix.into()),
        ..ClientFilter::default()
    };
    assert_eq!(found(name("NATIVE É")).await, ["old-native"]);
    assert!(
        found(name("native é")).await.is_empty(),
        "only ASCII letters fold"
    );
    assert_eq!(found(name("CLAUDE")).await, ["old-claude"]);
    // The hosts' rows hold the software and name key.
    let combined = ClientFilter {
        software_id: Some("claude.ai".into()),
        name_prefix: Some("claude".into()),
        ..host("claude.ai")
    };
    assert_eq!(found(combined).await, ["old-claude"]);
    // As the store would have written them.
    let mut native = clients[1].clone();
    native.client_id = ClientId::new("new-native");
    store.insert(&native, None).await.unwrap();
    assert_eq!(
        found(host("app.example.com")).await,
        ["old-native", "new-native"]
    );
    for prefix in ["NATIVE É", "native É"] {
        assert_eq!(found(name(prefix)).await, ["old-native", "new-native"]);
    }
    if url.starts_with("sqlite:") {
        let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM client_changes")
            .fetch_one(&mut sqlx::SqliteConnection::connect(url).await.unwrap())
            .await
            .unwrap();
        assert_eq!(logged, 0, "filling in the clients logged no change");
    }
}

#[tokio::test]
async fn sqlite_directory_migration_fills_in_existing_clients() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    the_directory_migration_fills_in_existing_clients(&url).await;
}

#[tokio::test]
async fn postgres_directory_migration_fills_in_existing_clients() {
    let database = TestDatabase::create().await;
    the_directory_migration_fills_in_existing_clients(&database.url).await;
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
