//! Changes other processes make to clients, so that this instance's cache
//! follows them: PostgreSQL notifications, or SQLite's change log, polled.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{AnyPool, Row};

use super::{Backend, SqlStore};
use crate::domain::ClientId;
use crate::store::{Change, ChangeFeed, StoreError};

/// The channel PostgreSQL notifies on when a client changes (see migrations).
const NOTIFY_CHANNEL: &str = "dcr_gateway_clients";
/// How often the SQLite change log is polled: the longest a change made by
/// another process (another instance, the CLI) waits to reach this cache.
const CHANGE_POLL: Duration = Duration::from_millis(100);
/// Change log rows kept behind the newest one.
const CHANGE_LOG_KEEP: i64 = 10_000;

impl SqlStore {
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
