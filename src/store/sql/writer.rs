//! The group-commit writer: concurrent writes (inserts, replaces, deletes,
//! state changes) share one transaction, so one durable commit serves many
//! requests, and each is answered only once that commit is durable.

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::rows::{INSERT_CLIENT, NewRow};
use super::{Backend, SOFTWARE_COUNT};

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

/// A statement with its values, owned, so that it can wait in the queue.
pub(super) struct Statement {
    sql: &'static str,
    values: Vec<Value>,
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
        }
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

    async fn execute(&self, connection: &mut sqlx::AnyConnection) -> Result<u64, sqlx::Error> {
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
pub(super) async fn write_batches(
    pool: AnyPool,
    backend: Backend,
    mut queue: mpsc::Receiver<PendingWrite>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match commit(&pool, backend, &batch).await {
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
async fn commit(
    pool: &AnyPool,
    backend: Backend,
    batch: &[PendingWrite],
) -> Result<Vec<Written>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let mut written = Vec::with_capacity(batch.len());
    for pending in batch {
        written.push(match &pending.write {
            Write::Insert(row) => insert(&mut transaction, backend, row).await?,
            Write::Statement(statement) => {
                Written::Rows(statement.execute(&mut transaction).await?)
            }
        });
    }
    transaction.commit().await?;
    Ok(written)
}

/// Inserts one row. A row whose software is capped is counted first, in the
/// same transaction (under an advisory lock on PostgreSQL, where other
/// instances write too), so the cap holds exactly however many registrations
/// race.
async fn insert(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    row: &NewRow,
) -> Result<Written, sqlx::Error> {
    if let (Some(limit), Some(software_id)) = (row.software_limit, &row.software_id) {
        if backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text AS locked")
                .bind(software_id.as_str())
                .fetch_one(&mut *connection)
                .await?;
        }
        let count: i64 = sqlx::query(SOFTWARE_COUNT)
            .bind(software_id.as_str())
            .fetch_one(&mut *connection)
            .await?
            .try_get("n")?;
        if count >= limit {
            return Ok(Written::SoftwareFull);
        }
    }
    let done = sqlx::query(INSERT_CLIENT)
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
        .execute(connection)
        .await?;
    Ok(if done.rows_affected() == 1 {
        Written::Inserted
    } else {
        Written::Duplicate
    })
}
