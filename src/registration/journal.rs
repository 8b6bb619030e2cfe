//! What the operator console reads back of the gateway's work: hourly
//! counts of what it did ([`Activity`]) and each client's audit trail.
//! Both are gathered in memory (a count is an atomic add; a trail entry a
//! push) and written by one task every [`FLUSH_EVERY`], off every request's
//! path; what is gathered but not yet written is offered to the pages too.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::audit::{self, AuditEvent};
use crate::clock::Clock;
use crate::store::StoreError;
use crate::store::activity::{Activity, ActivityLog, HourCount};
use crate::store::trail::{AuditTrail, TrailEntry};
use crate::tasks::TaskGuard;

use super::usage::FLUSH_EVERY;

/// Most trail entries waiting in memory: beyond, new ones are dropped
/// (their audit lines are still written) until the next flush.
const MAX_PENDING_TRAIL: usize = 10_000;

/// How long hourly counts are kept: the Activity page's longest chart.
pub const ACTIVITY_KEPT_SECS: i64 = 60 * 86_400;

/// How long trail entries are kept.
const TRAIL_KEPT_SECS: i64 = 400 * 86_400;

/// Seconds in an hour.
const HOUR: i64 = 3600;

/// Counts and trail entries gathered, written in batches.
pub struct Journal {
    counts: [AtomicU64; Activity::ALL.len()],
    trail: Mutex<Vec<TrailEntry>>,
    activity: Arc<dyn ActivityLog>,
    trails: Arc<dyn AuditTrail>,
    clock: Arc<dyn Clock>,
    /// The hour of the last pruning of old counts and entries.
    pruned_hour: AtomicI64,
}

impl Journal {
    /// A journal writing counts to `activity` and trails to `trails`,
    /// timing them by `clock`.
    #[must_use]
    pub fn new(
        activity: Arc<dyn ActivityLog>,
        trails: Arc<dyn AuditTrail>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            counts: Default::default(),
            trail: Mutex::new(Vec::new()),
            activity,
            trails,
            clock,
            pruned_hour: AtomicI64::new(i64::MIN),
        }
    }

    /// Counts one `kind` now.
    pub fn count(&self, kind: Activity) {
        self.counts[index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the audit line of `event` and, when it concerns a client,
    /// adds it to the client's trail.
    pub fn audit(&self, event: &AuditEvent<'_>) {
        audit::record(event);
        let Some(client_id) = event.client_id else {
            return;
        };
        let entry = TrailEntry {
            at: self.clock.now_unix(),
            client_id: client_id.to_owned(),
            action: event.action.to_owned(),
            outcome: event.outcome.to_owned(),
            actor: event.actor.map(str::to_owned),
        };
        if let Ok(mut trail) = self.trail.lock()
            && trail.len() < MAX_PENDING_TRAIL
        {
            trail.push(entry);
        }
    }

    /// The counts of the hours from `from_hour` on, oldest first, with what
    /// this instance counted but has not written yet in the current hour.
    pub async fn activity_since(&self, from_hour: i64) -> Result<Vec<HourCount>, StoreError> {
        let mut counts = self.activity.activity_since(from_hour).await?;
        let hour = self.current_hour();
        for kind in Activity::ALL {
            let pending = self.counts[index(kind)].load(Ordering::Relaxed);
            if pending == 0 {
                continue;
            }
            match counts.iter_mut().find(|c| c.hour == hour && c.kind == kind) {
                Some(count) => count.count += pending,
                None => counts.push(HourCount {
                    hour,
                    kind,
                    count: pending,
                }),
            }
        }
        Ok(counts)
    }

    /// The newest `limit` entries of a client's trail, newest first, with
    /// those not written yet.
    pub async fn trail_of(
        &self,
        client_id: &str,
        limit: u32,
    ) -> Result<Vec<TrailEntry>, StoreError> {
        // Those waiting are newer than those written; the newest first.
        let mut entries: Vec<TrailEntry> = match self.trail.lock() {
            Ok(trail) => trail
                .iter()
                .rev()
                .filter(|entry| entry.client_id == client_id)
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        };
        entries.extend(self.trails.trail_of(client_id, limit).await?);
        // Stable: entries of the same second keep the order above.
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.at));
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(entries)
    }

    /// Writes what was gathered; what a failed write held is kept for the
    /// next flush. Once an hour, forgets counts and entries past keeping.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let hour = self.current_hour();
        let counts: Vec<HourCount> = Activity::ALL
            .into_iter()
            .map(|kind| HourCount {
                hour,
                kind,
                count: self.counts[index(kind)].swap(0, Ordering::Relaxed),
            })
            .filter(|count| count.count > 0)
            .collect();
        if let Err(error) = self.activity.add_activity(&counts).await {
            for count in counts {
                self.counts[index(count.kind)].fetch_add(count.count, Ordering::Relaxed);
            }
            return Err(error);
        }
        let entries = match self.trail.lock() {
            Ok(mut trail) => std::mem::take(&mut *trail),
            Err(_) => Vec::new(),
        };
        if let Err(error) = self.trails.append_trail(&entries).await {
            if let Ok(mut trail) = self.trail.lock() {
                let room = MAX_PENDING_TRAIL.saturating_sub(trail.len());
                trail.extend(entries.into_iter().take(room));
            }
            return Err(error);
        }
        if self.pruned_hour.swap(hour, Ordering::Relaxed) != hour {
            let now = self.clock.now_unix();
            self.activity
                .prune_activity(hour - ACTIVITY_KEPT_SECS)
                .await?;
            self.trails.prune_trail(now - TRAIL_KEPT_SECS).await?;
        }
        Ok(())
    }

    /// Flushes every [`FLUSH_EVERY`] until the guard drops.
    #[must_use]
    pub fn spawn_flusher(self: &Arc<Self>) -> TaskGuard {
        let journal = Arc::clone(self);
        TaskGuard::every(FLUSH_EVERY, move || {
            let journal = Arc::clone(&journal);
            async move {
                if let Err(error) = journal.flush().await {
                    tracing::warn!(%error, "activity not recorded; retried at the next flush");
                }
            }
        })
    }

    /// The start of the current hour.
    fn current_hour(&self) -> i64 {
        hour_of(self.clock.now_unix())
    }
}

/// The start of the hour `at` falls in.
#[must_use]
pub fn hour_of(at: i64) -> i64 {
    at.div_euclid(HOUR) * HOUR
}

/// Where `kind` is counted.
fn index(kind: Activity) -> usize {
    Activity::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}
