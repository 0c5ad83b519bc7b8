//! The TCP side of the server: a cap on connections, and a deadline for the
//! HTTP request head, so that clients that connect and send nothing (or a
//! byte a minute) cannot hold every descriptor and lock the agents out.
//! With TLS, the handshake happens on the connection's own reads, not in
//! the accept loop (a slow handshake must not hold up the next client), and
//! the same deadline covers it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

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
    tls: Option<Tls>,
}

impl Guarded {
    pub fn new(inner: TcpListener, max: usize, header_timeout: Duration, tls: Option<Tls>) -> Self {
        Guarded {
            inner,
            permits: Arc::new(Semaphore::new(max.max(1))),
            header_timeout,
            tls,
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
                io: match &self.tls {
                    Some(Tls(tls)) => Stream::Handshake(Box::new(tls.accept(tcp))),
                    None => Stream::Plain(tcp),
                },
                permit: Some(permit),
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
    io: Stream,
    /// Its place under the cap; a lingering close keeps it.
    permit: Option<OwnedSemaphorePermit>,
    head: Head,
}

/// A connection's bytes: plain, or TLS once its handshake is done.
enum Stream {
    Plain(TcpStream),
    Handshake(Box<tokio_rustls::Accept<TcpStream>>),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// The handshake failed; the error was returned.
    Failed,
}

impl Stream {
    /// Ready once bytes can flow: at once without TLS.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Stream::Handshake(accept) = self else {
            return match self {
                Stream::Failed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
                _ => Poll::Ready(Ok(())),
            };
        };
        match Pin::new(&mut **accept).poll(cx) {
            Poll::Ready(Ok(tls)) => {
                *self = Stream::Tls(Box::new(tls));
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                tracing::debug!("TLS handshake failed: {e}");
                *self = Stream::Failed;
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The stream bytes flow on, once the handshake is done.
    fn ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Pin<&mut dyn ReadWrite>>> {
        std::task::ready!(self.poll_handshake(cx))?;
        Poll::Ready(match self {
            Stream::Plain(tcp) => Ok(Pin::new(tcp)),
            Stream::Tls(tls) => Ok(Pin::new(&mut **tls)),
            Stream::Handshake(_) | Stream::Failed => Err(io::ErrorKind::NotConnected.into()),
        })
    }
}

trait ReadWrite: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> ReadWrite for T {}

impl AsyncRead for Guard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = match self.io.ready(cx) {
            Poll::Ready(Ok(io)) => io.poll_read(cx, buf),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        };
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
        std::task::ready!(self.io.ready(cx))?.poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.io.ready(cx))?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            // Nothing was said: nothing to end.
            Stream::Handshake(_) | Stream::Failed => Poll::Ready(Ok(())),
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.io.ready(cx))?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
            Stream::Handshake(_) | Stream::Failed => false,
        }
    }
}

/// How long a connection that HIS ends goes on being read, its bytes
/// dropped: bytes a client sent that nobody read make the kernel answer
/// with a reset, which can destroy the close frame HIS sent before it is
/// read (a client still sending an oversized frame). The connection keeps
/// its place under the cap meanwhile.
const LINGER: Duration = Duration::from_secs(2);

impl Drop for Guard {
    fn drop(&mut self) {
        let io = std::mem::replace(&mut self.io, Stream::Failed);
        let permit = self.permit.take();
        // A client that never sent a whole request head has nothing to
        // lose: it is dropped at once.
        if matches!(self.head, Head::Done)
            && matches!(io, Stream::Plain(_) | Stream::Tls(_))
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = tokio::time::timeout(LINGER, linger(io)).await;
                drop(permit);
            });
        }
    }
}

/// Ends the sending side, then reads and drops what comes, until the
/// client closes too.
async fn linger(mut io: Stream) {
    use tokio::io::AsyncReadExt;
    let _ = std::future::poll_fn(|cx| match io.ready(cx) {
        Poll::Ready(Ok(s)) => s.poll_shutdown(cx),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    })
    .await;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match &mut io {
            Stream::Plain(tcp) => tcp.read(&mut buf).await,
            Stream::Tls(tls) => tls.read(&mut buf).await,
            Stream::Handshake(_) | Stream::Failed => return,
        };
        if !matches!(n, Ok(n) if n > 0) {
            return;
        }
    }
}

/// The TLS side of the server: the identity it presents.
#[derive(Clone)]
pub struct Tls(TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// The TLS side of a server that presents `cert` (a PEM chain) with `key`.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<Tls, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
    // HIS speaks HTTP/1.1 (WebSocket upgrades need it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls(TlsAcceptor::from(Arc::new(config))))
}
