//! The `add_node` operation: a new replica cloned from a live node. The node
//! row exists from the request on (status `creating`, its port reserved); the
//! cluster is `updating` and keeps serving.
//!
//! Steps:
//! 1. `copy_data`: a physical copy of the least-lagging healthy replica (the
//!    primary when there is none) is streamed with `mariadb-backup` straight
//!    into the new node's directory and prepared — no history is replayed;
//!    the copy's GTID is kept as the node's `rejoin_gtid`. A marker makes a
//!    resumed step skip a finished copy.
//! 2. `start_node`: option file rendered for a replica, process started.
//! 3. `attach`: binlog history reset, `gtid_slave_pos` set to the copy's GTID,
//!    replication from the primary started and running; the primary's
//!    semi-sync side follows the cluster's policy (a 1-node cluster gaining
//!    its first replica switches it on).
//! 4. `finish`: node `active`, cluster back to `active` (the monitor then
//!    judges it), endpoints applied (the reader endpoint now includes it).
//!
//! On failure the addition is rolled back: the process is stopped, its
//! directory and row removed (the port is free again), the primary's
//! semi-sync side set back, and the cluster returns to serving as before.

use std::sync::Arc;
use std::time::Duration;

use marina_common::Error;
use marina_common::model::{NodeRole, NodeStatus, Operation};

use super::datadir::{has_marker, install_prepared, stream_copy};
use super::step::StepKind;
use super::{StepContext, admin_err, attach_copy, end_updating, op_node, primary_of, runtime_err};
use crate::Marina;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::CopyData,
    StepKind::StartNode,
    StepKind::Attach,
    StepKind::Finish,
];

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let node = op_node(op, &nodes)?;
    let primary = primary_of(&nodes)?;
    match step {
        StepKind::CopyData => {
            let marker = format!("cloned-{}", op.id);
            if has_marker(app, node, &marker).await? {
                return Ok(());
            }
            // The least-lagging healthy replica, else the primary (the new
            // node is `creating`, so never its own source).
            let (source, _) = super::backup::choose_source(app, &nodes, &secrets, false)
                .await
                .ok_or_else(|| Error::Unavailable("no node to copy the new replica from".into()))?;
            let gtid = stream_copy(app, &op.id, &source, node, "clone.tmp").await?;
            app.store.set_node_ha(&node.id, None, Some(&gtid)).await?;
            install_prepared(app, node, "clone.tmp", &marker, &gtid).await?;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                Some(&node.id),
                "node_cloned",
                format!("node {} holds a copy of {} at GTID {gtid}", node.id, source.id),
            )
            .await;
            Ok(())
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
            attach_copy(app, node, primary, &secrets, &gtid).await?;
            app.admin
                .set_semisync_primary(&app.mgmt_addr(primary, &secrets), cluster.primary_waits_for_acks())
                .await
                .map_err(admin_err)
        }
        StepKind::Finish => {
            app.store.update_node(&node.id, node.role, NodeStatus::Active).await?;
            app.store.set_node_ha(&node.id, None, None).await?;
            end_updating(app, &cluster.id).await?;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                Some(&node.id),
                "node_added",
                format!("replica {} was added and replicates from {}", node.id, primary.id),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown add_node step {other}"))),
    }
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(StepContext { cluster, nodes, .. }) = StepContext::load_if_present(app, op).await? else {
        return Ok(());
    };
    if let Some(node_id) = op.node_id.as_deref() {
        let host = nodes.iter().find(|n| n.id == node_id).and_then(|n| n.host_id.clone());
        let rt = app.runtime_on(host.as_deref()).await?;
        rt.stop(node_id, Duration::from_secs(10)).await.map_err(runtime_err)?;
        rt.destroy(node_id).await.map_err(runtime_err)?;
        if nodes.iter().any(|n| n.id == node_id) {
            app.store.remove_node(&cluster.id, node_id).await?;
        }
    }
    // The primary's semi-sync side as the cluster is again.
    if let Some(ctx) = StepContext::load_if_present(app, op).await?
        && let Some(p) = ctx.nodes.iter().find(|n| n.role == NodeRole::Primary)
    {
        let _ = app
            .admin
            .set_semisync_primary(&app.mgmt_addr(p, &ctx.secrets), ctx.cluster.primary_waits_for_acks())
            .await;
    }
    end_updating(app, &cluster.id).await?;
    app.event(
        &cluster.tenant_id,
        &cluster.id,
        op.node_id.as_deref(),
        "node_add_failed",
        format!(
            "adding node {} failed and was rolled back: {e}",
            op.node_id.as_deref().unwrap_or_default()
        ),
    )
    .await;
    Ok(())
}
