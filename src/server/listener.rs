//! The TCP side of the server: a cap on connections, and a deadline for the
//! HTTP request head, so that clients that connect and send nothing (or a
//! byte a minute) cannot hold every descriptor and lock the agents out.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections HIS holds at once by default.
pub const MAX_CONNECTIONS: usize = 10_000;

/// How long a client has, from connecting, to send its HTTP request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that holds at most `max` connections (one over is closed at
/// once) and drops a connection whose request head is not complete within
/// `header_timeout`.
pub struct Guarded {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    header_timeout: Duration,
}

impl Guarded {
    pub fn new(inner: TcpListener, max: usize, header_timeout: Duration) -> Self {
        Guarded {
            inner,
            permits: Arc::new(Semaphore::new(max.max(1))),
            header_timeout,
        }
    }
}

impl axum::serve::Listener for Guarded {
    type Io = Guard;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.inner.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, say: wait a moment, as axum does.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                tracing::warn!(%addr, "connection refused: HIS holds as many as it may (limits.max_connections)");
                continue;
            };
            // An event and the response after it are two small writes:
            // without TCP_NODELAY the second waits for the client's delayed
            // ACK (~40 ms).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!("cannot set TCP_NODELAY on a connection: {e}");
            }
            let io = Guard {
                tcp,
                _permit: permit,
                head: Head::Reading {
                    deadline: Box::pin(tokio::time::sleep(self.header_timeout)),
                    tail: Vec::new(),
                },
            };
            return (io, addr);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Where a connection is with its request head.
enum Head {
    /// Not complete: the last three bytes read, to find `\r\n\r\n` across
    /// reads, and the time it has left.
    Reading {
        deadline: Pin<Box<tokio::time::Sleep>>,
        tail: Vec<u8>,
    },
    Done,
}

/// A connection that holds its place under the cap while it lives.
pub struct Guard {
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
    head: Head,
}

impl AsyncRead for Guard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let this = &mut *self;
        if let Head::Reading { deadline, tail } = &mut this.head {
            if let Poll::Ready(Ok(())) = &read {
                let new = &buf.filled()[before..];
                // The head's end may straddle two reads: look at the last
                // three bytes of the one before too.
                let window: Vec<u8> = tail.iter().chain(new).copied().collect();
                if window.windows(4).any(|w| w == b"\r\n\r\n") {
                    this.head = Head::Done;
                    return read;
                }
                tail.clone_from(&window[window.len().saturating_sub(3)..].to_vec());
                if !new.is_empty() {
                    return read;
                }
            }
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the HTTP request head did not come in time",
                )));
            }
        }
        read
    }
}

impl AsyncWrite for Guard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
