//! The group-commit writer: concurrent inserts share one transaction, so
//! one durable commit serves many registrations.

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::rows::{INSERT_COLUMNS, NewRow};
use super::{Backend, SOFTWARE_COUNT};

/// Most inserts committed in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// What became of one insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inserted {
    /// Written.
    New,
    /// The id was taken.
    Duplicate,
    /// Its software already had as many clients as allowed.
    SoftwareFull,
}

/// An insert waiting for the writer.
pub(super) struct PendingInsert {
    /// The row.
    pub(super) row: NewRow,
    /// Where to answer.
    pub(super) reply: oneshot::Sender<Result<Inserted, String>>,
}

/// The group-commit writer: takes every insert waiting, writes them in one
/// transaction, and answers each once the commit is durable.
pub(super) async fn write_inserts(
    pool: AnyPool,
    backend: Backend,
    mut queue: mpsc::Receiver<PendingInsert>,
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
