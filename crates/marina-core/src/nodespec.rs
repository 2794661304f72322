//! Builds what the runtime and the engine need for one node from the stored
//! cluster and node, the cluster's (decrypted) secrets and the configuration.

use marina_common::Error;
use marina_common::model::{ClusterRecord, ClusterSecrets, NodeRecord, Replication};
use marina_engine::cnf::NodeConfig;
use marina_engine::users::{AccountHashes, MGMT_USER, REPL_USER, init_sql_for, native_password_hash};
use marina_engine::{NodeAddr, ReplicaSource};
use marina_runtime::NodeSpec;

use crate::Marina;

impl Marina {
    /// Decrypts a cluster's secrets.
    pub(crate) fn cluster_secrets(&self, c: &ClusterRecord) -> Result<ClusterSecrets, Error> {
        let plain = self
            .secrets
            .open_sealed(&c.secrets_enc, crate::secrets::SealedFor::Cluster(&c.id))?;
        serde_json::from_slice(&plain).map_err(|e| Error::internal(format!("cluster secrets: {e}")))
    }

    /// Seals a cluster's secrets for its row in the store.
    pub(crate) fn seal_cluster_secrets(&self, cluster_id: &str, s: &ClusterSecrets) -> Result<String, Error> {
        Ok(self.secrets.seal(
            &serde_json::to_vec(s).map_err(Error::internal)?,
            crate::secrets::SealedFor::Cluster(cluster_id),
        ))
    }

    /// Replaces a cluster's stored secrets.
    pub(crate) async fn store_cluster_secrets(&self, cluster_id: &str, s: &ClusterSecrets) -> Result<(), Error> {
        let sealed = self.seal_cluster_secrets(cluster_id, s)?;
        Ok(self.store.set_cluster_secrets(cluster_id, &sealed).await?)
    }

    /// How Marina logs in to a node.
    pub(crate) fn mgmt_addr(&self, node: &NodeRecord, s: &ClusterSecrets) -> NodeAddr {
        // A node on this machine is managed through its socket; one on an
        // agent host over TCP at its address.
        let socket = self.on_local_host(node.host_id.as_deref()).then(|| {
            self.runtime
                .node_dir(&node.id)
                .join("mariadbd.sock")
                .display()
                .to_string()
        });
        NodeAddr {
            host: node.host.clone(),
            port: node.port,
            user: MGMT_USER.into(),
            password: s.mgmt_password.clone(),
            socket,
        }
    }

    /// What a replica connects to when `primary` is its source.
    pub(crate) fn replica_source(&self, primary: &NodeRecord, s: &ClusterSecrets) -> ReplicaSource {
        ReplicaSource {
            host: primary.host.clone(),
            port: primary.port,
            user: REPL_USER.into(),
            password: s.repl_password.clone(),
        }
    }

    /// The uid a cluster's nodes run as, when they run unprivileged: the base
    /// plus the low 24 bits of the writer endpoint address, which is unique
    /// among live clusters and fixed for the cluster's life.
    pub(crate) fn cluster_uid(&self, c: &ClusterRecord) -> Option<u32> {
        if self.config.nodes.run_as_root || !self.runtime.runs_unprivileged() {
            return None;
        }
        let ip: std::net::Ipv4Addr = c.writer_host.parse().ok()?;
        self.config
            .nodes
            .cluster_uid_base
            .checked_add(u32::from(ip) & 0x00ff_ffff)
    }

    /// The runtime's view of a node.
    pub(crate) fn node_spec(
        &self,
        c: &ClusterRecord,
        node: &NodeRecord,
        s: &ClusterSecrets,
    ) -> Result<NodeSpec, Error> {
        let size = self
            .size(&node.size_id)
            .ok_or_else(|| Error::internal(format!("node {} has unknown size {}", node.id, node.size_id)))?;
        let config = NodeConfig {
            node_dir: self.runtime.node_dir(&node.id),
            bind_address: node.host.clone(),
            port: node.port,
            server_id: node.server_id,
            buffer_pool_bytes: size.buffer_pool_bytes(),
            max_connections: size.max_connections(),
            semisync: c.replication.semisync(),
            semisync_timeout_ms: match c.replication {
                Replication::SemisyncStrict => marina_engine::cnf::STRICT_SEMISYNC_TIMEOUT_MS,
                _ => self.config.nodes.semisync_timeout_ms,
            },
            starts_as_replica: node.role == marina_common::model::NodeRole::Replica,
            run_uid: self.cluster_uid(c),
        };
        let hashes = AccountHashes {
            mgmt: native_password_hash(&s.mgmt_password),
            repl: native_password_hash(&s.repl_password),
            admin: s.admin_hash.clone(),
        };
        Ok(NodeSpec {
            node_id: node.id.clone(),
            config,
            init_sql: init_sql_for(
                &hashes,
                &self
                    .config
                    .hosts
                    .network
                    .iter()
                    .map(|n| (n.network(), n.netmask()))
                    .collect::<Vec<_>>(),
            ),
            version: c.version.clone(),
            limits: marina_runtime::cgroup::Limits {
                memory_bytes: size.memory_bytes(),
                cpus: size.vcpu,
            },
            mgmt: self.mgmt_addr(node, s),
        })
    }
}
