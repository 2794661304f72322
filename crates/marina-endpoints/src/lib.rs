//! Endpoints: the stable writer/reader addresses of clusters and the data paths
//! that carry client connections to nodes.
//!
//! A data path is told the complete desired set of routes every time (`apply`);
//! it never receives deltas, so applying the same set twice is a no-op and a
//! restarted control plane converges by applying once. Two data paths exist:
//! - `NftDataPath` (kernel): one nftables table with DNAT rules in the `output`
//!   hook, replaced atomically by one `nft -f` transaction per apply. It also
//!   guards node ports (`NodeGuard`): only the listed uids (Marina and the
//!   cluster's own nodes) may connect to them directly.
//! - `ProxyDataPath` (userspace): a TCP listener per endpoint address in the
//!   control plane, copying bytes to a backend chosen round-robin. It has no
//!   way to guard node ports (see the README's security section).
//!
//! Both count the connections they refuse by target and source (`refusals`);
//! the control plane turns the counts into log lines and metrics.

mod nft;
mod proxy;

pub use nft::NftDataPath;
pub use proxy::ProxyDataPath;

use std::net::SocketAddrV4;

use async_trait::async_trait;

/// One endpoint: connections to `listen` go to one of `backends`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The stable endpoint address.
    pub listen: SocketAddrV4,
    /// Node addresses; several means round-robin. Empty means refuse.
    pub backends: Vec<SocketAddrV4>,
    /// Established connections to a node that is no longer a backend are cut
    /// when the route changes (the writer: clients must never keep writing to
    /// an old primary through the endpoint).
    pub exclusive: bool,
    /// Source networks a new connection may come from (security groups);
    /// empty admits nobody.
    pub allowed: Vec<ipnet::Ipv4Net>,
}

/// Direct connections to a cluster's node ports are only for the cluster's own
/// nodes (replication) and the control plane, identified by socket owner uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGuard {
    /// The address the nodes listen on.
    pub host: std::net::Ipv4Addr,
    /// The cluster's node ports.
    pub ports: Vec<u16>,
    /// Socket owners on this machine allowed to connect directly (none: no
    /// rule on this machine's own connections).
    pub uids: Vec<u32>,
    /// Machines allowed to connect from elsewhere — on an agent host, the
    /// fleet's hosts and its control plane; none: no rule on incoming
    /// connections. Connections through an endpoint (DNATed here, or
    /// masqueraded by another host's endpoint, which is a fleet host) pass.
    pub peers: Vec<ipnet::Ipv4Net>,
}

/// Everything a data path carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPlan {
    pub routes: Vec<Route>,
    pub guards: Vec<NodeGuard>,
    /// Nodes cut off at the data path (see `Fence`).
    pub fenced: Vec<Fence>,
    /// Who passes the fence of a node the control plane manages over TCP.
    pub control_plane: ControlPlane,
}

/// The control plane as a fence sees it: a fenced node on another host is
/// managed over TCP (probes, the rejoin that ends its fence), so the control
/// plane's own connections pass — by socket owner on its host, by address
/// on the node's host and in between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlPlane {
    pub uids: Vec<u32>,
    pub addrs: Vec<std::net::Ipv4Addr>,
}

/// A node cut off at the data path (an old primary during and after a
/// failover, until it follows the new one): every TCP packet to its port is
/// answered with a reset and every packet from it is dropped — clients,
/// replicas and a process that resumes after a freeze alike — and, when the
/// fence is new, client connections already open to it through its writer
/// endpoint are closed at once (kernel: local sockets destroyed; userspace:
/// proxied connections cut), so no client waits on a hung node for a timeout. The control plane manages nodes
/// over their unix sockets, which a fence does not touch — or, for a node on
/// another host (`remote`), over TCP, which passes (`ControlPlane`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    /// The node's address.
    pub node: SocketAddrV4,
    /// The control plane manages the node over TCP (it runs elsewhere).
    pub remote: bool,
    /// The writer endpoint whose established connections lead to the node
    /// (its cluster's, while that leads nowhere during the failover).
    pub writer: Option<SocketAddrV4>,
}

/// Connections refused at `target` (an endpoint or a guarded node port) from
/// `source`, counted since the data path was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalCount {
    pub target: SocketAddrV4,
    pub source: std::net::IpAddr,
    /// Refused attempts (for dropped node-port connections: SYN packets).
    pub count: u64,
}

/// Whether a new connection from `source` is admitted by `allowed`.
pub fn admits(allowed: &[ipnet::Ipv4Net], source: std::net::IpAddr) -> bool {
    let v4 = match source {
        std::net::IpAddr::V4(v4) => Some(v4),
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    v4.is_some_and(|v4| allowed.iter().any(|n| n.contains(&v4)))
}

/// The loopback network: who may connect when no security group is attached.
pub fn loopback_only() -> Vec<ipnet::Ipv4Net> {
    vec!["127.0.0.0/8".parse().expect("valid network")]
}

/// Endpoint failures.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("nft failed: {0}")]
    Nft(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddrV4, source: std::io::Error },
}

/// A way to carry endpoint traffic.
#[async_trait]
pub trait DataPath: Send + Sync + 'static {
    /// `kernel` or `userspace`.
    fn kind(&self) -> &'static str;
    /// Makes the live routes and guards exactly `plan`'s.
    async fn apply(&self, plan: &EndpointPlan) -> Result<(), EndpointError>;
    /// Cumulative refused connections by target and source.
    async fn refusals(&self) -> Result<Vec<RefusalCount>, EndpointError>;
    /// Cumulative connections admitted to an endpoint with a backend, by
    /// endpoint address.
    async fn accepted(&self) -> Result<Vec<(SocketAddrV4, u64)>, EndpointError>;
    /// Destroys this host's TCP sockets connected to `peer` (a fenced node):
    /// whoever waits on one sees it fail at once. Both data paths use the
    /// kernel's socket destruction (replication sockets are the nodes' own).
    async fn close_connections_to(&self, peer: SocketAddrV4) {
        nft::close_connections_to(peer).await
    }
}

/// Whether this process may change nftables (the `auto` mode's test).
pub async fn kernel_available() -> bool {
    match tokio::process::Command::new("nft")
        .arg("list")
        .arg("tables")
        .output()
        .await
    {
        Ok(out) => out.status.success(),
        Err(_) => false,
    }
}
