//! Background tasks whose lifetime is tied to a guard: when the guard is
//! dropped, the task stops (as mini-redis ties its purge task to a drop
//! guard), so no task outlives what started it.

use std::future::Future;

/// A background task, stopped when this is dropped.
#[derive(Debug)]
pub struct TaskGuard(tokio::task::JoinHandle<()>);

impl TaskGuard {
    /// Runs `task` in the background until the guard drops.
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
