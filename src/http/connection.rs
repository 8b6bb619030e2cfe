//! `Connection: close` on any HTTP/1 answer given before the request body
//! was read to its end (a 413 for an oversized body, a 401 or 429 decided
//! from the headers). hyper cannot reuse such a connection and closes it;
//! a keep-alive client that is not told sends its next request into the
//! closed socket and fails ("other side closed"). [`super::edge`] marks
//! the answer; this module watches the body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};

/// A request body that says when it was read to its end.
pub struct WatchedBody {
    inner: Body,
    read_to_end: Arc<AtomicBool>,
}

/// Whether a [`WatchedBody`] was read to its end.
pub struct ReadToEnd(Arc<AtomicBool>);

impl ReadToEnd {
    /// True once the body's last frame was read.
    #[must_use]
    pub fn load(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl WatchedBody {
    /// Watches `body`; the answer given after it may close the connection
    /// unless [`ReadToEnd::load`] says it was read to its end.
    #[must_use]
    pub fn new(body: Body) -> (Self, ReadToEnd) {
        let read_to_end = Arc::new(AtomicBool::new(false));
        let watched = Self {
            inner: body,
            read_to_end: read_to_end.clone(),
        };
        (watched, ReadToEnd(read_to_end))
    }
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read_to_end.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
