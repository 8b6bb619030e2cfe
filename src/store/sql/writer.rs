//! The group-commit writer: concurrent writes (inserts, replaces, deletes,
//! state changes) share one transaction, so one durable commit serves many
//! requests, and each is answered only once that commit is durable.

use std::collections::HashSet;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::rows::{HOST_COLUMNS, INSERT_COLUMNS, NewRow};
use super::{Backend, Connector, SOFTWARE_COUNT};

/// Most writes committed in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// One write for the writer.
pub(super) enum Write {
    /// A new client row.
    Insert(Box<NewRow>),
    /// A statement on existing rows. It must not be able to break a
    /// constraint: on PostgreSQL a failed statement aborts the transaction,
    /// and with it every other write of the batch.
    Statement(Statement),
}

/// A statement with its values, owned, so that it can wait in the queue,
/// and the statements that complete its change, run after it when it
/// changed a row.
pub(super) struct Statement {
    sql: &'static str,
    values: Vec<Value>,
    then: Vec<Statement>,
}

/// One bound value of a [`Statement`].
enum Value {
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Integer(Option<i64>),
}

impl Statement {
    /// `sql`, with `$n` placeholders bound in order by the methods below.
    pub(super) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            values: Vec::new(),
            then: Vec::new(),
        }
    }

    /// Runs `next` after this statement, in its transaction, when this one
    /// changed a row (as the rows of another table that follow a client's
    /// metadata).
    pub(super) fn then(mut self, next: Statement) -> Self {
        self.then.push(next);
        self
    }

    /// Binds text (or NULL).
    pub(super) fn text(mut self, value: Option<impl Into<String>>) -> Self {
        self.values.push(Value::Text(value.map(Into::into)));
        self
    }

    /// Binds bytes (or NULL).
    pub(super) fn bytes(mut self, value: Option<impl Into<Vec<u8>>>) -> Self {
        self.values.push(Value::Bytes(value.map(Into::into)));
        self
    }

    /// Binds an integer (or NULL).
    pub(super) fn integer(mut self, value: Option<i64>) -> Self {
        self.values.push(Value::Integer(value));
        self
    }

    /// Runs the statement, then, if it changed a row, those that complete
    /// it; how many rows the statement itself changed.
    async fn execute(&self, connection: &mut sqlx::AnyConnection) -> Result<u64, sqlx::Error> {
        let changed = self.execute_alone(&mut *connection).await?;
        if changed > 0 {
            for next in &self.then {
                next.execute_alone(&mut *connection).await?;
            }
        }
        Ok(changed)
    }

    async fn execute_alone(
        &self,
        connection: &mut sqlx::AnyConnection,
    ) -> Result<u64, sqlx::Error> {
        let mut query = sqlx::query(self.sql);
        for value in &self.values {
            query = match value {
                Value::Text(text) => query.bind(text.clone()),
                Value::Bytes(bytes) => query.bind(bytes.clone()),
                Value::Integer(integer) => query.bind(*integer),
            };
        }
        Ok(query.execute(connection).await?.rows_affected())
    }
}

/// What became of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// The insert was written.
    Inserted,
    /// The insert's id was taken.
    Duplicate,
    /// The insert's software already had as many clients as allowed.
    SoftwareFull,
    /// The statement changed this many rows.
    Rows(u64),
}

/// A write waiting for the writer.
pub(super) struct PendingWrite {
    /// The write.
    pub(super) write: Write,
    /// Where to answer, once the commit is durable.
    pub(super) reply: oneshot::Sender<Result<Written, String>>,
}

/// The group-commit writer: takes every write waiting, runs them in order in
/// one transaction, and answers each once the commit is durable.
pub(super) async fn write_batches(connector: Connector, mut queue: mpsc::Receiver<PendingWrite>) {
    let mut connection = None;
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut attempts = 0;
        let committed = loop {
            attempts += 1;
            let committed = match connector.ready(&mut connection).await {
                Ok(open) => commit(open, connector.backend, &batch).await,
                Err(error) => Err(error),
            };
            if committed.is_err() {
                // Whatever state it was left in, the next attempt starts afresh.
                connection = None;
            }
            match committed {
                // PostgreSQL broke a lock cycle with another instance's
                // writer by aborting this batch: nothing of it was written,
                // so it is run again.
                Err(error) if is_deadlock(&error) && attempts < DEADLOCK_ATTEMPTS => {}
                committed => break committed,
            }
        };
        match committed {
            Ok(written) => {
                for (pending, written) in batch.into_iter().zip(written) {
                    let _ = pending.reply.send(Ok(written));
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

/// Runs the batch in one transaction; per write, what became of it.
///
/// Each run of inserts without a software cap is written in a few
/// multi-row statements, not one statement per row: a statement is a
/// round trip to the database (on SQLite, a hand-off to its thread and
/// back), and under load those hand-offs, not the disk, bounded how many
/// registrations a commit could take.
async fn commit(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    batch: &[PendingWrite],
) -> Result<Vec<Written>, sqlx::Error> {
    let mut transaction = connection.begin().await?;
    if backend == Backend::Postgres {
        lock_capped_software(&mut transaction, batch).await?;
    }
    let mut written = Vec::with_capacity(batch.len());
    let mut rest = batch;
    while let Some((first, after)) = rest.split_first() {
        let uncapped = rest
            .iter()
            .map_while(|pending| match &pending.write {
                Write::Insert(row) if row.software_limit.is_none() => Some(row.as_ref()),
                _ => None,
            })
            .collect::<Vec<_>>();
        if uncapped.is_empty() {
            written.push(match &first.write {
                Write::Insert(row) => insert_capped(&mut transaction, row).await?,
                Write::Statement(statement) => {
                    Written::Rows(statement.execute(&mut transaction).await?)
                }
            });
            rest = after;
            continue;
        }
        let mut rows = uncapped.as_slice();
        while !rows.is_empty() {
            // Statements of power-of-two sizes: few distinct ones to prepare.
            let size = 1 << rows.len().ilog2();
            let (these, others) = rows.split_at(size);
            written.extend(insert_rows(&mut transaction, these).await?);
            rows = others;
        }
        rest = &rest[uncapped.len()..];
    }
    transaction.commit().await?;
    Ok(written)
}

/// How many times a batch is run when PostgreSQL aborts it to break a
/// deadlock.
const DEADLOCK_ATTEMPTS: u32 = 3;

/// Whether `error` is PostgreSQL's `deadlock_detected` (40P01).
fn is_deadlock(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("40P01"))
}

/// On PostgreSQL, where other instances write too: takes the advisory lock
/// of every capped software the batch inserts for, in the order of their
/// keys, before any write. One batch may hold several such locks; taken in
/// one order by every instance, they never wait on each other in a cycle.
async fn lock_capped_software(
    connection: &mut sqlx::AnyConnection,
    batch: &[PendingWrite],
) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i64> = batch
        .iter()
        .filter_map(|pending| match &pending.write {
            Write::Insert(row) if row.software_limit.is_some() => {
                row.software_id.as_deref().map(software_lock)
            }
            _ => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1)::text AS locked")
            .bind(key)
            .fetch_one(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The advisory lock key of a software's cap: 64 bits of a digest of its
/// id.
fn software_lock(software_id: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"dcr-gateway software cap\0")
        .chain_update(software_id.as_bytes())
        .finalize();
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// Inserts a row whose software is capped, counting that software's clients
/// first, in the same transaction (on PostgreSQL, where other instances
/// write too, under the advisory lock [`lock_capped_software`] took), so the
/// cap holds exactly however many registrations race.
async fn insert_capped(
    connection: &mut sqlx::AnyConnection,
    row: &NewRow,
) -> Result<Written, sqlx::Error> {
    if let (Some(limit), Some(software_id)) = (row.software_limit, &row.software_id) {
        let count: i64 = sqlx::query(SOFTWARE_COUNT)
            .bind(software_id.as_str())
            .fetch_one(&mut *connection)
            .await?
            .try_get("n")?;
        if count >= limit {
            return Ok(Written::SoftwareFull);
        }
    }
    let [written] = insert_rows(connection, &[row]).await?[..] else {
        return Err(sqlx::Error::Protocol(
            "an insert of one row answered for several".into(),
        ));
    };
    Ok(written)
}

/// Inserts `rows` (a power of two of them, at most [`MAX_BATCH`]) in one
/// statement; an id already taken changes nothing and is a duplicate. The
/// redirect hosts of the rows written follow, in a few more.
async fn insert_rows(
    connection: &mut sqlx::AnyConnection,
    rows: &[&NewRow],
) -> Result<Vec<Written>, sqlx::Error> {
    let mut query = sqlx::query(CLIENT_INSERTS.statement(rows.len()));
    for row in rows {
        query = query
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
            .bind(row.name_key.as_deref());
    }
    let mut inserted = query
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(|returned| returned.try_get::<String, _>("client_id"))
        .collect::<Result<HashSet<_>, _>>()?;
    // A row is written once: of two rows with one id, the second is a
    // duplicate of the first.
    let written = rows
        .iter()
        .map(|row| {
            if inserted.remove(&row.client_id) {
                Written::Inserted
            } else {
                Written::Duplicate
            }
        })
        .collect::<Vec<_>>();
    let hosts = rows
        .iter()
        .zip(&written)
        .filter(|(_, written)| **written == Written::Inserted)
        .flat_map(|(row, _)| row.host_rows())
        .collect::<Vec<_>>();
    let mut rest = hosts.as_slice();
    while !rest.is_empty() {
        let size = 1 << rest.len().min(MAX_BATCH).ilog2();
        let (these, others) = rest.split_at(size);
        let mut query = sqlx::query(HOST_INSERTS.statement(size));
        for row in these {
            query = query
                .bind(row.host)
                .bind(row.issued_at)
                .bind(row.client_id)
                .bind(row.software_id)
                .bind(row.name_key);
        }
        query.execute(&mut *connection).await?;
        rest = others;
    }
    Ok(written)
}

/// The inserts of new clients, returning the ids they wrote.
static CLIENT_INSERTS: MultiRowInsert = MultiRowInsert::new(
    "clients",
    &INSERT_COLUMNS,
    "ON CONFLICT (client_id) DO NOTHING RETURNING client_id",
);

/// The inserts of new clients' redirect hosts. A client's hosts are
/// distinct and its id is new, so none clashes; were one to, it would be
/// skipped rather than fail the batch.
static HOST_INSERTS: MultiRowInsert = MultiRowInsert::new(
    "client_redirect_hosts",
    &HOST_COLUMNS,
    "ON CONFLICT DO NOTHING",
);

/// One table's multi-row `INSERT`s, a statement for each power of two of
/// rows up to [`MAX_BATCH`] (few distinct ones to prepare), made on first
/// use.
struct MultiRowInsert {
    table: &'static str,
    columns: &'static [&'static str],
    tail: &'static str,
    statements: OnceLock<Vec<String>>,
}

impl MultiRowInsert {
    const fn new(
        table: &'static str,
        columns: &'static [&'static str],
        tail: &'static str,
    ) -> Self {
        Self {
            table,
            columns,
            tail,
            statements: OnceLock::new(),
        }
    }

    /// The insert of `rows` rows: a power of two, at most [`MAX_BATCH`].
    fn statement(&self, rows: usize) -> &str {
        let statements = self.statements.get_or_init(|| {
            (0..=MAX_BATCH.ilog2())
                .map(|power| {
                    let columns = self.columns.len();
                    let values = (0..1usize << power)
                        .map(|row| {
                            let placeholders = (1..=columns)
                                .map(|column| format!("${}", row * columns + column))
                                .collect::<Vec<_>>();
                            format!("({})", placeholders.join(", "))
                        })
                        .collect::<Vec<_>>();
                    format!(
                        "INSERT INTO {} ({}) VALUES {} {}",
                        self.table,
                        self.columns.join(", "),
                        values.join(", "),
                        self.tail
                    )
                })
                .collect()
        });
        &statements[rows.ilog2() as usize]
    }
}
