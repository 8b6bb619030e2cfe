//! The group commit of refresh-token rotations on SQLite: concurrent
//! rotations are handed to one task, which applies every rotation waiting
//! (up to [`MAX_ROTATIONS`]) in one transaction of three statements, each
//! covering the whole batch, and answers each once that transaction has
//! committed.
//!
//! SQLite has one writer: one rotation per transaction, four statements
//! each, capped refreshes near 2,500 a second, however many arrived
//! together. Each rotation keeps its own outcome: a token is used once,
//! so of two rotations of one token (in one batch or in two) exactly one
//! wins; a revoked family does not rotate, and nothing changes for a
//! rotation that loses. When the batch fails, every rotation in it is
//! answered with the error: none was written.
//!
//! The task ends when the last [`Rotations`] handle (each clone of the
//! store holds one) is dropped.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::domain::SecretHash;
use crate::store::StoreError;

/// Most rotations applied in one transaction.
const MAX_ROTATIONS: usize = 64;

/// One rotation: `old` is used once, `new` becomes its family's live
/// token, the family lapses at `expires_at` and holds `sealed_upstream`
/// when there is one.
pub(super) struct Rotation {
    /// The token presented.
    pub(super) old: SecretHash,
    /// Its successor.
    pub(super) new: SecretHash,
    /// The provider's refresh token, sealed, when the provider rotated it.
    pub(super) sealed_upstream: Option<Vec<u8>>,
    /// When the family lapses now (Unix seconds).
    pub(super) expires_at: i64,
}

/// A rotation waiting for the task, with where to answer: whether it
/// rotated, or why the batch holding it failed.
struct Pending {
    rotation: Rotation,
    reply: oneshot::Sender<Result<bool, String>>,
}

/// A handle on the task that applies rotations in batches.
#[derive(Clone)]
pub(super) struct Rotations {
    queue: mpsc::Sender<Pending>,
}

impl Rotations {
    /// Starts the task, which writes on `connections` (the store's
    /// transient pool: on SQLite one connection, shared with the front's
    /// other transient writes).
    pub(super) fn start(connections: AnyPool) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_ROTATIONS * 4);
        tokio::spawn(apply_batches(connections, waiting));
        Self { queue }
    }

    /// Applies `rotation` in the next batch: whether it rotated (`false`
    /// when its token was used, by this batch or before, or its family
    /// revoked).
    pub(super) async fn rotate(&self, rotation: Rotation) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { rotation, reply })
            .await
            .map_err(|_| StoreError::Write("the rotation task has stopped".into()))?;
        match answer.await {
            Ok(Ok(rotated)) => Ok(rotated),
            Ok(Err(reason)) => Err(StoreError::Write(reason)),
            Err(_) => Err(StoreError::Write(
                "the rotation task dropped a rotation".into(),
            )),
        }
    }
}

/// The task: takes every rotation waiting, applies them in one
/// transaction and answers each.
async fn apply_batches(connections: AnyPool, mut waiting: mpsc::Receiver<Pending>) {
    let mut held = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_ROTATIONS {
            let Ok(next) = waiting.try_recv() else {
                break;
            };
            // A token this batch makes is rotated after it, as it would be
            // one rotation at a time.
            if batch
                .iter()
                .any(|pending| pending.rotation.new == next.rotation.old)
            {
                held = Some(next);
                break;
            }
            batch.push(next);
        }
        let rotations: Vec<&Rotation> = batch.iter().map(|pending| &pending.rotation).collect();
        match apply(&connections, &rotations).await {
            Ok(rotated) => {
                for (pending, rotated) in batch.into_iter().zip(rotated) {
                    let _ = pending.reply.send(Ok(rotated));
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

/// Applies `batch` in one transaction; per rotation, whether it rotated.
///
/// The first statement marks used every presented token that is unused
/// and whose family is not revoked (taking SQLite's write lock before
/// anything is read); of several rotations of one token, the first in
/// the batch wins. The second extends the winners' families, the third
/// inserts their new tokens.
async fn apply(connections: &AnyPool, batch: &[&Rotation]) -> Result<Vec<bool>, sqlx::Error> {
    let mut transaction = connections.begin().await?;
    let sql = used_statement(batch.len());
    let mut query = sqlx::query_as::<_, (Vec<u8>, String)>(&sql);
    for rotation in batch {
        query = query.bind(rotation.old.as_bytes().to_vec());
    }
    let mut used: HashMap<Vec<u8>, String> = query
        .fetch_all(&mut *transaction)
        .await?
        .into_iter()
        .collect();
    let claimed: Vec<Option<String>> = batch
        .iter()
        .map(|rotation| used.remove(rotation.old.as_bytes()))
        .collect();
    let winners: Vec<(&Rotation, &str)> = batch
        .iter()
        .zip(&claimed)
        .filter_map(|(rotation, family)| Some((*rotation, family.as_deref()?)))
        .collect();
    let mut extended = HashSet::new();
    if !winners.is_empty() {
        let sql = extend_statement(winners.len());
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for (rotation, family) in &winners {
            query = query
                .bind((*family).to_owned())
                .bind(rotation.expires_at)
                .bind(rotation.sealed_upstream.clone());
        }
        extended.extend(query.fetch_all(&mut *transaction).await?);
        let inserted: Vec<&(&Rotation, &str)> = winners
            .iter()
            .filter(|(_, family)| extended.contains(*family))
            .collect();
        if !inserted.is_empty() {
            let sql = insert_statement(inserted.len());
            let mut query = sqlx::query(&sql);
            for (rotation, family) in inserted {
                query = query
                    .bind(rotation.new.as_bytes().to_vec())
                    .bind((*family).to_owned());
            }
            query.execute(&mut *transaction).await?;
        }
    }
    transaction.commit().await?;
    Ok(claimed
        .iter()
        .map(|family| family.as_ref().is_some_and(|id| extended.contains(id)))
        .collect())
}

/// Marks used the unused tokens among `count` presented whose family is
/// not revoked, returning each with its family.
fn used_statement(count: usize) -> String {
    format!(
        "UPDATE front_refresh_tokens SET used = 1 \
         WHERE token_hash IN ({}) AND used = 0 AND EXISTS (\
         SELECT 1 FROM front_refresh_families f \
         WHERE f.family_id = front_refresh_tokens.family_id AND f.revoked = 0) \
         RETURNING token_hash, family_id",
        placeholders(count, 1)
    )
}

/// Extends `count` families not revoked (`family_id`, `expires_at`,
/// `upstream` or NULL to keep it, each), returning their ids.
fn extend_statement(count: usize) -> String {
    format!(
        "UPDATE front_refresh_families \
         SET expires_at = v.column2, upstream = COALESCE(v.column3, upstream) \
         FROM (VALUES {}) AS v \
         WHERE family_id = v.column1 AND revoked = 0 RETURNING family_id",
        placeholders(count, 3)
    )
}

/// Inserts `count` new tokens (`token_hash`, `family_id`, each).
fn insert_statement(count: usize) -> String {
    format!(
        "INSERT INTO front_refresh_tokens (token_hash, family_id) VALUES {}",
        placeholders(count, 2)
    )
}

/// `count` groups of `width` placeholders, numbered from `$1`: `$1, $2`
/// for two groups of width one, `($1, $2), ($3, $4)` for two of width
/// two.
fn placeholders(count: usize, width: usize) -> String {
    let mut text = String::new();
    for group in 0..count {
        if group > 0 {
            text.push_str(", ");
        }
        if width > 1 {
            text.push('(');
        }
        for column in 0..width {
            if column > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "${}", group * width + column + 1);
        }
        if width > 1 {
            text.push(')');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Rotation, Rotations, apply, placeholders};
    use crate::clock::SystemClock;
    use crate::domain::SecretHash;
    use crate::store::front::{PresentedRefresh, RefreshFamily, RefreshTokenStore};
    use crate::store::sql::SqlStore;

    const NOW: i64 = 1_000_000;

    fn token(name: &str) -> SecretHash {
        SecretHash::of(name)
    }

    fn rotation(old: &str, new: &str) -> Rotation {
        Rotation {
            old: token(old),
            new: token(new),
            sealed_upstream: None,
            expires_at: NOW + 200,
        }
    }

    /// A store with the families `f-a`, `f-b` and `f-c` (revoked), whose
    /// live tokens are `a`, `b` and `c`.
    async fn store(dir: &tempfile::TempDir) -> SqlStore {
        let url = format!("sqlite://{}", dir.path().join("rotations.db").display());
        let store = SqlStore::open(&url, 2, Arc::new(SystemClock), None)
            .await
            .unwrap();
        for name in ["a", "b", "c"] {
            let family = RefreshFamily {
                id: format!("f-{name}"),
                client_id: "c1".into(),
                scope: None,
                resource: None,
                subject: "dana".into(),
                sealed_upstream: b"sealed".to_vec(),
                claims: serde_json::Map::new(),
                expires_at: NOW + 100,
            };
            store.start_family(&family, &token(name)).await.unwrap();
        }
        store.revoke_family("f-c").await.unwrap();
        store
    }

    async fn live(store: &SqlStore, name: &str) -> bool {
        matches!(
            store.presented(&token(name), NOW).await.unwrap(),
            PresentedRefresh::Live(_)
        )
    }

    #[tokio::test]
    async fn a_batch_rotates_each_token_once_and_no_revoked_family() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let batch = [
            rotation("a", "a1"),
            rotation("a", "a2"),
            rotation("b", "b1"),
            rotation("c", "c1"),
        ];
        let batch: Vec<&Rotation> = batch.iter().collect();
        let rotated = apply(&store.transient, &batch).await.unwrap();
        assert_eq!(rotated, [true, false, true, false]);
        assert!(live(&store, "a1").await);
        assert!(live(&store, "b1").await);
        assert!(!live(&store, "a2").await, "the second rotation of a lost");
        assert!(
            !live(&store, "c1").await,
            "a revoked family does not rotate"
        );
        let PresentedRefresh::Reused(family) = store.presented(&token("a"), NOW).await.unwrap()
        else {
            panic!("a was used");
        };
        assert_eq!(family.expires_at, NOW + 200, "the family was extended");
    }

    #[tokio::test]
    async fn a_failed_batch_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        // b's successor would be a token that exists: the insert fails.
        let batch = [rotation("a", "a1"), rotation("b", "a")];
        let batch: Vec<&Rotation> = batch.iter().collect();
        assert!(apply(&store.transient, &batch).await.is_err());
        assert!(live(&store, "a").await);
        assert!(live(&store, "b").await);
        assert!(!live(&store, "a1").await);
    }

    #[tokio::test]
    async fn a_token_a_batch_makes_is_rotated_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let rotations = Rotations::start(store.transient.clone());
        // Both are queued before the task runs (one thread): one batch
        // would take both, were the second not held for the next.
        let (first, second) = tokio::join!(
            rotations.rotate(rotation("a", "a1")),
            rotations.rotate(rotation("a1", "a2")),
        );
        assert!(first.unwrap());
        assert!(second.unwrap());
        assert!(live(&store, "a2").await);
    }

    #[test]
    fn placeholders_are_numbered_in_groups() {
        assert_eq!(placeholders(3, 1), "$1, $2, $3");
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(1, 3), "($1, $2, $3)");
    }
}
