//! The userspace data path: a TCP proxy in the control plane. Each endpoint
//! address gets a listener on every event loop (`SO_REUSEPORT`: the kernel
//! spreads new connections over them, and each loop serves what it accepted,
//! with no hand-off between threads); each accepted connection is copied both
//! ways to a backend picked round-robin from the route's current backends
//! (changing the backends affects new connections only).

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{DataPath, EndpointError, EndpointPlan, RefusalCount};

/// Connection counts shared with the accept loops: refused by (endpoint,
/// source), accepted by endpoint.
#[derive(Clone, Default)]
struct Counters {
    refused: Arc<Mutex<HashMap<(SocketAddrV4, std::net::IpAddr), u64>>>,
    accepted: Arc<Mutex<HashMap<SocketAddrV4, u64>>>,
}

/// Open connections of a listener: backend and the task copying its bytes.
type Conns = Arc<Mutex<Vec<(SocketAddrV4, tokio::task::AbortHandle)>>>;

/// The source networks a listener admits.
type Allowed = Arc<RwLock<Vec<ipnet::Ipv4Net>>>;

/// One live listener: what its accept loops share, and the loops.
struct Listener {
    shared: Shared,
    /// The accept loops, one per event loop.
    tasks: Vec<JoinHandle<()>>,
}

impl Listener {
    fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What every accept loop of one endpoint shares.
#[derive(Clone)]
struct Shared {
    /// Current backends, swapped by `apply`.
    backends: Arc<RwLock<Vec<SocketAddrV4>>>,
    /// Source networks admitted (security groups), swapped by `apply`.
    allowed: Allowed,
    /// Open connections (cut when their backend leaves an exclusive route).
    conns: Conns,
    /// Round-robin position over the backends, across the loops.
    next: Arc<AtomicUsize>,
    counters: Counters,
}

/// Userspace TCP proxy data path.
pub struct ProxyDataPath {
    /// Live listeners by endpoint address.
    listeners: Mutex<HashMap<SocketAddrV4, Listener>>,
    /// The proxy's own event loops, one single-threaded runtime per CPU (like
    /// HAProxy's threads): connections are spread over them and each is served
    /// by one loop, so byte copying never waits behind control-plane work or
    /// pays for cross-thread wake-ups.
    loops: Vec<tokio::runtime::Handle>,
    /// End the loops' threads when the data path is dropped.
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Connections refused by security groups, and accepted.
    counters: Counters,
}

impl Default for ProxyDataPath {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyDataPath {
    pub fn new() -> Self {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut loops = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for i in 0..n {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("marina-proxy-{i}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("building a proxy runtime");
                    let _ = handle_tx.send(rt.handle().clone());
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                })
                .expect("spawning a proxy thread");
            loops.push(handle_rx.recv().expect("the proxy runtime starts"));
            stops.push(stop_tx);
        }
        ProxyDataPath {
            listeners: Mutex::new(HashMap::new()),
            loops,
            _stop: stops,
            counters: Counters::default(),
        }
    }
}

impl Drop for ProxyDataPath {
    fn drop(&mut self) {
        if let Ok(l) = self.listeners.lock() {
            for listener in l.values() {
                listener.abort();
            }
        }
    }
}

/// A listening socket on `addr` that other loops' sockets on the same
/// address share (`SO_REUSEPORT`).
fn reuseport_listener(addr: SocketAddrV4) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Accepts connections on one event loop and serves them there.
async fn accept_loop(listener: TcpListener, shared: Shared) {
    let Shared {
        backends,
        allowed,
        conns,
        next,
        counters,
    } = shared;
    let endpoint = match listener.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => a,
        _ => SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
    };
    loop {
        let Ok((client, peer)) = listener.accept().await else {
            continue;
        };
        let admitted = crate::admits(&allowed.read().unwrap_or_else(|e| e.into_inner()), peer.ip());
        if !admitted {
            // Counted here, logged by the control plane (once per second and
            // source, not once per connection).
            *counters
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((endpoint, peer.ip()))
                .or_default() += 1;
            drop(client);
            continue;
        }
        let target = {
            let b = backends.read().unwrap_or_else(|e| e.into_inner());
            if b.is_empty() {
                None
            } else {
                Some(b[next.fetch_add(1, Ordering::Relaxed) % b.len()])
            }
        };
        let Some(target) = target else {
            tracing::debug!(%peer, "endpoint has no backend; closing connection");
            continue;
        };
        *counters
            .accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint)
            .or_default() += 1;
        // Served on this loop (re-registered for readability only).
        let _ = client.set_nodelay(true);
        let Ok(client) = client.into_std() else { continue };
        let task = tokio::spawn(async move {
            match TcpStream::connect(target).await {
                Ok(server) => {
                    let _ = server.set_nodelay(true);
                    if let Err(e) = pump(client, server).await {
                        tracing::debug!(%peer, %target, error = %e, "proxied connection ended with an error");
                    }
                }
                Err(e) => tracing::debug!(%peer, %target, error = %e, "backend unreachable"),
            }
        });
        let mut open = conns.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|(_, h)| !h.is_finished());
        open.push((target, task.abort_handle()));
    }
}

/// Copies bytes both ways until both sides are done.
///
/// Two habits borrowed from HAProxy keep system calls and wake-ups per message
/// to a minimum on request/response traffic (every MySQL query):
/// - sockets are registered for *readability only*; a write is attempted
///   directly and waits for writability (through a temporary registration) only
///   in the rare case the socket buffer is full — so the kernel's "write space
///   available" edge after every send never wakes the proxy;
/// - a read that returns less than the buffer is taken to have drained the
///   socket, so the next read waits for the readiness event instead of spending
///   a system call to learn it would block. Tokio's readiness ticks keep this
///   race-free: data arriving after the read sets readiness again.
async fn pump(client: std::net::TcpStream, server: TcpStream) -> std::io::Result<()> {
    let client = register_readable(client)?;
    let server = register_readable(server.into_std()?)?;
    let (up, down) = tokio::join!(one_way(&client, &server), one_way(&server, &client));
    up.and(down)
}

type Fd = tokio::io::unix::AsyncFd<std::net::TcpStream>;

fn register_readable(s: std::net::TcpStream) -> std::io::Result<Fd> {
    // SAFETY: the `TcpStream` owns its descriptor, which stays open and
    // unreplaced for as long as the `AsyncFd` exists.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}

/// Waits until `s` can take more bytes, through a short-lived registration of
/// a duplicate descriptor (epoll reports the current state when it is added,
/// so this cannot miss an edge).
async fn wait_writable(s: &std::net::TcpStream) -> std::io::Result<()> {
    let dup = s.try_clone()?;
    // SAFETY: as in `register_readable`, for the duplicate descriptor.
    let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(dup, tokio::io::Interest::WRITABLE) }
        .map_err(std::io::Error::from)?;
    let _ready = fd.writable().await?;
    Ok(())
}

/// One direction of `pump`. On EOF the destination's write side is shut; on an
/// error both sockets are shut so the other direction ends too.
async fn one_way(from: &Fd, to: &Fd) -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    let mut buf = vec![0u8; 16 * 1024];
    let result: std::io::Result<()> = async {
        loop {
            let n = loop {
                let mut guard = from.readable().await?;
                match guard.try_io(|s| s.get_ref().read(&mut buf)) {
                    Ok(Ok(n)) => {
                        if n > 0 && n < buf.len() {
                            guard.clear_ready();
                        }
                        break n;
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            };
            if n == 0 {
                let _ = to.get_ref().shutdown(Shutdown::Write);
                return Ok(());
            }
            let mut off = 0;
            while off < n {
                match to.get_ref().write(&buf[off..n]) {
                    Ok(w) => off += w,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_writable(to.get_ref()).await?,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    .await;
    if result.is_err() {
        let _ = from.get_ref().shutdown(Shutdown::Both);
        let _ = to.get_ref().shutdown(Shutdown::Both);
    }
    result
}

#[async_trait]
impl DataPath for ProxyDataPath {
    fn kind(&self) -> &'static str {
        "userspace"
    }

    async fn apply(&self, plan: &EndpointPlan) -> Result<(), EndpointError> {
        let routes = &plan.routes;
        let mut to_bind = Vec::new();
        {
            let mut live = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            live.retain(|addr, l| {
                let keep = routes.iter().any(|r| r.listen == *addr);
                if !keep {
                    l.abort();
                    for (_, h) in l.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                        h.abort();
                    }
                }
                keep
            });
            for r in routes {
                match live.get(&r.listen) {
                    Some(l) => {
                        *l.shared.backends.write().unwrap_or_else(|e| e.into_inner()) = r.backends.clone();
                        *l.shared.allowed.write().unwrap_or_else(|e| e.into_inner()) = r.allowed.clone();
                        // As in the kernel path: only a route that leads
                        // somewhere cuts connections to other nodes; a
                        // fenced node loses every connection at once.
                        let leads = r.exclusive && !r.backends.is_empty();
                        if leads || !plan.fenced.is_empty() {
                            let mut open = l.shared.conns.lock().unwrap_or_else(|e| e.into_inner());
                            open.retain(|(backend, h)| {
                                let fenced = plan.fenced.iter().any(|f| f.node == *backend);
                                let keep = (!leads || r.backends.contains(backend)) && !fenced;
                                if !keep {
                                    h.abort();
                                }
                                keep && !h.is_finished()
                            });
                        }
                    }
                    None => to_bind.push(r.clone()),
                }
            }
        }
        for r in to_bind {
            // An address someone already listens on is an error, as without
            // `SO_REUSEPORT` (another process of the same user could
            // otherwise share it silently).
            drop(
                std::net::TcpListener::bind(r.listen)
                    .map_err(|source| EndpointError::Bind { addr: r.listen, source })?,
            );
            let sockets = self
                .loops
                .iter()
                .map(|_| reuseport_listener(r.listen))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| EndpointError::Bind { addr: r.listen, source })?;
            let shared = Shared {
                backends: Arc::new(RwLock::new(r.backends.clone())),
                allowed: Arc::new(RwLock::new(r.allowed.clone())),
                conns: Arc::default(),
                next: Arc::default(),
                counters: self.counters.clone(),
            };
            let tasks = sockets
                .into_iter()
                .zip(self.loops.iter())
                .map(|(socket, event_loop)| {
                    let shared = shared.clone();
                    event_loop.spawn(async move {
                        match TcpListener::from_std(socket) {
                            Ok(listener) => accept_loop(listener, shared).await,
                            Err(e) => tracing::error!(error = %e, "cannot register endpoint listener"),
                        }
                    })
                })
                .collect();
            self.listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(r.listen, Listener { shared, tasks });
        }
        Ok(())
    }

    async fn accepted(&self) -> Result<Vec<(SocketAddrV4, u64)>, EndpointError> {
        let accepted = self.counters.accepted.lock().unwrap_or_else(|e| e.into_inner());
        Ok(accepted.iter().map(|(&a, &n)| (a, n)).collect())
    }

    async fn refusals(&self) -> Result<Vec<RefusalCount>, EndpointError> {
        let refused = self.counters.refused.lock().unwrap_or_else(|e| e.into_inner());
        Ok(refused
            .iter()
            .map(|(&(target, source), &count)| RefusalCount { target, source, count })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Route;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback address nothing listens on.
    fn free_listen() -> SocketAddrV4 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        format!("127.0.0.1:{port}").parse().unwrap()
    }

    fn plan(routes: Vec<Route>) -> EndpointPlan {
        EndpointPlan {
            routes,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn refused_sources_are_counted_per_endpoint() {
        let backend = echo_server(b'x').await;
        let listen = free_listen();
        let p = ProxyDataPath::new();
        p.apply(&plan(vec![Route {
            listen,
            backends: vec![backend],
            exclusive: false,
            allowed: vec!["127.0.0.2/32".parse().unwrap()],
        }]))
        .await
        .unwrap();
        let from = |src: &'static str| async move {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
            let mut s = sock.connect(listen.into()).await.unwrap();
            let mut b = [0u8; 1];
            matches!(s.read(&mut b).await, Ok(1))
        };
        assert!(from("127.0.0.2").await);
        assert!(!from("127.0.0.3").await);
        assert!(!from("127.0.0.3").await);
        let got = p.refusals().await.unwrap();
        assert_eq!(
            got,
            vec![RefusalCount {
                target: listen,
                source: "127.0.0.3".parse().unwrap(),
                count: 2
            }]
        );
    }

    async fn echo_server(tag: u8) -> SocketAddrV4 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = match l.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let _ = s.write_all(&[tag]).await;
                });
            }
        });
        addr
    }

    async fn first_byte(addr: SocketAddrV4) -> Option<u8> {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let mut b = [0u8; 1];
        match s.read(&mut b).await {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }

    #[tokio::test]
    async fn proxies_round_robin_and_follows_changes() {
        let a = echo_server(b'a').await;
        let b = echo_server(b'b').await;
        // A free port on a non-default loopback address.
        let listen = free_listen();
        let p = ProxyDataPath::new();
        p.apply(&plan(vec![Route {
            listen,
            backends: vec![a, b],
            exclusive: true,
            allowed: crate::loopback_only(),
        }]))
        .await
        .unwrap();
        let mut seen = vec![first_byte(listen).await.unwrap(), first_byte(listen).await.unwrap()];
        seen.sort();
        assert_eq!(seen, vec![b'a', b'b']);
        p.apply(&plan(vec![Route {
            listen,
            backends: vec![b],
            exclusive: true,
            allowed: crate::loopback_only(),
        }]))
        .await
        .unwrap();
        assert_eq!(first_byte(listen).await, Some(b'b'));
        p.apply(&EndpointPlan::default()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(first_byte(listen).await, None);
    }

    /// A backend that sends `tag` and keeps the connection open.
    async fn holding_server(tag: u8) -> SocketAddrV4 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = match l.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let _ = s.write_all(&[tag]).await;
                held.push(s);
            }
        });
        addr
    }

    #[tokio::test]
    async fn exclusive_routes_cut_connections_to_old_backends() {
        let a = holding_server(b'a').await;
        let b = holding_server(b'b').await;
        let listen = free_listen();
        let p = ProxyDataPath::new();
        p.apply(&plan(vec![Route {
            listen,
            backends: vec![a],
            exclusive: true,
            allowed: crate::loopback_only(),
        }]))
        .await
        .unwrap();
        let mut client = TcpStream::connect(listen).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).await.unwrap(), 1);
        assert_eq!(buf[0], b'a');
        // The writer moves to b: the connection to a is cut, new ones reach b.
        p.apply(&plan(vec![Route {
            listen,
            backends: vec![b],
            exclusive: true,
            allowed: crate::loopback_only(),
        }]))
        .await
        .unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), client.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "old connection must be closed, got {n:?}");
        assert_eq!(first_byte(listen).await, Some(b'b'));
    }

    #[tokio::test]
    async fn large_transfers_and_half_close_survive_the_proxy() {
        // An echo server that answers everything, then closes when the client does.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo = match l.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        let listen = free_listen();
        let p = ProxyDataPath::new();
        p.apply(&plan(vec![Route {
            listen,
            backends: vec![echo],
            exclusive: false,
            allowed: crate::loopback_only(),
        }]))
        .await
        .unwrap();
        let client = TcpStream::connect(listen).await.unwrap();
        let (mut r, mut w) = client.into_split();
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(20), r.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes changed in transit");
    }
}
