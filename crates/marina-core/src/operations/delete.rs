//! The `delete_cluster` operation.
//!
//! Steps (each tolerant of things already gone, so a cluster whose processes
//! died still deletes cleanly):
//! 1. `remove_endpoints`: the cluster (now `deleting`) leaves the desired routes,
//!    which are applied.
//! 2. `stop_nodes`: every node process is stopped (SIGTERM, then SIGKILL).
//! 3. `remove_files`: every node directory is removed.
//! 4. `release_resources`: node rows (ports) are removed and the cluster marked
//!    `deleted`, which frees its name and endpoint addresses.

use std::sync::Arc;
use std::time::Duration;

use marina_common::Error;
use marina_common::model::{ClusterStatus, Operation};

use super::step::StepKind;
use super::{each_node, runtime_err};
use crate::Marina;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::RemoveEndpoints,
    StepKind::StopNodes,
    StepKind::RemoveFiles,
    StepKind::ReleaseResources,
];

/// Grace period for a node's clean shutdown.
const STOP_GRACE: Duration = Duration::from_secs(30);

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let cluster_id = op
        .cluster_id
        .as_deref()
        .ok_or_else(|| Error::internal("delete without cluster"))?;
    let Some(cluster) = app.store.get_cluster(None, cluster_id).await? else {
        // Already released by an earlier run of the last step.
        return Ok(());
    };
    let nodes = app.store.list_nodes(cluster_id).await?;
    match step {
        StepKind::RemoveEndpoints => crate::supervisor::apply_endpoints(app).await,
        StepKind::StopNodes => {
            each_node(app, &nodes, |app, n| async move {
                app.runtime_of(&n)
                    .await?
                    .stop(&n.id, STOP_GRACE)
                    .await
                    .map_err(runtime_err)
            })
            .await
        }
        StepKind::RemoveFiles => {
            each_node(app, &nodes, |app, n| async move {
                app.runtime_of(&n).await?.destroy(&n.id).await.map_err(runtime_err)
            })
            .await
        }
        StepKind::ReleaseResources => {
            if !app.store.finish_cluster_delete(cluster_id).await? {
                return Err(Error::Conflict(format!(
                    "cluster {} is no longer being deleted",
                    cluster.name
                )));
            }
            app.event(
                &cluster.tenant_id,
                cluster_id,
                None,
                "cluster_deleted",
                format!("cluster {} was deleted", cluster.name),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown delete step {other}"))),
    }
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(cluster_id) = op.cluster_id.as_deref() else {
        return Ok(());
    };
    if let Some(c) = app
        .store
        .update_cluster_status(cluster_id, &[ClusterStatus::Deleting], ClusterStatus::Failed, None)
        .await?
    {
        app.event(
            &c.tenant_id,
            cluster_id,
            None,
            "cluster_delete_failed",
            format!("deleting cluster {} failed ({e}); delete it again to retry", c.name),
        )
        .await;
    }
    Ok(())
}
