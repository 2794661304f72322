//! The API's transport: the accept loop, optional TLS (rustls), and the limits
//! that keep slow or idle clients from holding connections:
//! - a TLS handshake must finish within the header timeout;
//! - request headers must arrive within the header timeout, which also closes
//!   a keep-alive connection idle for that long between requests;
//! - a request body must arrive within the body timeout (408, see
//!   `crate::server`). Both come from `[limits]`.
//!
//! On shutdown the listener closes, open connections finish their current
//! request (up to `DRAIN_TIMEOUT`) and are then dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
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
        let router = router.clone();
        let acceptor = acceptor.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            let scheme = Scheme(if acceptor.is_some() { "https" } else { "http" });
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(stream),
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => Box::new(s),
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
            serve_connection(io, peer, scheme, router, header_timeout, stop).await;
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

async fn serve_connection(
    io: Box<dyn Io>,
    peer: SocketAddr,
    scheme: Scheme,
    router: Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(scheme);
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
