//! The SQL store: one implementation for SQLite (the embedded default) and
//! PostgreSQL (several instances on one database), through sqlx's `Any`
//! driver. Every query is written once with `$n` placeholders, which both
//! databases accept; each database has its own migrations.
//!
//! SQLite runs in WAL mode with `synchronous = FULL`, so a write that returned
//! survives a crash of the process or of the machine.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::postgres::PgListener;
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{mpsc, oneshot};

use super::sealing::Sealer;
use super::{Change, ChangeFeed, ClientStore, StoreError};
use crate::clock::Clock;
use crate::domain::{
    ClientId, ClientMetadata, ClientState, InitialAccessTokenRecord, MetadataDocument,
    ProviderState, RegisteredClient, SecretHash, VouchedClaims,
};

/// The channel PostgreSQL notifies on when a client changes (see migrations).
const NOTIFY_CHANNEL: &str = "dcr_gateway_clients";
/// How often the SQLite change log is polled: the longest a change made by
/// another process (another instance, the CLI) waits to reach this cache.
const CHANGE_POLL: Duration = Duration::from_millis(100);
/// Change log rows kept behind the newest one.
const CHANGE_LOG_KEEP: i64 = 10_000;

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

/// The SQL implementation of [`ClientStore`].
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    inserts: mpsc::Sender<PendingInsert>,
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
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // busy_timeout first, so that the others wait for locks.
                        for pragma in [
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                        ] {
                            connection.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        let (inserts, queue) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(write_inserts(pool.clone(), backend, queue));
        Ok(Self {
            pool,
            inserts,
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

    /// Changes other processes make to clients: PostgreSQL notifications, or
    /// the SQLite change log, polled.
    pub async fn change_feed(&self) -> Result<Box<dyn ChangeFeed>, StoreError> {
        match self.backend {
            Backend::Postgres => {
                let mut listener = PgListener::connect(&self.url).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                Ok(Box::new(PgChanges {
                    listener,
                    failed: false,
                }))
            }
            Backend::Sqlite => {
                let last: Option<i64> = sqlx::query("SELECT MAX(seq) AS seq FROM client_changes")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("seq")?;
                Ok(Box::new(SqliteChangeLog {
                    pool: self.pool.clone(),
                    last_seq: last.unwrap_or(0),
                    queued: VecDeque::new(),
                    failed: false,
                }))
            }
        }
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

    /// Runs a query that selects [`COLUMNS`] and reads every row.
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

    fn read_row(&self, row: &AnyRow) -> Result<RegisteredClient, StoreError> {
        let mut client = decode_row(row)?;
        client.provider_state =
            self.unseal(client.client_id.as_str(), row.try_get("provider_state")?)?;
        Ok(client)
    }
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

/// The columns every insert writes.
const INSERT_COLUMNS: &str = "client_id, state, metadata, registration_token_hash, \
                              client_secret_hash, client_secret_expires_at, client_id_issued_at, \
                              provider_state, policy, software_id, expires_at, \
                              initial_access_token_id, vouched";

/// The columns a client is read from.
const COLUMNS: &str = "client_id, state, metadata, registration_token_hash, client_secret_hash, \
                       client_secret_expires_at, client_id_issued_at, provider_state, policy, \
                       software_id, expires_at, initial_access_token_id, revision, lease_until, \
                       vouched";

const TOKEN_COLUMNS: &str =
    "id, token_hash, uses_left, expires_at, policy, note, created_at, revoked";

fn metadata_json(client: &RegisteredClient) -> Result<String, StoreError> {
    crate::json::exact_string(&client.metadata.to_document()).map_err(|e| StoreError::Corrupt {
        client_id: client.client_id.to_string(),
        reason: e.to_string(),
    })
}

fn vouched_json(client: &RegisteredClient) -> Result<Option<String>, StoreError> {
    client
        .vouched
        .as_ref()
        .map(|claims| serde_json::to_string(&claims.0))
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            client_id: client.client_id.to_string(),
            reason: e.to_string(),
        })
}

fn decode_row(row: &AnyRow) -> Result<RegisteredClient, StoreError> {
    let client_id: String = row.try_get("client_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        client_id: client_id.clone(),
        reason,
    };
    let state: String = row.try_get("state")?;
    let state = ClientState::parse(&state).ok_or_else(|| corrupt(format!("state `{state}`")))?;
    let metadata: String = row.try_get("metadata")?;
    let document: MetadataDocument =
        serde_json::from_str(&metadata).map_err(|e| corrupt(e.to_string()))?;
    let metadata = ClientMetadata::from_stored(document).map_err(|e| corrupt(e.to_string()))?;
    let token: Vec<u8> = row.try_get("registration_token_hash")?;
    let registration_token =
        SecretHash::from_bytes(&token).ok_or_else(|| corrupt("token hash length".into()))?;
    let secret: Option<Vec<u8>> = row.try_get("client_secret_hash")?;
    let client_secret = secret
        .map(|s| SecretHash::from_bytes(&s).ok_or_else(|| corrupt("secret hash length".into())))
        .transpose()?;
    Ok(RegisteredClient {
        client_id: ClientId::new(client_id.clone()),
        metadata,
        issued_at: row.try_get("client_id_issued_at")?,
        registration_token,
        client_secret,
        client_secret_expires_at: row.try_get("client_secret_expires_at")?,
        state,
        provider_state: None,
        policy: row
            .try_get::<Option<String>, _>("policy")?
            .unwrap_or_else(|| "default".to_owned()),
        expires_at: row.try_get("expires_at")?,
        initial_access_token_id: row.try_get("initial_access_token_id")?,
        revision: row.try_get("revision")?,
        lease_until: row.try_get("lease_until")?,
        vouched: row
            .try_get::<Option<String>, _>("vouched")?
            .map(|text| serde_json::from_str(&text).map(VouchedClaims))
            .transpose()
            .map_err(|e| corrupt(format!("vouched claims: {e}")))?,
    })
}

fn decode_token(row: &AnyRow) -> Result<InitialAccessTokenRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let hash: Vec<u8> = row.try_get("token_hash")?;
    let hash = SecretHash::from_bytes(&hash).ok_or_else(|| StoreError::Corrupt {
        client_id: format!("initial access token {id}"),
        reason: "token hash length".into(),
    })?;
    Ok(InitialAccessTokenRecord {
        id,
        hash,
        uses_left: row.try_get("uses_left")?,
        expires_at: row.try_get("expires_at")?,
        policy: row.try_get("policy")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
    })
}

/// Whether one row was affected, with a unique-key clash as [`StoreError::Duplicate`].
fn unique_violation(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    id: &ClientId,
) -> Result<bool, StoreError> {
    match result {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Duplicate(id.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Clients counted against their software's cap: pending ones too, since
/// each may become active.
const SOFTWARE_COUNT: &str = "SELECT COUNT(*) AS n FROM clients \
                              WHERE software_id = $1 AND state IN ('pending', 'active')";

/// Most inserts committed in one transaction.
const MAX_BATCH: usize = 256;

/// A client row to insert, owned, for the writer task.
struct NewRow {
    client_id: String,
    state: &'static str,
    metadata: String,
    registration_token: Vec<u8>,
    client_secret: Option<Vec<u8>>,
    client_secret_expires_at: i64,
    issued_at: i64,
    provider_state: Option<Vec<u8>>,
    policy: String,
    software_id: Option<String>,
    expires_at: Option<i64>,
    initial_access_token_id: Option<String>,
    vouched: Option<String>,
    updated_at: i64,
    /// Most clients its software may have (pending and active), if capped.
    software_limit: Option<i64>,
}

/// What became of one insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inserted {
    New,
    /// The id was taken.
    Duplicate,
    /// Its software already had as many clients as allowed.
    SoftwareFull,
}

/// An insert waiting for the writer.
struct PendingInsert {
    row: NewRow,
    reply: oneshot::Sender<Result<Inserted, String>>,
}

/// The group-commit writer: takes every insert waiting, writes them in one
/// transaction, and answers each once the commit is durable.
async fn write_inserts(pool: AnyPool, backend: Backend, mut queue: mpsc::Receiver<PendingInsert>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match commit(&pool, backend, &batch).await {
            Ok(inserted) => {
                for (pending, inserted) in batch.into_iter().zip(inserted) {
                    let _ = pending.reply.send(Ok(inserted));
                }
            }
            Err(error) => {
                let reason = error.to_string();
                for pending in batch {
                    let _ = pending.reply.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// Inserts the batch in one transaction; per row, what became of it. A row
/// whose software is capped is counted first, in the same transaction
/// (under an advisory lock on PostgreSQL, where other instances write too),
/// so the cap holds exactly however many registrations race.
async fn commit(
    pool: &AnyPool,
    backend: Backend,
    batch: &[PendingInsert],
) -> Result<Vec<Inserted>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO clients ({INSERT_COLUMNS}, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (client_id) DO NOTHING"
    );
    let mut transaction = pool.begin().await?;
    let mut inserted = Vec::with_capacity(batch.len());
    for PendingInsert { row, .. } in batch {
        if let (Some(limit), Some(software_id)) = (row.software_limit, &row.software_id) {
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text AS locked")
                    .bind(software_id.as_str())
                    .fetch_one(&mut *transaction)
                    .await?;
            }
            let count: i64 = sqlx::query(SOFTWARE_COUNT)
                .bind(software_id.as_str())
                .fetch_one(&mut *transaction)
                .await?
                .try_get("n")?;
            if count >= limit {
                inserted.push(Inserted::SoftwareFull);
                continue;
            }
        }
        let done = sqlx::query(&sql)
            .bind(row.client_id.as_str())
            .bind(row.state)
            .bind(row.metadata.as_str())
            .bind(row.registration_token.as_slice())
            .bind(row.client_secret.as_deref())
            .bind(row.client_secret_expires_at)
            .bind(row.issued_at)
            .bind(row.provider_state.as_deref())
            .bind(row.policy.as_str())
            .bind(row.software_id.as_deref())
            .bind(row.expires_at)
            .bind(row.initial_access_token_id.as_deref())
            .bind(row.vouched.as_deref())
            .bind(row.updated_at)
            .execute(&mut *transaction)
            .await?;
        inserted.push(if done.rows_affected() == 1 {
            Inserted::New
        } else {
            Inserted::Duplicate
        });
    }
    transaction.commit().await?;
    Ok(inserted)
}

/// PostgreSQL notifications of changed clients.
struct PgChanges {
    listener: PgListener,
    /// The last call failed: notifications may have been missed since.
    failed: bool,
}

impl PgChanges {
    async fn receive(&mut self) -> Result<Change, StoreError> {
        if self.failed {
            // Listen again on a live connection (the listener reconnects)
            // before saying that everything may have changed meanwhile.
            self.listener.unlisten(NOTIFY_CHANNEL).await?;
            self.listener.listen(NOTIFY_CHANNEL).await?;
            return Ok(Change::Everything);
        }
        match self.listener.try_recv().await? {
            Some(notification) => Ok(Change::Client(ClientId::new(notification.payload()))),
            // The connection was lost (and is re-established on the next
            // call): notifications may have been missed.
            None => Ok(Change::Everything),
        }
    }
}

#[async_trait]
impl ChangeFeed for PgChanges {
    async fn next(&mut self) -> Result<Change, StoreError> {
        let change = self.receive().await;
        self.failed = change.is_err();
        change
    }
}

/// The SQLite change log, read from where this process last stopped.
struct SqliteChangeLog {
    pool: AnyPool,
    last_seq: i64,
    queued: VecDeque<ClientId>,
    /// The last poll failed: the next good one answers `Everything`.
    failed: bool,
}

impl SqliteChangeLog {
    /// Queues the changes after `last_seq` and trims the log.
    async fn poll(&mut self) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT seq, client_id FROM client_changes WHERE seq > $1 ORDER BY seq LIMIT 1000",
        )
        .bind(self.last_seq)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            self.last_seq = row.try_get("seq")?;
            self.queued
                .push_back(ClientId::new(row.try_get::<String, _>("client_id")?));
        }
        if !rows.is_empty() {
            sqlx::query("DELETE FROM client_changes WHERE seq <= $1")
                .bind(self.last_seq - CHANGE_LOG_KEEP)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ChangeFeed for SqliteChangeLog {
    async fn next(&mut self) -> Result<Change, StoreError> {
        loop {
            if let Some(id) = self.queued.pop_front() {
                return Ok(Change::Client(id));
            }
            tokio::time::sleep(CHANGE_POLL).await;
            let polled = self.poll().await;
            let recovered = self.failed && polled.is_ok();
            self.failed = polled.is_err();
            polled?;
            if recovered {
                // Forgetting everything covers whatever was queued.
                self.queued.clear();
                return Ok(Change::Everything);
            }
        }
    }
}

#[async_trait]
impl ClientStore for SqlStore {
    /// Inserts go through the group-commit writer: concurrent inserts share
    /// one transaction, so one durable commit serves many registrations.
    async fn insert(
        &self,
        client: &RegisteredClient,
        software_limit: Option<u64>,
    ) -> Result<(), StoreError> {
        let row = NewRow {
            client_id: client.client_id.to_string(),
            state: client.state.as_str(),
            metadata: metadata_json(client)?,
            registration_token: client.registration_token.as_bytes().to_vec(),
            client_secret: client.client_secret.as_ref().map(|h| h.as_bytes().to_vec()),
            client_secret_expires_at: client.client_secret_expires_at,
            issued_at: client.issued_at,
            provider_state: self.seal(client)?,
            policy: client.policy.clone(),
            software_id: client.counted_software_id().map(str::to_owned),
            expires_at: client.expires_at,
            initial_access_token_id: client.initial_access_token_id.clone(),
            vouched: vouched_json(client)?,
            updated_at: self.clock.now_unix(),
            software_limit: software_limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        };
        let (reply, answer) = oneshot::channel();
        self.inserts
            .send(PendingInsert { row, reply })
            .await
            .map_err(|_| StoreError::Write("the insert writer has stopped".into()))?;
        match answer.await {
            Ok(Ok(Inserted::New)) => Ok(()),
            Ok(Ok(Inserted::Duplicate)) => Err(StoreError::Duplicate(client.client_id.clone())),
            Ok(Ok(Inserted::SoftwareFull)) => Err(StoreError::SoftwareFull(
                client.counted_software_id().unwrap_or_default().to_owned(),
            )),
            Ok(Err(reason)) => Err(StoreError::Write(reason)),
            Err(_) => Err(StoreError::Write(
                "the insert writer dropped the request".into(),
            )),
        }
    }

    async fn get(&self, id: &ClientId) -> Result<Option<RegisteredClient>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| self.read_row(row))
        .transpose()
    }

    async fn activate(
        &self,
        pending_id: &ClientId,
        client: &RegisteredClient,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET client_id = $1, state = 'active', client_secret_hash = $2, \
             client_secret_expires_at = $3, provider_state = $4, updated_at = $5 \
             WHERE client_id = $6 AND state = 'pending'",
        )
        .bind(client.client_id.as_str())
        .bind(client.client_secret.as_ref().map(SecretHash::as_bytes))
        .bind(client.client_secret_expires_at)
        .bind(self.seal(client)?)
        .bind(self.clock.now_unix())
        .bind(pending_id.as_str())
        .execute(&self.pool)
        .await;
        unique_violation(result, &client.client_id)
    }

    async fn claim_pending(
        &self,
        pending_id: &ClientId,
        provider_id: &ClientId,
        state: &ProviderState,
    ) -> Result<bool, StoreError> {
        let sealed = self.seal_state(provider_id.as_str(), state)?;
        let result = sqlx::query(
            "UPDATE clients SET client_id = $1, provider_state = $2, updated_at = $3 \
             WHERE client_id = $4 AND state = 'pending'",
        )
        .bind(provider_id.as_str())
        .bind(sealed)
        .bind(self.clock.now_unix())
        .bind(pending_id.as_str())
        .execute(&self.pool)
        .await;
        match unique_violation(result, provider_id) {
            Err(StoreError::Duplicate(_)) => Ok(false),
            other => other,
        }
    }

    async fn lease(
        &self,
        id: &ClientId,
        revision: i64,
        now: i64,
        until: i64,
    ) -> Result<Option<i64>, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET lease_until = $1, revision = revision + 1, updated_at = $2 \
             WHERE client_id = $3 AND state = 'active' AND revision = $4 \
             AND (lease_until IS NULL OR lease_until <= $2)",
        )
        .bind(until)
        .bind(now)
        .bind(id.as_str())
        .bind(revision)
        .execute(&self.pool)
        .await?;
        Ok((result.rows_affected() == 1).then_some(revision + 1))
    }

    async fn release(&self, id: &ClientId, revision: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET lease_until = NULL, revision = revision + 1, updated_at = $1 \
             WHERE client_id = $2 AND revision = $3",
        )
        .bind(self.clock.now_unix())
        .bind(id.as_str())
        .bind(revision)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn update(&self, client: &RegisteredClient) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET metadata = $1, registration_token_hash = $2, \
             client_secret_hash = $3, client_secret_expires_at = $4, provider_state = $5, \
             software_id = $6, updated_at = $7, lease_until = NULL, revision = revision + 1, \
             vouched = $10 WHERE client_id = $8 AND state = 'active' AND revision = $9",
        )
        .bind(metadata_json(client)?)
        .bind(client.registration_token.as_bytes())
        .bind(client.client_secret.as_ref().map(SecretHash::as_bytes))
        .bind(client.client_secret_expires_at)
        .bind(self.seal(client)?)
        .bind(client.counted_software_id())
        .bind(self.clock.now_unix())
        .bind(client.client_id.as_str())
        .bind(client.revision)
        .bind(vouched_json(client)?)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn begin_delete(&self, id: &ClientId, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET state = 'deleting', revision = revision + 1, updated_at = $1 \
             WHERE client_id = $2 AND state = 'active' \
             AND (lease_until IS NULL OR lease_until <= $1)",
        )
        .bind(now)
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn set_state(&self, id: &ClientId, state: ClientState) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET state = $1, revision = revision + 1, updated_at = $2 \
             WHERE client_id = $3",
        )
        .bind(state.as_str())
        .bind(self.clock.now_unix())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn list(
        &self,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id > $1 ORDER BY client_id LIMIT $2"
        );
        self.fetch_clients(
            sqlx::query(&sql)
                .bind(after.map_or("", ClientId::as_str))
                .bind(i64::from(limit)),
        )
        .await
    }

    async fn list_stale(
        &self,
        state: ClientState,
        updated_before: i64,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE state = $1 AND updated_at <= $2 \
             ORDER BY updated_at LIMIT $3"
        );
        self.fetch_clients(
            sqlx::query(&sql)
                .bind(state.as_str())
                .bind(updated_before)
                .bind(i64::from(limit)),
        )
        .await
    }

    async fn list_lapsed_leases(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE state = 'active' AND lease_until <= $1 \
             ORDER BY lease_until LIMIT $2"
        );
        self.fetch_clients(sqlx::query(&sql).bind(now).bind(i64::from(limit)))
            .await
    }

    async fn count_software(&self, software_id: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query(SOFTWARE_COUNT)
            .bind(software_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn list_expired(
        &self,
        now: i64,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE state = 'active' AND expires_at <= $1 \
             AND client_id > $2 ORDER BY client_id LIMIT $3"
        );
        self.fetch_clients(
            sqlx::query(&sql)
                .bind(now)
                .bind(after.map_or("", ClientId::as_str))
                .bind(i64::from(limit)),
        )
        .await
    }

    async fn insert_initial_access_token(
        &self,
        token: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO initial_access_tokens ({TOKEN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(token.id.as_str())
        .bind(token.hash.as_bytes())
        .bind(token.uses_left)
        .bind(token.expires_at)
        .bind(token.policy.as_deref())
        .bind(token.note.as_deref())
        .bind(token.created_at)
        .bind(i64::from(token.revoked))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_initial_access_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM initial_access_tokens WHERE token_hash = $1"
        ))
        .bind(hash.as_bytes())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(decode_token)
        .transpose()
    }

    async fn spend_initial_access_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        // One conditional UPDATE: the database serializes concurrent spenders.
        let result = sqlx::query(
            "UPDATE initial_access_tokens SET uses_left = uses_left - 1 \
             WHERE id = $1 AND revoked = 0 AND (expires_at IS NULL OR expires_at > $2) \
             AND (uses_left IS NULL OR uses_left > 0)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn refund_initial_access_token(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE initial_access_tokens SET uses_left = uses_left + 1 \
             WHERE id = $1 AND uses_left IS NOT NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM initial_access_tokens ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode_token)
        .collect()
    }

    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE initial_access_tokens SET revoked = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
