//! The agent API's bodies (documented in its OpenAPI, `docs/agent-openapi.json`).
//!
//! A node's spec crosses without anything that names a path on the agent's
//! host: the agent puts each node under its own node directory, and the
//! readiness login goes through that node's socket there.

use std::path::Path;

use marina_engine::NodeAddr;
use marina_engine::cnf::NodeConfig;
use marina_runtime::NodeSpec;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The header every call carries: the control plane's epoch (its leader's
/// fencing token). The agent refuses one older than the largest it has seen.
pub const EPOCH_HEADER: &str = "x-marina-epoch";

/// The epoch a control plane without leader election sends (issue 24 hands
/// out growing ones).
pub const CONSTANT_EPOCH: u64 = 1;

/// The agent API's version, in `GET /v1/host`.
pub const API_VERSION: u32 = 1;

/// One node to prepare, start or resize.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpecBody {
    pub bind_address: String,
    pub port: u16,
    pub server_id: u32,
    pub buffer_pool_bytes: u64,
    pub max_connections: u32,
    pub semisync: bool,
    pub semisync_timeout_ms: u64,
    pub starts_as_replica: bool,
    /// The cluster's unprivileged uid, used where the agent runs nodes
    /// unprivileged.
    pub run_uid: Option<u32>,
    /// The init file: account hashes only.
    pub init_sql: String,
    pub version: String,
    /// The management account the agent checks readiness with.
    pub mgmt_user: String,
    pub mgmt_password: String,
    pub memory_bytes: u64,
    pub cpus: u32,
}

marina_common::debug_redacted!(NodeSpecBody { bind_address, port, server_id, version } redact { init_sql, mgmt_password });

impl NodeSpecBody {
    /// The body for `spec` (its paths stay on this side).
    pub fn from_spec(spec: &NodeSpec) -> Self {
        let c = &spec.config;
        NodeSpecBody {
            bind_address: c.bind_address.clone(),
            port: c.port,
            server_id: c.server_id,
            buffer_pool_bytes: c.buffer_pool_bytes,
            max_connections: c.max_connections,
            semisync: c.semisync,
            semisync_timeout_ms: c.semisync_timeout_ms,
            starts_as_replica: c.starts_as_replica,
            run_uid: c.run_uid,
            init_sql: spec.init_sql.clone(),
            version: spec.version.clone(),
            mgmt_user: spec.mgmt.user.clone(),
            mgmt_password: spec.mgmt.password.clone(),
            memory_bytes: spec.limits.memory_bytes,
            cpus: spec.limits.cpus,
        }
    }

    /// The spec of node `node_id` living in `node_dir` on the agent's host.
    pub fn into_spec(self, node_id: &str, node_dir: &Path, unprivileged: bool) -> NodeSpec {
        let socket = node_dir.join("mariadbd.sock").display().to_string();
        NodeSpec {
            node_id: node_id.to_string(),
            config: NodeConfig {
                node_dir: node_dir.to_path_buf(),
                bind_address: self.bind_address.clone(),
                port: self.port,
                server_id: self.server_id,
                buffer_pool_bytes: self.buffer_pool_bytes,
                max_connections: self.max_connections,
                semisync: self.semisync,
                semisync_timeout_ms: self.semisync_timeout_ms,
                starts_as_replica: self.starts_as_replica,
                run_uid: self.run_uid.filter(|_| unprivileged),
            },
            init_sql: self.init_sql,
            version: self.version,
            mgmt: NodeAddr {
                host: self.bind_address,
                port: self.port,
                user: self.mgmt_user,
                password: self.mgmt_password,
                socket: Some(socket),
            },
            limits: marina_runtime::cgroup::Limits {
                memory_bytes: self.memory_bytes,
                cpus: self.cpus,
            },
        }
    }
}

/// `GET /v1/host`: the host's facts, the agent's heartbeat answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostFacts {
    /// The host id its certificate names.
    pub host_id: String,
    pub version: String,
    pub api_version: u32,
    /// The MariaDB version new nodes get.
    pub default_version: String,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub cpus: u32,
    /// Whether nodes run under their cluster's uid.
    pub unprivileged: bool,
    /// Where the agent keeps its nodes.
    pub nodes_dir: String,
    /// The largest control-plane epoch it has seen.
    pub epoch: u64,
    /// How the agent limits nodes' CPU and memory.
    pub limits: String,
    /// A digest of the self-fencing plan it holds (none: no plan yet).
    pub fencing_digest: Option<String>,
    /// A digest of the endpoint plan it applied last (none: none yet).
    pub endpoints_digest: Option<String>,
    /// Whether it programs endpoints (`marina agent --endpoints kernel`).
    pub serves_endpoints: bool,
}

/// `POST /v1/nodes/{id}/start`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct Started {
    pub pid: u32,
}

/// `GET /v1/nodes/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeState {
    /// The node's pid while it runs.
    pub pid: Option<u32>,
}

/// `GET /v1/nodes/{id}/disk-usage`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct DiskUsage {
    pub bytes: u64,
}

/// `POST /v1/nodes/{id}/stop`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    /// SIGTERM, then SIGKILL after this long.
    pub grace_ms: u64,
}

/// `GET /v1/nodes/{id}/exit`: answered when the node's process exits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct Exited {
    /// False when no process of the node ran to be watched.
    pub exited: bool,
}

/// `GET /v1/nodes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    pub node_ids: Vec<String>,
}

/// Every error: the main API's shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `stale_epoch`, `invalid_request`, `not_found`, `binary_missing`,
    /// `exited`, `timed_out`, `port_in_use`, `template`, `root_nodes`, `io`.
    pub code: String,
    pub message: String,
}

/// The digest both sides compare for a plan the control plane sends
/// (SHA-256 of its JSON), which the agent reports back in `HostFacts`.
pub fn digest<T: Serialize>(plan: &T) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(serde_json::to_vec(plan).unwrap_or_default()))
}

/// Whether `id` may name a node on the agent (it becomes a directory name).
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_that_cannot_leave_the_nodes_dir() {
        for ok in ["nd_0123456789abcdef", "nd_rt_test_one", "x"] {
            assert!(valid_node_id(ok), "{ok}");
        }
        for bad in ["", "..", "nd/../x", "ND_x", "nd x", "nd-x", &"a".repeat(65), "nd\0"] {
            assert!(!valid_node_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_spec_crosses_without_paths_and_lands_under_the_agents_dir() {
        let body = NodeSpecBody {
            bind_address: "198.51.100.11".into(),
            port: 3307,
            server_id: 7,
            buffer_pool_bytes: 1 << 27,
            max_connections: 50,
            semisync: true,
            semisync_timeout_ms: 1000,
            starts_as_replica: true,
            run_uid: Some(1_599_000_001),
            init_sql: "-- hashes".into(),
            version: "10.11".into(),
            mgmt_user: "marina_mgmt".into(),
            mgmt_password: "pw".into(),
            memory_bytes: 1 << 30,
            cpus: 1,
        };
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains('/'), "no path crosses: {json}");
        let spec = body.clone().into_spec("nd_a", Path::new("/agent/nodes/nd_a"), false);
        assert_eq!(spec.config.node_dir, Path::new("/agent/nodes/nd_a"));
        assert_eq!(spec.mgmt.socket.as_deref(), Some("/agent/nodes/nd_a/mariadbd.sock"));
        assert_eq!(spec.config.run_uid, None, "a privileged agent runs nodes as itself");
        let back = NodeSpecBody::from_spec(&spec);
        assert_eq!((back.port, back.server_id, back.starts_as_replica), (3307, 7, true));
        assert_eq!(
            body.into_spec("nd_a", Path::new("/n"), true).config.run_uid,
            Some(1_599_000_001)
        );
    }
}
