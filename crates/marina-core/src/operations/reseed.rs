//! The `reseed_node` operation: a replica's data is replaced by a physical
//! copy and the replica rejoins from the copy's GTID position. The cluster is
//! `updating` meanwhile (it serves; the node is out of the reader endpoint).
//!
//! Steps:
//! 1. `stop_node`: the node becomes `rebuilding` and its process stops.
//! 2. `copy_data`: into `<node>/reseed.tmp`, then prepared and swapped in as
//!    the datadir; a marker makes a resumed step skip a finished copy.
//!    - `from: primary`: `mariadb-backup --stream=mbstream` of the primary
//!      piped straight into `mbstream -x` (the primary side at idle priority);
//!      the GTID comes from its log.
//!    - `from: backup`: the cluster's latest completed physical backup,
//!      checksum verified, then extracted; the GTID is the backup's.
//!      The GTID is kept as the node's `rejoin_gtid` for the next steps.
//! 3. `start_node`: option file rendered for a replica, process started.
//! 4. `attach`: replication and binlog history reset, `gtid_slave_pos` set to
//!    the copy's GTID, replication from the primary started and running.
//! 5. `finish`: node `active`, cluster back to `active` (the monitor then
//!    judges it), endpoints applied.
//!
//! On failure the node is `failed` with the reason and the cluster returns to
//! `degraded`.

use std::sync::Arc;
use std::time::Duration;

use marina_backup::pipeline;
use marina_common::Error;
use marina_common::model::{ClusterStatus, NodeRecord, NodeRole, NodeStatus, Operation, ReseedFrom};

use super::datadir::{has_marker, install_prepared, pipeline_err, stream_copy};
use super::step::StepKind;
use super::{StepContext, attach_copy, end_updating, op_node, primary_of, runtime_err};
use crate::Marina;
use crate::backups::data_key;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::StopNode,
    StepKind::CopyData,
    StepKind::StartNode,
    StepKind::Attach,
    StepKind::Finish,
];

fn source_of(op: &Operation) -> ReseedFrom {
    op.params
        .as_ref()
        .and_then(|p| p["from"].as_str())
        .and_then(ReseedFrom::parse)
        .unwrap_or(ReseedFrom::Primary)
}

/// Extracts into `scratch` and prepares; returns the copy's GTID.
async fn copy(
    app: &Marina,
    op: &Operation,
    cluster_id: &str,
    primary: &NodeRecord,
    (target, scratch): (&NodeRecord, &str),
) -> Result<String, Error> {
    match source_of(op) {
        ReseedFrom::Primary => stream_copy(app, &op.id, primary, target, scratch).await,
        ReseedFrom::Backup => {
            let b = app
                .latest_physical_backup(cluster_id)
                .await?
                .ok_or_else(|| Error::Conflict("the cluster has no completed physical backup".into()))?;
            let checksum = b.checksum.as_deref().unwrap_or_default();
            pipeline::verify(
                app.blobs.as_ref(),
                &data_key(&b),
                checksum.strip_prefix("sha256:").unwrap_or(checksum),
            )
            .await
            .map_err(pipeline_err)?;
            app.data_of(target)
                .await?
                .extract_backup(app.blobs.as_ref(), &data_key(&b), &target.id, scratch)
                .await
                .map_err(pipeline_err)?;
            Ok(b.gtid_position.unwrap_or_default())
        }
    }
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let node = op_node(op, &nodes)?;
    let primary = primary_of(&nodes)?;
    if node.role != NodeRole::Replica {
        return Err(Error::Conflict(format!("node {} became the primary", node.id)));
    }
    match step {
        StepKind::StopNode => {
            app.store
                .update_node(&node.id, node.role, NodeStatus::Rebuilding)
                .await?;
            crate::supervisor::apply_endpoints(app).await?;
            app.runtime_of(node)
                .await?
                .stop(&node.id, Duration::from_secs(30))
                .await
                .map_err(runtime_err)
        }
        StepKind::CopyData => {
            let marker = format!("reseeded-{}", op.id);
            if has_marker(app, node, &marker).await? {
                return Ok(());
            }
            let gtid = copy(app, op, &cluster.id, primary, (node, "reseed.tmp")).await?;
            app.store.set_node_ha(&node.id, None, Some(&gtid)).await?;
            install_prepared(app, node, "reseed.tmp", &marker, &gtid).await
        }
        StepKind::StartNode => {
            let spec = app.node_spec(&cluster, node, &secrets)?;
            let rt = app.runtime_of(node).await?;
            rt.prepare(&spec).await.map_err(runtime_err)?;
            rt.start(&spec).await.map_err(runtime_err)?;
            Ok(())
        }
        StepKind::Attach => {
            let gtid = node.rejoin_gtid.clone().unwrap_or_default();
            attach_copy(app, node, primary, &secrets, &gtid).await
        }
        StepKind::Finish => {
            app.store.update_node(&node.id, node.role, NodeStatus::Active).await?;
            app.store.set_node_ha(&node.id, None, None).await?;
            end_updating(app, &cluster.id).await?;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                Some(&node.id),
                "node_reseeded",
                format!(
                    "node {} was reseeded from the {} and replicates from {}",
                    node.id,
                    source_of(op),
                    primary.id
                ),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown reseed step {other}"))),
    }
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(StepContext { cluster, nodes, .. }) = StepContext::load_if_present(app, op).await? else {
        return Ok(());
    };
    if let Ok(node) = op_node(op, &nodes) {
        let reason = format!("reseed failed: {e}");
        app.store.fail_node(&node.id, &reason).await?;
        // The copy is gone: no rejoin limit applies any more.
        app.store.set_node_ha(&node.id, Some(&reason), None).await?;
    }
    app.store
        .update_cluster_status(&cluster.id, &[ClusterStatus::Updating], ClusterStatus::Degraded, None)
        .await?;
    app.event(
        &cluster.tenant_id,
        &cluster.id,
        op.node_id.as_deref(),
        "node_reseed_failed",
        format!(
            "reseeding node {} failed: {e}",
            op.node_id.as_deref().unwrap_or_default()
        ),
    )
    .await;
    Ok(())
}
