//! The API's transport: the accept loop, optional TLS (rustls), and the limits
//! that keep slow or idle clients from holding connections:
//! - a TLS handshake must finish within the header timeout;
//! - request headers must arrive within the header timeout, which also closes
//!   a keep-alive connection idle for that long between requests;
//! - a request body must arrive within the body timeout (408, see
//!   `crate::server`);
//! - a response write that makes no progress within the write timeout closes
//!   the connection (a client that stops reading holds nothing);
//! - at most `max_connections` connections are open: the accept loop waits
//!   for one to close (new ones queue in the kernel's backlog), and at most
//!   `max_connections_per_source` come from one source (an IPv4 address or
//!   an IPv6 /64, see `source_key`): one more is closed at once.
//!
//! All of them come from `[limits]`.
//!
//! Under mutual TLS (the agent's server) each request carries the client's
//! verified end-entity certificate as a `CertificateDer<'static>` request
//! extension, for routes that check whose it is.
//!
//! On shutdown the listener closes, open connections finish their current
//! request (up to `DRAIN_TIMEOUT`) and are then dropped.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tower::ServiceExt;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The scheme a request arrived with (`http` or `https`), a request extension.
#[derive(Debug, Clone, Copy)]
pub struct Scheme(pub &'static str);

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The transport's limits (from `[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
}

/// Who a connection or request counts against: an IPv4 address, or the /64
/// of an IPv6 address (one host usually has a whole /64 to pick from, so
/// per-address limits would not hold it back). IPv4-mapped IPv6 addresses
/// count as their IPv4 address.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Open connections per source.
#[derive(Default)]
struct Sources(Mutex<HashMap<IpAddr, usize>>);

/// One open connection of a source; closing it gives the slot back.
struct SourceSlot {
    sources: Arc<Sources>,
    key: IpAddr,
}

impl Sources {
    /// A slot for `key`, unless it already has `max` open connections.
    fn take(self: &Arc<Self>, key: IpAddr, max: usize) -> Option<SourceSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: self.clone(),
            key,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut map = self.sources.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// A byte stream whose writes fail once one has made no progress for
/// `timeout` (hyper has a header read timeout but no write timeout).
struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    /// Armed when a write is pending; cleared when one makes progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// What to answer for a write-side poll that returned `r`.
    fn check<R>(&mut self, cx: &mut Context<'_>, r: Poll<std::io::Result<R>>) -> Poll<std::io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client read nothing of the response within the write timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Loads a PEM certificate chain and private key into a server config.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("reading certificates from {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading certificates from {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("reading the private key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(config))
}

/// The self-signed certificate kept in `<dir>`: created on first use for
/// `names` (DNS names or IP addresses), reused afterwards so clients can pin
/// it. Returns (certificate, key) paths; the key file is 0600.
pub fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let cert_path = dir.join("marina.crt");
    let key_path = dir.join("marina.key");
    if cert_path.is_file() && key_path.is_file() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| format!("generating a self-signed certificate: {e}"))?;
    let write = |path: &Path, text: String, mode: u32| -> Result<(), String> {
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        f.sync_all().map_err(|e| format!("syncing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", path.display()))
    };
    // The key first: a crash in between leaves no certificate without its key.
    write(&key_path, generated.signing_key.serialize_pem(), 0o600)?;
    write(&cert_path, generated.cert.pem(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    router: Router,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let sources = Arc::new(Sources::default());
    let header_timeout = limits.header_timeout;
    tokio::pin!(shutdown);
    loop {
        let (permit, stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener, &open) => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let Some(slot) = sources.take(source_key(peer.ip()), limits.max_connections_per_source) else {
            tracing::debug!(%peer, "too many API connections from this source; closed");
            continue;
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            let _held = (permit, slot);
            let _ = stream.set_nodelay(true);
            let scheme = Scheme(if acceptor.is_some() { "https" } else { "http" });
            let stream = WriteDeadline::new(stream, limits.write_timeout);
            let (io, client_cert): (Box<dyn Io>, _) = match acceptor {
                None => (Box::new(stream), None),
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let cert = s
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.clone().into_owned());
                        (Box::new(s), cert)
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            let conn = Conn {
                peer,
                scheme,
                client_cert,
            };
            serve_connection(io, conn, router, header_timeout, stop).await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
    }
    Ok(())
}

/// The next connection, once fewer than `max_connections` are open.
async fn accept(
    listener: &tokio::net::TcpListener,
    open: &Arc<tokio::sync::Semaphore>,
) -> std::io::Result<(tokio::sync::OwnedSemaphorePermit, tokio::net::TcpStream, SocketAddr)> {
    let permit = open
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let (stream, peer) = listener.accept().await?;
    Ok((permit, stream, peer))
}

/// What every request of one connection carries as extensions.
struct Conn {
    peer: SocketAddr,
    scheme: Scheme,
    /// The client's certificate (mutual TLS only).
    client_cert: Option<rustls::pki_types::CertificateDer<'static>>,
}

async fn serve_connection(
    io: Box<dyn Io>,
    conn: Conn,
    router: Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let peer = conn.peer;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(conn.peer));
        req.extensions_mut().insert(conn.scheme);
        if let Some(cert) = &conn.client_cert {
            req.extensions_mut().insert(cert.clone());
        }
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "API connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        let key = |s: &str| source_key(s.parse().unwrap()).to_string();
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:198.51.100.9"), "198.51.100.9");
    }

    #[test]
    fn a_source_holds_at_most_its_share_of_connections() {
        let sources = Arc::new(Sources::default());
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| sources.take(source_key(a), 3).unwrap()).collect();
        let same_64: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert!(sources.take(source_key(same_64), 3).is_none());
        assert!(sources.take("203.0.113.1".parse().unwrap(), 3).is_some());
        drop(held);
        assert!(sources.take(source_key(same_64), 3).is_some());
        assert!(sources.0.lock().unwrap().is_empty(), "slots are given back");
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_loses_its_connection() {
        let (client, server) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(server, Duration::from_millis(100));
        let started = std::time::Instant::now();
        let big = vec![0u8; 1 << 16];
        let err = tokio::io::AsyncWriteExt::write_all(&mut w, &big).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(client);
    }

    #[test]
    fn self_signed_certificate_is_created_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (cert, key) = self_signed(&tls, &names).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        let first = std::fs::read(&cert).unwrap();
        // Persisted: a second start reuses it.
        self_signed(&tls, &names).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first);
        tls_config(&cert, &key).unwrap();
        // Mismatched or missing files are clear errors.
        let other = dir.path().join("other");
        let (_, other_key) = self_signed(&other, &names).unwrap();
        assert!(tls_config(&cert, &other_key).unwrap_err().contains("do not fit"));
        assert!(tls_config(&dir.path().join("nope.crt"), &key).is_err());
    }
}
