//! A cap on the connections a pool holds open: a connector that takes a permit before it
//! connects and hands it to the connection, which gives it back when it closes.
//!
//! Why: hyper's pool opens a connection for every request that finds none idle at that
//! instant, and a connect that loses the race to a connection coming back still completes. A
//! broadcaster's cold invocation posting 400 at a time so opened 500–680 TLS connections, each
//! a full handshake (BENCHMARKS.md, "The cost of one delivery"). With the cap, a request that
//! finds none idle waits for a permit or for a pooled connection, whichever comes first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `C` taking a permit of `permits` (when capped) for each connection it opens.
#[derive(Debug, Clone)]
pub(crate) struct Capped<C> {
    inner: C,
    permits: Option<Arc<Semaphore>>,
}

impl<C> Capped<C> {
    /// `inner` holding at most `max_open` connections open at once; no cap when `None`.
    pub(crate) fn new(inner: C, max_open: Option<usize>) -> Self {
        Capped {
            inner,
            permits: max_open.map(|n| Arc::new(Semaphore::new(n.max(1)))),
        }
    }
}

impl<C> tower_service::Service<http::Uri> for Capped<C>
where
    C: tower_service::Service<http::Uri> + Clone + Send + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    type Response = Held<C::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        // The clone is the ready one (`poll_ready` was called on `self.inner`); the connector
        // here is always ready, and its clones share its state.
        let mut inner = self.inner.clone();
        let permits = self.permits.clone();
        Box::pin(async move {
            let permit = match permits {
                Some(permits) => Some(permits.acquire_owned().await?),
                None => None,
            };
            let io = inner.call(uri).await.map_err(Into::into)?;
            Ok(Held {
                io,
                _permit: permit,
            })
        })
    }
}

/// A connection and the permit it holds until it is dropped.
#[derive(Debug)]
pub(crate) struct Held<T> {
    io: T,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<T: Connection> Connection for Held<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: Read + Unpin> Read for Held<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Held<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A connector that counts the connects it was asked for and never finishes one until
    /// told: enough to see the cap hold callers back.
    #[derive(Clone, Default)]
    struct Counting(Arc<AtomicUsize>);

    impl tower_service::Service<http::Uri> for Counting {
        type Response = ();
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Uri) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn at_most_max_open_connect_at_once_and_a_closed_one_frees_its_permit() {
        use tower_service::Service;
        let counting = Counting::default();
        let mut capped = Capped::new(counting.clone(), Some(2));
        let uri: http::Uri = "http://example.test/".parse().unwrap();
        let first = capped.call(uri.clone()).await.unwrap();
        let _second = capped.call(uri.clone()).await.unwrap();
        // A third waits: no permit while two connections are open.
        let mut third = capped.call(uri.clone());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(third.as_mut().poll(&mut cx).is_pending());
        assert_eq!(counting.0.load(Ordering::SeqCst), 2);
        // The first closes: the third connects.
        drop(first);
        let _third = third.await.unwrap();
        assert_eq!(counting.0.load(Ordering::SeqCst), 3);
        // Uncapped, nothing waits: ten open at once.
        let mut open = Capped::new(counting.clone(), None);
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(open.call(uri.clone()).await.unwrap());
        }
        assert_eq!(counting.0.load(Ordering::SeqCst), 13);
    }
}
