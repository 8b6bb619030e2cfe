//! The server's log writer: a request appends its formatted line to a
//! shared buffer and goes on; a writer thread writes the buffer out in one
//! call every few milliseconds, or as soon as it holds `FLUSH_AT` bytes.
//! A thread wakes up at most a few hundred times a second, however many
//! lines there are, and a stuck reader (a full pipe, a slow disk) costs
//! lines, counted, never a request's time.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Most bytes waiting to be written; lines past it are dropped and counted.
pub const CAPACITY: usize = 2 * 1024 * 1024;

/// Bytes waiting that wake the writer at once.
const FLUSH_AT: usize = 64 * 1024;

/// Longest time a line waits before it is written.
const LINGER: Duration = Duration::from_millis(10);

/// What the requests and the writer thread share.
struct Shared {
    waiting: Mutex<Vec<u8>>,
    wake: Condvar,
    dropped: AtomicU64,
    closing: AtomicBool,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, Vec<u8>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the `tracing` subscriber writes: one `write` call per line.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it wrote what was waiting.
pub struct WriterThread {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread, writing to `output`.
pub fn start(
    mut output: impl Write + Send + 'static,
) -> std::io::Result<(BatchedWriter, WriterThread)> {
    let shared = Arc::new(Shared {
        waiting: Mutex::new(Vec::with_capacity(FLUSH_AT)),
        wake: Condvar::new(),
        dropped: AtomicU64::new(0),
        closing: AtomicBool::new(false),
    });
    let writer_side = shared.clone();
    let thread = std::thread::Builder::new()
        .name("dcr-gateway-log".into())
        .spawn(move || {
            let mut spare = Vec::with_capacity(FLUSH_AT);
            loop {
                let closing = {
                    let waiting = writer_side.waiting();
                    let (mut waiting, _) = writer_side
                        .wake
                        .wait_timeout(waiting, LINGER)
                        .unwrap_or_else(PoisonError::into_inner);
                    std::mem::swap(&mut *waiting, &mut spare);
                    writer_side.closing.load(Ordering::Acquire)
                };
                if !spare.is_empty() {
                    // Nowhere to report a failed log write; the lines are lost.
                    let _ = output.write_all(&spare).and_then(|()| output.flush());
                    spare.clear();
                }
                if closing && writer_side.waiting().is_empty() {
                    return;
                }
            }
        })?;
    Ok((
        BatchedWriter {
            shared: shared.clone(),
        },
        WriterThread {
            shared,
            thread: Some(thread),
        },
    ))
}

impl BatchedWriter {
    /// Lines dropped so far because [`CAPACITY`] bytes were waiting.
    #[must_use]
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Write for &BatchedWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut waiting = self.shared.waiting();
        if waiting.len() + line.len() > CAPACITY {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            waiting.extend_from_slice(line);
            if waiting.len() >= FLUSH_AT {
                self.shared.wake.notify_one();
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = &'a BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Collected(Arc<Mutex<Vec<u8>>>);

    impl Write for Collected {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_by_the_time_the_thread_stops() {
        let output = Collected::default();
        let (writer, thread) = start(output.clone()).unwrap();
        for n in 0..10_000 {
            (&writer)
                .write_all(format!("line {n}\n").as_bytes())
                .unwrap();
        }
        drop(thread);
        let written = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 10_000);
        assert!(written.ends_with("line 9999\n"));
        assert_eq!(writer.dropped_lines(), 0);
    }

    #[test]
    fn lines_past_the_capacity_are_dropped_and_counted() {
        /// An output that never takes anything (a stuck reader).
        struct Stuck;
        impl Write for Stuck {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(0)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (writer, thread) = start(Stuck).unwrap();
        let line = [b'x'; 1024];
        for _ in 0..(3 * CAPACITY / line.len()) {
            (&writer).write_all(&line).unwrap();
        }
        assert!(writer.dropped_lines() >= (CAPACITY / line.len()) as u64);
        std::mem::forget(thread); // its thread is stuck for good
    }
}
