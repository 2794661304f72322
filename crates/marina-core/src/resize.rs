//! Rolling changes: resizing one node (`PATCH …/nodes/{node_id} {"size_id"}`) or every node
//! of a cluster (`PATCH /v1/clusters/{id} {"size_id"}`), rolling and online.
//! The work is the `resize_node` / `resize_cluster` operation
//! (`operations/resize.rs`).
//!
//! Rules:
//! - The size must exist (400) and differ from the node's (409 when nothing
//!   would change); growth must fit the host (`capacity_exceeded`) and the
//!   tenant's quota (`quota_exceeded`), checked before anything changes.
//! - Order: replicas first, one step per node (`resize:<node_id>`), then —
//!   when the primary changes size and the cluster has replicas — a
//!   switchover (`switchover:*`) to an already resized replica, then the old
//!   primary. A 1-node cluster is resized in place (online).
//! - A whole-cluster resize also makes the size the cluster's (new nodes
//!   get it) in its `finish` step.
//! - A rolling reboot (`POST /v1/clusters/{id}/reboot`) has the same shape
//!   with `reboot:<node_id>` steps (stopped replicas stay stopped).

use marina_common::Error;
use marina_common::model::*;

use crate::Marina;
use crate::nodes::SERVING;
use crate::operations::step::Step;
use crate::operations::{new_operation, rolling_steps};

impl Marina {
    /// `PATCH …/nodes/{node_id}`.
    pub async fn resize_node(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        node_id: &str,
        input: ResizeNodeInput,
    ) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let node = self.cluster_node(&c, node_id).await?;
        let nodes = self.store.list_nodes(&c.id).await?;
        self.record_resize(&c, &nodes, &[node], &input.size_id, OperationType::ResizeNode)
            .await
    }

    /// `PATCH /v1/clusters/{id} {"size_id"}`: every node.
    pub async fn resize_cluster(&self, tenant_id: &str, cluster_id: &str, size_id: &str) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let nodes = self.store.list_nodes(&c.id).await?;
        if c.size_id == size_id && nodes.iter().all(|n| n.size_id == size_id) {
            return Err(Error::Conflict(format!("cluster {} is already {size_id}", c.name)));
        }
        self.record_resize(&c, &nodes, &nodes, size_id, OperationType::ResizeCluster)
            .await
    }

    /// `POST /v1/clusters/{id}/reboot`: every node restarted cleanly, one at a
    /// time — replicas, a switchover, the old primary.
    pub async fn reboot_cluster(&self, tenant_id: &str, cluster_id: &str) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        if !SERVING.contains(&c.status) {
            return Err(self.busy(&c.id).await);
        }
        let nodes = self.store.list_nodes(&c.id).await?;
        let switchover_to = if nodes.len() > 1 {
            Some(self.switchover_target(&c, &nodes, None).await?)
        } else {
            None
        };
        let replicas: Vec<&str> = nodes
            .iter()
            .filter(|n| n.role == NodeRole::Replica && n.status != NodeStatus::Stopped)
            .map(|n| n.id.as_str())
            .collect();
        let primary = nodes
            .iter()
            .find(|n| n.role == NodeRole::Primary)
            .map(|n| n.id.as_str());
        let mut op = new_operation(&c.tenant_id, OperationType::RebootCluster, &c.id);
        op.steps = rolling_steps(Step::Reboot, &replicas, primary, switchover_to.is_some());
        op.params = Some(serde_json::json!({ "switchover_to": switchover_to }));
        self.begin_node_operation(&c, &op).await?;
        self.event(
            &c.tenant_id,
            &c.id,
            None,
            "reboot_requested",
            format!("rolling reboot of {} node(s) (operation {})", replicas.len() + 1, op.id),
        )
        .await;
        Ok(op)
    }

    /// Checks and records a resize of `targets` (of `nodes`) to `size_id`.
    async fn record_resize(
        &self,
        c: &ClusterRecord,
        nodes: &[NodeRecord],
        targets: &[NodeRecord],
        size_id: &str,
        t: OperationType,
    ) -> Result<Operation, Error> {
        let size = self.size(size_id).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.sizes.iter().map(|s| s.id.as_str()).collect();
            Error::InvalidRequest(format!("unknown size_id {size_id:?}; sizes are: {}", known.join(", ")))
        })?;
        let changing: Vec<&NodeRecord> = targets.iter().filter(|n| n.size_id != size.id).collect();
        if changing.is_empty() && t == OperationType::ResizeNode {
            return Err(Error::Conflict(format!("node {} is already {size_id}", targets[0].id)));
        }
        if !SERVING.contains(&c.status) {
            return Err(self.busy(&c.id).await);
        }
        let growth: f64 = changing
            .iter()
            .map(|n| size.memory - self.size(&n.size_id).map_or(0.0, |s| s.memory))
            .sum();
        if growth > 0.0 {
            self.check_capacity(growth).await?;
            self.check_quota(&c.tenant_id, 0, 0, growth).await?;
        }
        let primary_changes = changing.iter().any(|n| n.role == NodeRole::Primary);
        let switchover_to = if primary_changes && nodes.len() > 1 {
            Some(self.switchover_target(c, nodes, None).await?)
        } else {
            None
        };
        let mut op = new_operation(&c.tenant_id, t, &c.id);
        let replicas: Vec<&str> = changing
            .iter()
            .filter(|n| n.role == NodeRole::Replica)
            .map(|n| n.id.as_str())
            .collect();
        let primary = changing
            .iter()
            .find(|n| n.role == NodeRole::Primary)
            .map(|n| n.id.as_str());
        op.steps = rolling_steps(Step::Resize, &replicas, primary, switchover_to.is_some());
        op.params = Some(serde_json::json!({ "size_id": size.id, "switchover_to": switchover_to }));
        if t == OperationType::ResizeNode {
            op.node_id = Some(targets[0].id.clone());
        }
        self.begin_node_operation(c, &op).await?;
        self.event(
            &c.tenant_id,
            &c.id,
            op.node_id.as_deref(),
            "resize_requested",
            format!(
                "{} node(s) are being resized to {size_id} (operation {})",
                changing.len(),
                op.id
            ),
        )
        .await;
        Ok(op)
    }
}
