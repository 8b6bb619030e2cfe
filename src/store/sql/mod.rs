//! The SQL store: one implementation for SQLite (the embedded default) and
//! PostgreSQL (several instances on one database), through sqlx's `Any`
//! driver. Every query is written once with `$n` placeholders, which both
//! databases accept; each database has its own migrations.
//!
//! SQLite runs in WAL mode with `synchronous = FULL`, so a write that returned
//! survives a crash of the process or of the machine.
//!
//! Here: opening the database and sealing provider state. Beside it: the
//! [`ClientStore`](super::ClientStore) methods (`client_store`), the rows
//! they read and write (`rows`), the console's directory of clients
//! (`directory`), the group-commit writer
//! (`writer`), the group commit of refresh-token rotations on SQLite
//! (`rotations`) and the feed of other processes' changes (`changes`).

use std::path::Path;
use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, FromRow};
use tokio::sync::mpsc;

use super::StoreError;
use super::sealing::Sealer;
use crate::clock::Clock;
use crate::domain::{ProviderState, RegisteredClient};
use rotations::Rotations;
use rows::ClientRow;
use writer::{MAX_BATCH, PendingWrite, write_batches};

mod activity;
mod changes;
mod client_store;
mod directory;
mod front;
mod operators;
mod refresh;
mod rotations;
mod rows;
mod signing_keys;
mod usage;
mod writer;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH`.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

impl Backend {
    /// The backend of a store URL, if it is one the gateway supports.
    #[must_use]
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// How long a write must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Through a crash of the machine: clients, tokens, mappings.
    Full,
    /// Through a crash of the process, not necessarily of the machine:
    /// the front's transactions, which live minutes (a login lost to a
    /// power cut is started again), written without waiting for the disk.
    Transient,
}

/// Sets up a new connection: on SQLite, WAL with full syncs (normal ones
/// for transient state), and statement journals kept in memory, not in
/// temporary files; on PostgreSQL, commits of transient state that do not
/// wait for the WAL flush.
async fn prepare(
    connection: &mut AnyConnection,
    backend: Backend,
    durability: Durability,
) -> Result<(), sqlx::Error> {
    match (backend, durability) {
        (Backend::Sqlite, _) => {
            let synchronous = match durability {
                Durability::Full => "PRAGMA synchronous = FULL",
                Durability::Transient => "PRAGMA synchronous = NORMAL",
            };
            // busy_timeout first, so that the others wait for locks.
            for pragma in [
                "PRAGMA busy_timeout = 5000",
                "PRAGMA journal_mode = WAL",
                synchronous,
                "PRAGMA temp_store = MEMORY",
            ] {
                connection.execute(pragma).await?;
            }
        }
        (Backend::Postgres, Durability::Transient) => {
            connection.execute("SET synchronous_commit = off").await?;
        }
        (Backend::Postgres, Durability::Full) => {}
    }
    Ok(())
}

/// Opens the group-commit writer's own connection, outside the pool: its
/// page cache then stays warm from one commit to the next (a pooled one
/// would often come after another connection's write, and re-read).
struct Connector {
    url: String,
    backend: Backend,
}

impl Connector {
    /// The connection in `slot` if it still answers, else a new one.
    async fn ready<'a>(
        &self,
        slot: &'a mut Option<AnyConnection>,
    ) -> Result<&'a mut AnyConnection, sqlx::Error> {
        if let Some(mut open) = slot.take() {
            if open.ping().await.is_ok() {
                return Ok(slot.insert(open));
            }
        }
        let mut fresh = AnyConnection::connect(&self.url).await?;
        prepare(&mut fresh, self.backend, Durability::Full).await?;
        Ok(slot.insert(fresh))
    }
}

/// The SQL implementation of [`ClientStore`](super::ClientStore).
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// Connections for state that lives minutes (the front's
    /// transactions), written with [`Durability::Transient`].
    transient: AnyPool,
    /// On SQLite, where rotations of refresh tokens share one connection,
    /// the task that applies them in batches.
    rotations: Option<Rotations>,
    writes: mpsc::Sender<PendingWrite>,
    backend: Backend,
    url: String,
    clock: Arc<dyn Clock>,
    sealer: Option<Sealer>,
}

impl SqlStore {
    /// Connects to (creating, for SQLite) the database at `url` and applies
    /// the embedded migrations. Provider state is sealed with `sealer`.
    pub async fn open(
        url: &str,
        max_connections: u32,
        clock: Arc<dyn Clock>,
        sealer: Option<Sealer>,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)
            .ok_or_else(|| StoreError::Open(format!("unsupported store URL `{url}`")))?;
        let connect_url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |connection, _| {
                Box::pin(prepare(connection, backend, Durability::Full))
            })
            .connect(&connect_url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        let (writes, queue) = mpsc::channel(MAX_BATCH * 4);
        let connector = Connector {
            url: connect_url.clone(),
            backend,
        };
        tokio::spawn(write_batches(connector, queue));
        // On SQLite one connection: its writes queue here, in order, rather
        // than in SQLite's busy handler, which sleeps up to 100 ms a turn.
        let transient_connections = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => max_connections.div_ceil(2),
        };
        let transient = AnyPoolOptions::new()
            .max_connections(transient_connections)
            .after_connect(move |connection, _| {
                Box::pin(prepare(connection, backend, Durability::Transient))
            })
            .connect_lazy(&connect_url)?;
        let rotations = match backend {
            Backend::Sqlite => Some(Rotations::start(transient.clone())),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            transient,
            rotations,
            writes,
            backend,
            url: url.to_owned(),
            clock,
            sealer,
        })
    }

    /// The database this store writes to.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn seal(&self, client: &RegisteredClient) -> Result<Option<Vec<u8>>, StoreError> {
        client
            .provider_state
            .as_ref()
            .map(|state| self.seal_state(client.client_id.as_str(), state))
            .transpose()
    }

    /// Provider state sealed for the row of client `id` (the id is bound
    /// into the seal).
    fn seal_state(&self, id: &str, state: &ProviderState) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(&state.0).map_err(|e| sealing(id, e))?;
        self.sealer(id)?
            .seal(&plain, id)
            .map_err(|e| sealing(id, e))
    }

    fn unseal(
        &self,
        client_id: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<ProviderState>, StoreError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let plain = self
            .sealer(client_id)?
            .open(&sealed, client_id)
            .map_err(|e| sealing(client_id, e))?;
        serde_json::from_slice(&plain)
            .map(|value| Some(ProviderState(value)))
            .map_err(|e| sealing(client_id, e))
    }

    /// The configured sealer; a client with provider state needs one.
    fn sealer(&self, client_id: &str) -> Result<&Sealer, StoreError> {
        self.sealer
            .as_ref()
            .ok_or_else(|| sealing(client_id, "no store.encryption_key is configured"))
    }

    /// Runs a query that selects [`rows::COLUMNS`] and reads every row.
    async fn fetch_clients<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| self.read_row(row))
            .collect()
    }

    /// The client a row holds, its provider state unsealed.
    fn read_row(&self, row: &AnyRow) -> Result<RegisteredClient, StoreError> {
        let (mut client, sealed) = ClientRow::from_row(row)?.decode()?;
        client.provider_state = self.unseal(client.client_id.as_str(), sealed)?;
        Ok(client)
    }
}

/// Takes, in `transaction`, a lock that serializes writers of `table`
/// until it ends: on PostgreSQL an advisory lock named after the table, on
/// SQLite the database's write lock (by a write that changes nothing), so
/// that what the transaction reads next is what its writes are made
/// against.
async fn lock_table(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    table: &str,
) -> Result<(), StoreError> {
    match backend {
        Backend::Postgres => {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text AS locked")
                .bind(table.to_owned())
                .fetch_one(&mut **transaction)
                .await?;
        }
        Backend::Sqlite => {
            sqlx::query(&format!("DELETE FROM {table} WHERE 0 = 1"))
                .execute(&mut **transaction)
                .await?;
        }
    }
    Ok(())
}

/// A count as an SQL `BIGINT`, saturating.
fn as_bigint(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn sealing(client_id: &str, reason: impl ToString) -> StoreError {
    StoreError::Sealing {
        client_id: client_id.to_owned(),
        reason: reason.to_string(),
    }
}

/// `sqlite://PATH` with the directory created and `mode=rwc`, so the file is
/// created on first start.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Open(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Clients counted against their software's cap: pending ones too, since
/// each may become active.
const SOFTWARE_COUNT: &str = "SELECT COUNT(*) AS n FROM clients \
                              WHERE software_id = $1 AND state IN ('pending', 'active')";
