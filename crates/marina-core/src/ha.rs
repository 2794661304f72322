//! HA services for handlers: the `/status` view, load-balancer health checks,
//! switchover/failover requests and the failover-mode patch.

use marina_common::Error;
use marina_common::model::*;

use crate::Marina;
use crate::monitor::StatusView;
use crate::monitor::view::{NodeStatusView, Probes};

impl Marina {
    /// The latest probes of every node of a cluster.
    pub async fn cluster_status(&self, tenant_id: &str, id: &str) -> Result<StatusView, Error> {
        let (c, nodes) = self.get_cluster(tenant_id, id).await?;
        Ok(self.status_view(c, &nodes))
    }

    /// The monitor's latest probes of a cluster's nodes (already read).
    pub fn status_view(&self, c: ClusterRecord, nodes: &[NodeRecord]) -> StatusView {
        let mut checked_at: Option<String> = None;
        let primary_pos = nodes
            .iter()
            .find(|n| n.role == NodeRole::Primary)
            .and_then(|p| self.monitor.node(&p.id))
            .filter(|h| h.reachable)
            .and_then(|h| h.probe.map(|p| p.gtid_binlog_pos));
        let views = nodes
            .iter()
            .map(|n| {
                let probes = match self.monitor.node(&n.id) {
                    Some(h) => {
                        if checked_at.as_deref().is_none_or(|c| h.checked_at.as_str() > c) {
                            checked_at = Some(h.checked_at.clone());
                        }
                        h.probes(primary_pos.as_deref())
                    }
                    None => Probes {
                        reachable: false,
                        writable: false,
                        replication_io: None,
                        replication_sql: None,
                        lag_seconds: None,
                        lag_transactions: None,
                        gtid_position: None,
                        semisync: None,
                        latency_ms: None,
                        error: Some("not probed yet".into()),
                    },
                };
                let disk = self.monitor.node_disk(&n.id);
                NodeStatusView {
                    node_id: n.id.clone(),
                    role: n.role,
                    status: n.status,
                    status_reason: n.status_reason.clone().or_else(|| self.monitor.disk_limited(&c.id)),
                    probes,
                    host_probe: self.agents.host_views.node(&n.id).map(Into::into),
                    disk: disk.map(|d| crate::monitor::view::DiskView {
                        used_bytes: d.used_bytes,
                        quota_bytes: d.quota_bytes,
                        percent: (d.percent() * 10.0).round() / 10.0,
                    }),
                }
            })
            .collect();
        StatusView {
            cluster_id: c.id,
            status: c.status,
            checked_at,
            nodes: views,
        }
    }

    /// Whether a node is the writable primary (`want_primary`) or a healthy
    /// replica, from the monitor's latest view — no MariaDB round trip.
    /// `tenant_id: None` is the unauthenticated mode (`--public-health-checks`).
    pub async fn health_check(
        &self,
        tenant_id: Option<&str>,
        cluster_id: &str,
        node_id: &str,
        want_primary: bool,
    ) -> Result<bool, Error> {
        let c = self
            .store
            .get_cluster(tenant_id, cluster_id)
            .await?
            .ok_or_else(|| Error::not_found("cluster", cluster_id))?;
        let nodes = self.store.list_nodes(&c.id).await?;
        let n = nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| Error::not_found("node", node_id))?;
        let Some(h) = self.monitor.node(&n.id) else {
            return Ok(false);
        };
        Ok(if want_primary {
            n.role == NodeRole::Primary && h.is_writable() && !c.writer_paused && c.status != ClusterStatus::FailingOver
        } else {
            n.role == NodeRole::Replica && h.is_replicating()
        })
    }

    /// A cluster named (or with the id) `name` among `tenant`'s clusters, or
    /// among all tenants' when `tenant` is `None` — then only a name no two
    /// tenants share resolves.
    pub async fn cluster_by_name(&self, tenant: Option<&str>, name: &str) -> Result<Option<ClusterRecord>, Error> {
        if let Some(c) = self.store.get_cluster(tenant, name).await? {
            return Ok(Some(c));
        }
        let mut found = self
            .store
            .live_clusters()
            .await?
            .into_iter()
            .filter(|c| c.name == name && tenant.is_none_or(|t| t == c.tenant_id));
        Ok(match (found.next(), found.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        })
    }

    /// A cluster's node by id, by `host:port`, or by `host` and `port`.
    pub async fn node_by_name(
        &self,
        c: &ClusterRecord,
        server: &str,
        port: Option<u16>,
    ) -> Result<Option<NodeRecord>, Error> {
        let (host, port) = match port {
            Some(p) => (server, Some(p)),
            None => match server.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()),
                None => (server, None),
            },
        };
        Ok(self.store.list_nodes(&c.id).await?.into_iter().find(|n| {
            n.id == server || (port == Some(n.port) && (n.host == host || host == "localhost" && n.host == "127.0.0.1"))
        }))
    }

    /// A probing connection to a node (benchmarks and tools).
    pub async fn probe_conn_for(&self, node_id: &str) -> Result<marina_engine::probe::ProbeConn, Error> {
        let node = self
            .store
            .all_nodes()
            .await?
            .into_iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| Error::not_found("node", node_id))?;
        let c = self
            .store
            .get_cluster(None, &node.cluster_id)
            .await?
            .ok_or_else(|| Error::not_found("cluster", &node.cluster_id))?;
        let secrets = self.cluster_secrets(&c)?;
        Ok(marina_engine::probe::ProbeConn::new(self.mgmt_addr(&node, &secrets)))
    }

    /// `PATCH /v1/clusters/{id}`.
    pub async fn patch_cluster(
        &self,
        tenant_id: &str,
        id: &str,
        input: PatchClusterInput,
    ) -> Result<(ClusterRecord, Vec<NodeRecord>), Error> {
        let c = self.cluster(tenant_id, id).await?;
        // Everything is checked before anything changes.
        let policy = match &input.backup_policy {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(v) => Some(Some(crate::backup_schedule::check_policy(v)?)),
        };
        if let Some(sgs) = &input.security_group_ids {
            self.check_security_groups(tenant_id, sgs).await?;
        }
        if let Some(policy) = policy {
            self.set_backup_policy(&c, policy.as_ref()).await?;
        }
        if let Some(sgs) = &input.security_group_ids {
            self.store.set_cluster_security_groups(&c.id, sgs).await?;
            self.reconcile.notify_one();
        }
        if let Some(on) = input.failover.as_ref().and_then(|f| f.auto_reseed)
            && on != c.auto_reseed
        {
            self.store.set_auto_reseed(&c.id, on).await?;
        }
        if let Some(f) = input.failover
            && f.mode != c.failover_mode
        {
            self.store.set_failover_mode(&c.id, f.mode).await?;
            // In automatic mode Marina owns the primary's read_only again.
            if f.mode == FailoverMode::Automatic && c.primary_read_only {
                self.store.set_primary_read_only(&c.id, false).await?;
            }
            self.event(
                tenant_id,
                &c.id,
                None,
                "failover_mode",
                format!("failover mode set to {}", f.mode),
            )
            .await;
        }
        self.get_cluster(tenant_id, id).await
    }

    /// `POST …/failover`: a forced failover.
    pub async fn request_failover(&self, tenant_id: &str, id: &str, input: PromoteInput) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, id).await?;
        self.start_failover(&c, input.target_node_id.as_deref(), true).await
    }

    /// `POST …/switchover`.
    pub async fn request_switchover(&self, tenant_id: &str, id: &str, input: PromoteInput) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, id).await?;
        self.start_switchover(&c, input.target_node_id.as_deref()).await
    }
}
