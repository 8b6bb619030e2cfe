//! Background tasks whose lifetime is tied to a guard: when the guard is
//! dropped, the task stops (as mini-redis ties its purge task to a drop
//! guard), so no task outlives what started it.

use std::future::Future;
use std::time::Duration;

/// A background task, stopped when this is dropped.
#[derive(Debug)]
pub struct TaskGuard(tokio::task::JoinHandle<()>);

impl TaskGuard {
    /// Runs `task` in the background until the guard drops.
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }

    /// Runs `pass` every `period` (the first at once; a pass that runs
    /// late delays the next rather than bunching them) until the guard
    /// drops.
    pub fn every<F, P>(period: Duration, mut pass: P) -> Self
    where
        P: FnMut() -> F + Send + 'static,
        F: Future<Output = ()> + Send,
    {
        Self::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                pass().await;
            }
        })
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
