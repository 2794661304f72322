//! Node lifecycle services: adding and removing nodes, and the per-node
//! actions (stop, start, reboot, maintenance, read-only). Each validates the
//! request, then records one operation on the cluster (the work is in
//! `operations/add_node.rs`, `remove_node.rs` and `node_action.rs`).
//!
//! Rules:
//! - One operation at a time per cluster: a request while another runs is 409
//!   `conflict` naming it (nothing is queued behind the caller's back).
//! - Node actions need a serving cluster (`active` or `degraded`); the cluster
//!   is `updating` while they run.
//! - The primary is never stopped or put in maintenance (switch over first);
//!   removing or rebooting it switches over first (a reboot may be `force`d
//!   in place). The last node is never removed (delete the cluster).
//! - `read-only` toggles the primary's `read_only` in `manual` failover mode
//!   only: in `automatic` mode Marina owns it (a read-only primary would be
//!   "repaired" or failed over). Replicas are always read-only.

use std::collections::HashSet;

use marina_common::model::*;
use marina_common::{Error, ids, time_fmt};

use crate::Marina;
use crate::operations::{new_operation, new_operation_with_switchover};
use crate::placement;

/// Cluster statuses from which a node operation may start.
pub(crate) const SERVING: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded];

/// How often an insert is retried when another request took the same port.
const PORT_ATTEMPTS: usize = 8;

impl Marina {
    /// Records `op` on cluster `c` (status `updating`), or explains the 409:
    /// the running operation by id, or the cluster's status.
    pub(crate) async fn begin_node_operation(&self, c: &ClusterRecord, op: &Operation) -> Result<(), Error> {
        if self
            .store
            .begin_cluster_operation(&c.id, SERVING, ClusterStatus::Updating, op)
            .await?
        {
            self.work.notify_one();
            return Ok(());
        }
        Err(self.busy(&c.id).await)
    }

    /// The operation running on a cluster, if any.
    pub async fn running_operation(&self, cluster_id: &str) -> Result<Option<Operation>, Error> {
        Ok(self
            .store
            .unfinished_operations()
            .await?
            .into_iter()
            .find(|o| o.cluster_id.as_deref() == Some(cluster_id)))
    }

    /// The 409 for a cluster that cannot take an operation now.
    pub(crate) async fn busy(&self, cluster_id: &str) -> Error {
        let running = self.running_operation(cluster_id).await.ok().flatten();
        match running {
            Some(o) => Error::Conflict(format!(
                "cluster {cluster_id} has operation {} ({}) running; retry when it has finished",
                o.id, o.op_type
            )),
            None => match self.store.get_cluster(None, cluster_id).await {
                Ok(Some(c)) => Error::Conflict(format!(
                    "cluster {cluster_id} is {}; nodes are changed in an active or degraded cluster",
                    c.status
                )),
                _ => Error::not_found("cluster", cluster_id),
            },
        }
    }

    /// The name of the caller's tenant.
    pub async fn tenant_name(&self, tenant_id: &str) -> Result<String, Error> {
        Ok(self
            .store
            .get_tenant(tenant_id)
            .await?
            .ok_or_else(|| Error::not_found("tenant", tenant_id))?
            .name)
    }

    /// A node of a cluster, or 404.
    pub async fn cluster_node(&self, c: &ClusterRecord, node_id: &str) -> Result<NodeRecord, Error> {
        self.store
            .list_nodes(&c.id)
            .await?
            .into_iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| Error::not_found("node", node_id))
    }

    /// `POST /v1/clusters/{cluster_id}/nodes`: a new replica, cloned from a
    /// live node.
    pub async fn add_node(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        input: AddNodeInput,
    ) -> Result<(NodeRecord, Operation), Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let size_id = input.size_id.unwrap_or_else(|| c.size_id.clone());
        let size = self
            .size(&size_id)
            .cloned()
            .ok_or_else(|| Error::InvalidRequest(format!("unknown size_id {size_id:?}")))?;
        if !SERVING.contains(&c.status) {
            return Err(self.busy(&c.id).await);
        }
        let nodes = self.store.list_nodes(&c.id).await?;
        if nodes.len() as u32 >= crate::clusters::MAX_NODES {
            return Err(Error::Conflict(format!(
                "cluster {} already has {} nodes, the most a cluster may have",
                c.name,
                nodes.len()
            )));
        }
        self.check_capacity(size.memory).await?;
        self.check_quota(tenant_id, 0, 1, size.memory).await?;
        // An added node goes where the cluster has fewest nodes, sharing a
        // host only when no other has room.
        let placed = self
            .place(1, &size, &nodes, Some(Placement::BestEffort), false)
            .await?
            .pop()
            .ok_or_else(|| Error::internal("placement returned no host"))?;
        let (node, op) = self
            .record_replica(&c, &size, &nodes, &placed, |node| {
                let mut op = new_operation(tenant_id, OperationType::AddNode, &c.id);
                op.node_id = Some(node.id.clone());
                op
            })
            .await?;
        self.event(
            tenant_id,
            &c.id,
            Some(&node.id),
            "node_adding",
            format!(
                "replica {} ({}) is being added on port {}",
                node.id, node.size_id, node.port
            ),
        )
        .await;
        Ok((node, op))
    }

    /// Records a new replica row of `c` (status `creating`, a free port of
    /// its host reserved) where placement put it, with the operation
    /// `make_op` builds for it; the cluster becomes `updating` in the same
    /// write (409 when it is not serving).
    pub(crate) async fn record_replica(
        &self,
        c: &ClusterRecord,
        size: &marina_common::size::NodeSize,
        nodes: &[NodeRecord],
        placed: &crate::hosts::Placed,
        make_op: impl Fn(&NodeRecord) -> Operation,
    ) -> Result<(NodeRecord, Operation), Error> {
        let ordinal = nodes.iter().map(|n| n.ordinal + 1).max().unwrap_or(0);
        let bind = self.config.nodes.bind_address;
        for _ in 0..PORT_ATTEMPTS {
            let used: HashSet<u16> = self.store.used_ports().await?.into_iter().collect();
            let port = placement::pick_ports(1, self.config.nodes.port_min, self.config.nodes.port_max, &used, |p| {
                std::net::TcpListener::bind((bind, p)).is_ok()
            })
            .and_then(|p| p.first().copied())
            .ok_or_else(|| Error::CapacityExceeded("no free node port left in the configured range".into()))?;
            let now = time_fmt::now_rfc3339();
            let node = NodeRecord {
                id: ids::new_id(ids::prefix::NODE),
                cluster_id: c.id.clone(),
                ordinal,
                role: NodeRole::Replica,
                status: NodeStatus::Creating,
                host: placed.address.clone().unwrap_or_else(|| bind.to_string()),
                port,
                size_id: size.id.clone(),
                server_id: ordinal + 1,
                status_reason: None,
                rejoin_gtid: None,
                fenced: false,
                host_id: Some(placed.host_id.clone()),
                zone: Some(placed.zone.clone()),
                created_at: now.clone(),
                updated_at: now,
            };
            let op = make_op(&node);
            match self
                .store
                .begin_add_node(&c.id, SERVING, ClusterStatus::Updating, &node, &op)
                .await
            {
                Ok(true) => {
                    self.work.notify_one();
                    return Ok((node, op));
                }
                Ok(false) => return Err(self.busy(&c.id).await),
                // Another request took the port first: pick again.
                Err(marina_store::StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(
            "too many concurrent node requests; try again".into(),
        ))
    }

    /// `DELETE /v1/clusters/{cluster_id}/nodes/{node_id}`.
    pub async fn remove_node(&self, tenant_id: &str, cluster_id: &str, node_id: &str) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let node = self.cluster_node(&c, node_id).await?;
        let nodes = self.store.list_nodes(&c.id).await?;
        if nodes.len() <= 1 {
            return Err(Error::Conflict(format!(
                "node {node_id} is the last node of cluster {}; delete the cluster instead",
                c.name
            )));
        }
        if !SERVING.contains(&c.status) {
            return Err(self.busy(&c.id).await);
        }
        let op = self
            .operation_moving_primary(&c, &nodes, &node, OperationType::RemoveNode)
            .await?;
        self.begin_node_operation(&c, &op).await?;
        self.event(
            tenant_id,
            &c.id,
            Some(node_id),
            "node_removing",
            format!("node {node_id} ({}) is being removed", node.role),
        )
        .await;
        Ok(op)
    }

    /// An operation of type `t` on `node`; on the primary, it switches over
    /// to an elected replica first (409 when none is eligible).
    async fn operation_moving_primary(
        &self,
        c: &ClusterRecord,
        nodes: &[NodeRecord],
        node: &NodeRecord,
        t: OperationType,
    ) -> Result<Operation, Error> {
        let mut op = if node.role == NodeRole::Primary {
            let target = self.switchover_target(c, nodes, None).await?;
            let mut op = new_operation_with_switchover(&c.tenant_id, t, &c.id);
            op.params = Some(serde_json::json!({ "switchover_to": target }));
            op
        } else {
            new_operation(&c.tenant_id, t, &c.id)
        };
        op.node_id = Some(node.id.clone());
        Ok(op)
    }

    /// `POST …/nodes/{node_id}/stop`: a replica's process stops; its data stays.
    pub async fn stop_node(&self, tenant_id: &str, cluster_id: &str, node_id: &str) -> Result<Operation, Error> {
        let (c, node) = self
            .replica_for_action(tenant_id, cluster_id, node_id, "stopped")
            .await?;
        if node.status == NodeStatus::Stopped {
            return Err(Error::Conflict(format!("node {node_id} is already stopped")));
        }
        self.record_node_action(&c, &node, OperationType::StopNode, None).await
    }

    /// `POST …/nodes/{node_id}/start`: a stopped node starts and rejoins.
    pub async fn start_node(&self, tenant_id: &str, cluster_id: &str, node_id: &str) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let node = self.cluster_node(&c, node_id).await?;
        if node.status != NodeStatus::Stopped {
            return Err(Error::Conflict(format!(
                "node {node_id} is {}; only a stopped node is started",
                node.status
            )));
        }
        self.record_node_action(&c, &node, OperationType::StartNode, None).await
    }

    /// `POST …/nodes/{node_id}/maintenance`.
    pub async fn set_maintenance(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        node_id: &str,
        input: ToggleInput,
    ) -> Result<Operation, Error> {
        let (c, node) = if input.enabled {
            self.replica_for_action(tenant_id, cluster_id, node_id, "put in maintenance")
                .await?
        } else {
            let c = self.cluster(tenant_id, cluster_id).await?;
            let node = self.cluster_node(&c, node_id).await?;
            if node.status != NodeStatus::Maintenance {
                return Err(Error::Conflict(format!("node {node_id} is not in maintenance")));
            }
            (c, node)
        };
        let params = serde_json::json!({ "enabled": input.enabled });
        self.record_node_action(&c, &node, OperationType::SetMaintenance, Some(params))
            .await
    }

    /// `POST …/nodes/{node_id}/read-only`.
    pub async fn set_node_read_only(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        node_id: &str,
        input: ToggleInput,
    ) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let node = self.cluster_node(&c, node_id).await?;
        match node.role {
            NodeRole::Replica if !input.enabled => {
                return Err(Error::Conflict(format!(
                    "node {node_id} is a replica: replicas are always read-only (a writable replica is fenced)"
                )));
            }
            NodeRole::Primary if c.failover_mode == FailoverMode::Automatic => {
                return Err(Error::Conflict(format!(
                    "node {node_id} is the primary and cluster {} has automatic failover: Marina keeps the \
                     primary writable; set failover.mode to manual first to control read_only yourself",
                    c.name
                )));
            }
            _ => {}
        }
        let params = serde_json::json!({ "enabled": input.enabled });
        self.record_node_action(&c, &node, OperationType::SetReadOnly, Some(params))
            .await
    }

    /// `POST …/nodes/{node_id}/reboot`: a clean restart of `mariadbd`; the
    /// primary is switched over first unless `force`.
    pub async fn reboot_node(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        node_id: &str,
        input: RebootInput,
    ) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let node = self.cluster_node(&c, node_id).await?;
        if node.status == NodeStatus::Stopped {
            return Err(Error::Conflict(format!("node {node_id} is stopped; start it instead")));
        }
        if !SERVING.contains(&c.status) {
            return Err(self.busy(&c.id).await);
        }
        let nodes = self.store.list_nodes(&c.id).await?;
        let mut op = if node.role == NodeRole::Primary && !input.force && nodes.len() > 1 {
            self.operation_moving_primary(&c, &nodes, &node, OperationType::RebootNode)
                .await?
        } else {
            let mut op = new_operation(&c.tenant_id, OperationType::RebootNode, &c.id);
            op.node_id = Some(node.id.clone());
            op
        };
        if input.force {
            op.params = Some(serde_json::json!({ "force": true }));
        }
        self.begin_node_operation(&c, &op).await?;
        self.node_action_event(&c, &node, OperationType::RebootNode).await;
        Ok(op)
    }

    /// A replica of a serving cluster for an action that takes it out of
    /// service (`what`: how the message words it).
    async fn replica_for_action(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        node_id: &str,
        what: &str,
    ) -> Result<(ClusterRecord, NodeRecord), Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let node = self.cluster_node(&c, node_id).await?;
        if node.role == NodeRole::Primary {
            return Err(Error::Conflict(format!(
                "node {node_id} is the primary and cannot be {what}; switch over first"
            )));
        }
        Ok((c, node))
    }

    async fn record_node_action(
        &self,
        c: &ClusterRecord,
        node: &NodeRecord,
        t: OperationType,
        params: Option<serde_json::Value>,
    ) -> Result<Operation, Error> {
        let mut op = new_operation(&c.tenant_id, t, &c.id);
        op.node_id = Some(node.id.clone());
        op.params = params;
        self.begin_node_operation(c, &op).await?;
        self.node_action_event(c, node, t).await;
        Ok(op)
    }

    async fn node_action_event(&self, c: &ClusterRecord, node: &NodeRecord, t: OperationType) {
        self.event(
            &c.tenant_id,
            &c.id,
            Some(&node.id),
            "node_action_requested",
            format!("{t} requested on node {} ({})", node.id, node.role),
        )
        .await;
    }
}
