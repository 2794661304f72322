//! Reseeding a replica: its data is replaced by a fresh physical copy — of the
//! primary, streamed with `mariadb-backup`, or of the cluster's latest
//! completed physical backup — and it rejoins with the copy's GTID position.
//! The work is the `reseed_node` operation.
//!
//! Rules:
//! - Only replicas are reseeded (409 for the primary: switch over first), in an
//!   `active`, `degraded` or `failed`-primary-serving cluster — `active` or
//!   `degraded`; the cluster is `updating` meanwhile (it keeps serving, and
//!   the monitor leaves it to the operation).
//! - `from: backup` needs a completed physical backup of the cluster (409).
//! - With `failover.auto_reseed`, the monitor reseeds a replica from the
//!   primary on its own when its history diverged (it would otherwise stay
//!   `failed`).

use marina_common::model::*;
use marina_common::{Error, time_fmt};

use crate::Marina;
use crate::operations::new_operation;

/// Cluster statuses a reseed may start from.
const RESEED_FROM: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded];

impl Marina {
    /// `POST …/nodes/{node_id}/reseed`.
    pub async fn request_reseed(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        node_id: &str,
        input: ReseedInput,
    ) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        self.start_reseed(&c, node_id, input.from.unwrap_or(ReseedFrom::Primary), "requested")
            .await
    }

    /// Checks and records a reseed of `node_id` (`why` goes into the event).
    pub(crate) async fn start_reseed(
        &self,
        c: &ClusterRecord,
        node_id: &str,
        from: ReseedFrom,
        why: &str,
    ) -> Result<Operation, Error> {
        let nodes = self.store.list_nodes(&c.id).await?;
        let node = nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| Error::not_found("node", node_id))?;
        if node.role == NodeRole::Primary {
            return Err(Error::Conflict(format!(
                "node {node_id} is the primary; switch over first, then reseed it as a replica"
            )));
        }
        if from == ReseedFrom::Backup && self.latest_physical_backup(&c.id).await?.is_none() {
            return Err(Error::Conflict(format!(
                "cluster {} has no completed physical backup to reseed from",
                c.id
            )));
        }
        let mut op = new_operation(&c.tenant_id, OperationType::ReseedNode, &c.id);
        op.node_id = Some(node_id.into());
        op.params = Some(serde_json::json!({ "from": from }));
        if !self
            .store
            .begin_cluster_operation(&c.id, RESEED_FROM, ClusterStatus::Updating, &op)
            .await?
        {
            return Err(Error::Conflict(format!(
                "cluster {} is {}; a replica is reseeded in an active or degraded cluster",
                c.id, c.status
            )));
        }
        self.event(
            &c.tenant_id,
            &c.id,
            Some(node_id),
            "node_reseeding",
            format!(
                "node {node_id} is being reseeded from the {from} ({why}) at {}",
                time_fmt::now_rfc3339()
            ),
        )
        .await;
        self.work.notify_one();
        Ok(op)
    }

    /// The cluster's newest completed physical backup.
    pub(crate) async fn latest_physical_backup(&self, cluster_id: &str) -> Result<Option<BackupRecord>, Error> {
        Ok(self
            .all_backups(cluster_id)
            .await?
            .into_iter()
            .find(|b| b.status == BackupStatus::Completed && b.method == BackupMethod::Physical))
    }
}
