//! The console's directory of clients (`ClientDirectory::find`) at a
//! million clients on SQLite: each shape of query the Clients page sends,
//! timed over many calls, beside the store's plain id-order listing
//! (`ClientQueries::list`) and a read by id in the same run.
//!   cargo bench --bench directory [-- CLIENTS] [--keep FILE]
//! (`--keep`: the store is written to FILE and left there, to look into
//! with `sqlite3`.)
//!
//! The clients are written straight into the store's file (with their name
//! keys and redirect-host rows, as the store writes them), copied from a
//! template inserted through the store: registration times spread over 90
//! days;
//! claude.ai's (35%), Cursor's (20%), VS Code's (10%), Windsurf's (5%), a
//! long tail of 5,000 softwares with a host each (15%) and clients of no
//! software (15%, among them rare hosts); 0.5% pending, 0.5% deleting; 40%
//! used at some time since their registration; 0.5% made for metadata
//! documents.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcr_gateway::clock::{Clock, SystemClock};
use dcr_gateway::domain::{
    ClientId, ClientMetadata, ClientSecret, ClientState, MetadataDocument, RedirectRules,
    RegisteredClient, RegistrationAccessToken,
};
use dcr_gateway::store::directory::{ClientDirectory, ClientFilter, Origin, PageAfter, Used};
use dcr_gateway::store::sql::SqlStore;
use dcr_gateway::store::{ClientQueries, ClientStore};
use serde_json::json;

/// Timed calls of each query, after [`WARM_UP`] untimed ones.
const CALLS: usize = 200;
const WARM_UP: usize = 20;
/// Rows a page of the console holds.
const PAGE: u32 = 50;
const DAY: i64 = 24 * 3600;

/// The template's columns copied to every client.
const COPIED: &str = "registration_token_hash, client_secret_hash, client_secret_expires_at, \
    provider_state, policy, initial_access_token_id, revision, lease_until, vouched";

#[tokio::main]
async fn main() {
    let args = std::env::args().skip(1).collect::<Vec<_>>();
    let clients: i64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|at| args.get(at + 1))
        .map_or_else(|| dir.path().join("directory.db"), PathBuf::from);
    let _ = std::fs::remove_file(&db);
    let url = format!("sqlite://{}", db.display());
    // The store's default pool ([store] max_connections).
    let store = SqlStore::open(&url, 8, Arc::new(SystemClock), None)
        .await
        .unwrap();
    let now = SystemClock.now_unix();
    let template = template(now);
    store.insert(&template, None).await.unwrap();

    let started = Instant::now();
    let deep = populate(&url, clients, now, template.client_id.as_str()).await;
    println!(
        "{clients} clients written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let days_ago = |days: i64| now - days * DAY;
    let filter = ClientFilter::default;
    let shapes: Vec<(&str, ClientFilter, Option<PageAfter>)> = vec![
        ("first page", filter(), None),
        ("page 500k rows in", filter(), Some(deep)),
        (
            "software claude.ai (35%)",
            ClientFilter {
                software_id: Some("claude.ai".into()),
                ..filter()
            },
            None,
        ),
        (
            "software tool-77 (rare)",
            ClientFilter {
                software_id: Some("tool-77".into()),
                ..filter()
            },
            None,
        ),
        (
            "host 127.0.0.1 (30%)",
            ClientFilter {
                redirect_host: Some("127.0.0.1".into()),
                ..filter()
            },
            None,
        ),
        (
            "host app77.example.com (rare)",
            ClientFilter {
                redirect_host: Some("app77.example.com".into()),
                ..filter()
            },
            None,
        ),
        (
            "state pending (0.5%)",
            ClientFilter {
                state: Some(ClientState::Pending),
                ..filter()
            },
            None,
        ),
        (
            "name \"claude\" (35%)",
            ClientFilter {
                name_prefix: Some("claude".into()),
                ..filter()
            },
            None,
        ),
        (
            "name \"mcp\" (5%)",
            ClientFilter {
                name_prefix: Some("mcp".into()),
                ..filter()
            },
            None,
        ),
        (
            "name \"tool 12\" (0.3%)",
            ClientFilter {
                name_prefix: Some("Tool 12".into()),
                ..filter()
            },
            None,
        ),
        (
            "registered a day, 45 days ago",
            ClientFilter {
                registered_from: Some(days_ago(46)),
                registered_until: Some(days_ago(45)),
                ..filter()
            },
            None,
        ),
        (
            "never used (60%)",
            ClientFilter {
                used: Some(Used::Never),
                ..filter()
            },
            None,
        ),
        (
            "not used for 30 days",
            ClientFilter {
                used: Some(Used::NotSince(days_ago(30))),
                ..filter()
            },
            None,
        ),
        (
            "used in the last day",
            ClientFilter {
                used: Some(Used::Since(days_ago(1))),
                ..filter()
            },
            None,
        ),
        (
            "metadata documents (0.5%)",
            ClientFilter {
                origin: Some(Origin::Document),
                ..filter()
            },
            None,
        ),
        (
            "claude.ai, active, never used",
            ClientFilter {
                software_id: Some("claude.ai".into()),
                state: Some(ClientState::Active),
                used: Some(Used::Never),
                ..filter()
            },
            None,
        ),
        (
            "host localhost, name \"mcp\"",
            ClientFilter {
                redirect_host: Some("localhost".into()),
                name_prefix: Some("mcp".into()),
                ..filter()
            },
            None,
        ),
        (
            "cursor, registered in 7 days, used",
            ClientFilter {
                software_id: Some("cursor".into()),
                registered_from: Some(days_ago(7)),
                used: Some(Used::Since(days_ago(7))),
                ..filter()
            },
            None,
        ),
        (
            "pending, host claude.ai",
            ClientFilter {
                state: Some(ClientState::Pending),
                redirect_host: Some("claude.ai".into()),
                ..filter()
            },
            None,
        ),
        (
            "documents, not used for 30 days",
            ClientFilter {
                origin: Some(Origin::Document),
                used: Some(Used::NotSince(days_ago(30))),
                ..filter()
            },
            None,
        ),
        (
            "claude.ai on localhost (none)",
            ClientFilter {
                software_id: Some("claude.ai".into()),
                redirect_host: Some("localhost".into()),
                ..filter()
            },
            None,
        ),
        (
            "active on localhost, never used",
            ClientFilter {
                state: Some(ClientState::Active),
                redirect_host: Some("localhost".into()),
                used: Some(Used::Never),
                ..filter()
            },
            None,
        ),
        (
            "claude.ai named \"cursor\" (none)",
            ClientFilter {
                software_id: Some("claude.ai".into()),
                name_prefix: Some("cursor".into()),
                ..filter()
            },
            None,
        ),
    ];

    println!("{CALLS} calls each after {WARM_UP} untimed, pages of {PAGE}; ms");
    println!(
        "{:<36} {:>5} {:>8} {:>8} {:>8}",
        "query", "rows", "p50", "p99", "max"
    );
    let list = time(|| async { store.list(None, PAGE).await.unwrap().len() }).await;
    report("baseline: list, id order (50)", &list);
    let get =
        time(|| async { usize::from(store.get(&template.client_id).await.unwrap().is_some()) })
            .await;
    report("baseline: get by id", &get);
    let listed =
        time(|| async { usize::from(store.listed(&template.client_id).await.unwrap().is_some()) })
            .await;
    report("listed(id)", &listed);
    let mut worst: Option<(&str, f64)> = None;
    // The first shape's: the first page, unfiltered.
    let mut first_page: Option<Timings> = None;
    for (name, filter, after) in &shapes {
        let timings = time(|| async {
            store
                .find(filter, after.as_ref(), PAGE)
                .await
                .unwrap()
                .len()
        })
        .await;
        report(name, &timings);
        let p99 = timings.percentile(99.0);
        if worst.is_none_or(|(_, ms)| p99 > ms) {
            worst = Some((name, p99));
        }
        first_page.get_or_insert(timings);
    }
    if let Some((name, p99)) = worst {
        println!("worst p99: {name}, {p99:.2} ms (target: under 100 ms)");
    }
    if let Some(first) = first_page {
        println!(
            "first page / id-order list (the same run): p50 {:.2}, p99 {:.2}",
            first.percentile(50.0) / list.percentile(50.0),
            first.percentile(99.0) / list.percentile(99.0)
        );
    }
}

/// The template every client is copied from: a public client registered
/// for claude.ai.
fn template(now: i64) -> RegisteredClient {
    let document: MetadataDocument = serde_json::from_value(json!({
        "client_name": "Claude",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }))
    .unwrap();
    RegisteredClient {
        client_id: ClientId::new("template"),
        metadata: Arc::new(ClientMetadata::validate(document, RedirectRules::default()).unwrap()),
        issued_at: now - 100 * DAY,
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

/// Writes `clients` clients, their redirect hosts, uses and documents'
/// mappings straight into the file; the registration time and id of the
/// client half way down the listing.
async fn populate(url: &str, clients: i64, now: i64, template: &str) -> PageAfter {
    // One connection: the generated traits are in a table of its own.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    // Each client's traits, from two hashes of its number.
    sqlx::query(
        "CREATE TEMP TABLE generated AS \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1), \
         hashed AS (SELECT i, (i * 2654435761) % 4294967296 AS a, \
                    (i * 40503 + 12345) % 1000 AS s FROM n), \
         classed AS (SELECT i, a, s, a % 100 AS r, (a / 100) % 5000 AS t, \
                     (a / 500000) % 100 AS u FROM hashed), \
         traits AS (SELECT i, a, s, r, u, \
           CASE WHEN r < 35 THEN 'claude.ai' WHEN r < 55 THEN 'cursor' \
                WHEN r < 65 THEN 'vscode' WHEN r < 70 THEN 'windsurf' \
                WHEN r < 85 THEN 'tool-' || t END AS software_id, \
           CASE WHEN r < 35 THEN 'Claude' WHEN r < 55 THEN 'Cursor' \
                WHEN r < 65 THEN 'Visual Studio Code' WHEN r < 70 THEN 'Windsurf' \
                WHEN r < 85 THEN 'Tool ' || t WHEN r < 90 THEN 'MCP Inspector' \
                WHEN r < 95 THEN 'Client ' || i END AS name, \
           CASE WHEN r < 35 THEN 'https://claude.ai/api/mcp/auth_callback' \
                WHEN r < 55 THEN 'http://127.0.0.1:' || (40000 + t) || '/callback' \
                WHEN r < 65 THEN 'http://127.0.0.1:33418/' \
                WHEN r < 70 THEN 'http://localhost:' || (40000 + t) || '/callback' \
                WHEN r < 85 THEN 'https://app' || t || '.example.com/oauth/callback' \
                WHEN r < 90 THEN 'http://localhost:6274/oauth/callback' \
                WHEN r < 95 THEN 'https://rare' || (i % 20000) || '.example.net/cb' \
                ELSE 'http://127.0.0.1:8080/cb' END AS uri, \
           CASE WHEN r < 35 THEN 'claude.ai' WHEN r < 55 THEN '127.0.0.1' \
                WHEN r < 65 THEN '127.0.0.1' WHEN r < 70 THEN 'localhost' \
                WHEN r < 85 THEN 'app' || t || '.example.com' WHEN r < 90 THEN 'localhost' \
                WHEN r < 95 THEN 'rare' || (i % 20000) || '.example.net' \
                ELSE '127.0.0.1' END AS host \
           FROM classed) \
         SELECT i, printf('c%08x%07d', a, i) AS client_id, \
           $2 - 90 * 86400 + (i * 90 * 86400) / $1 AS issued_at, software_id, name, \
           CASE WHEN r >= 55 AND r < 65 THEN json_array(uri, 'https://vscode.dev/redirect') \
                ELSE json_array(uri) END AS uris, \
           host, CASE WHEN r >= 55 AND r < 65 THEN 'vscode.dev' END AS host2, \
           CASE WHEN s < 5 THEN 'pending' WHEN s < 10 THEN 'deleting' ELSE 'active' END \
             AS state, \
           u < 40 AS used, i % 200 = 7 AS document \
         FROM traits",
    )
    .bind(clients)
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    // The template's metadata with this client's name, software and
    // redirect URIs (a null member of the patch removes the template's).
    sqlx::query(&format!(
        "INSERT INTO clients (client_id, state, metadata, client_id_issued_at, updated_at, \
           software_id, client_name_key, {COPIED}) \
         SELECT g.client_id, g.state, \
           json_patch(t.metadata, json_object('client_name', g.name, \
             'software_id', g.software_id, 'redirect_uris', json(g.uris))), \
           g.issued_at, g.issued_at, g.software_id, lower(g.name), {copied} \
         FROM generated g, clients t WHERE t.client_id = $1 ORDER BY g.i",
        copied = COPIED
            .split(',')
            .map(|c| format!("t.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(template)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO client_redirect_hosts \
           (host, client_id_issued_at, client_id, software_id, client_name_key) \
         SELECT host, issued_at, client_id, software_id, lower(name) FROM generated \
         UNION ALL SELECT host2, issued_at, client_id, software_id, lower(name) \
         FROM generated WHERE host2 IS NOT NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    // A use at some time between the registration and now.
    sqlx::query(
        "INSERT INTO client_usage (client_id, last_used_at) \
         SELECT client_id, issued_at + (i * 7919) % ($1 - issued_at + 1) FROM generated \
         WHERE used",
    )
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO front_cimd_clients \
           (url, host, client_id, document_hash, fresh_until, last_used) \
         SELECT 'https://cimd' || i || '.example/client.json', 'cimd' || i || '.example', \
           client_id, zeroblob(32), $1, $1 FROM generated WHERE document",
    )
    .bind(now + DAY)
    .execute(&pool)
    .await
    .unwrap();
    let (issued_at, client_id): (i64, String) = sqlx::query_as(
        "SELECT client_id_issued_at, client_id FROM clients \
         ORDER BY client_id_issued_at DESC, client_id DESC LIMIT 1 OFFSET $1",
    )
    .bind(clients / 2)
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("DROP TABLE generated")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    PageAfter {
        issued_at,
        client_id: ClientId::new(client_id),
    }
}

/// Call times in milliseconds, and the rows the last call answered.
struct Timings {
    sorted: Vec<f64>,
    rows: usize,
}

impl Timings {
    fn percentile(&self, p: f64) -> f64 {
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }
}

/// Times `call`, [`CALLS`] times after [`WARM_UP`].
async fn time<F, Fut>(call: F) -> Timings
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut rows = 0;
    for _ in 0..WARM_UP {
        rows = call().await;
    }
    let mut sorted = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        rows = call().await;
        sorted.push(millis(started.elapsed()));
    }
    sorted.sort_by(f64::total_cmp);
    Timings { sorted, rows }
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

fn report(name: &str, timings: &Timings) {
    println!(
        "{name:<36} {:>5} {:>8.2} {:>8.2} {:>8.2}",
        timings.rows,
        timings.percentile(50.0),
        timings.percentile(99.0),
        timings.sorted.last().copied().unwrap_or_default()
    );
}
