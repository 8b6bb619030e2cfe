//! A request body as the connection hands it to the application: read
//! within a deadline, and watched.
//!
//! - The whole body must arrive within the deadline its connection set
//!   (`server.request_body_timeout` after the head). Past it, reading fails;
//!   [`super::edge`] then answers `408 Request Timeout` and closes the
//!   connection, whatever the handler made of the failed read. The timer is
//!   armed on the first read that has to wait, so a body that is already
//!   in, or never read, costs none.
//! - The connection is told when the body has arrived in full
//!   ([`BodyProgress`]): from then on the request is work in progress, not a
//!   client that may be holding the connection open.
//! - Whether it was read to its end: an HTTP/1 answer given before that
//!   (a 413 for an oversized body, a 401 or 429 decided from the headers)
//!   says `Connection: close`. hyper cannot reuse such a connection and
//!   closes it; a keep-alive client that is not told sends its next request
//!   into the closed socket and fails ("other side closed").

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Told when a request's body has arrived in full.
pub trait BodyProgress: Send + Sync {
    /// The last frame of the body was read.
    fn body_complete(&self);
}

/// The request body did not arrive within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body read within a deadline (see the module documentation).
pub struct GuardedBody<B> {
    inner: B,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    watch: Arc<Flags>,
    progress: Option<Arc<dyn BodyProgress>>,
}

/// What a [`GuardedBody`] reports.
#[derive(Default)]
struct Flags {
    read_to_end: AtomicBool,
    timed_out: AtomicBool,
}

/// What became of a [`GuardedBody`], for the answer to its request.
#[derive(Clone)]
pub struct BodyWatch(Arc<Flags>);

impl BodyWatch {
    /// True once the body's last frame was read.
    #[must_use]
    pub fn read_to_end(&self) -> bool {
        self.0.read_to_end.load(Ordering::Acquire)
    }

    /// True once a read failed for want of time.
    #[must_use]
    pub fn timed_out(&self) -> bool {
        self.0.timed_out.load(Ordering::Acquire)
    }
}

impl<B> GuardedBody<B> {
    /// `inner`, to be read in full by `deadline`; `progress` is told when it
    /// was.
    pub fn new(
        inner: B,
        deadline: Instant,
        progress: Option<Arc<dyn BodyProgress>>,
    ) -> (Self, BodyWatch) {
        let watch = Arc::new(Flags::default());
        let body = Self {
            inner,
            deadline,
            timer: None,
            watch: Arc::clone(&watch),
            progress,
        };
        (body, BodyWatch(watch))
    }

    fn complete(&mut self) {
        self.watch.read_to_end.store(true, Ordering::Release);
        self.timer = None;
        if let Some(progress) = self.progress.take() {
            progress.body_complete();
        }
    }
}

impl<B> HttpBody for GuardedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if frame.is_none() || this.inner.is_end_stream() {
                    this.complete();
                }
                Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.watch.timed_out.store(true, Ordering::Release);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    struct Count(AtomicUsize);

    impl BodyProgress for Count {
        fn body_complete(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_at_its_deadline_and_one_that_arrives_is_reported_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let frames = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(Frame::data(
            Bytes::from_static(b"{}"),
        ))]);
        let deadline = Instant::now() + Duration::from_secs(1);
        let progress: Arc<dyn BodyProgress> = count.clone();
        let (body, watch) = GuardedBody::new(StreamBody::new(frames), deadline, Some(progress));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "{}");
        assert!(watch.read_to_end() && !watch.timed_out());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);

        let stalled = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        let (body, watch) = GuardedBody::new(stalled, deadline, None);
        let error = body.collect().await.err().unwrap();
        assert!(error.to_string().contains("did not arrive in time"));
        assert!(watch.timed_out() && !watch.read_to_end());
    }
}
