//! Per-node actions as operations: `stop_node`, `start_node`, `reboot_node`,
//! `set_maintenance`, `set_read_only`. The cluster is `updating` (and keeps
//! serving) while one runs.
//!
//! Steps:
//! - `stop_node`: `drain` (node `stopped` — sticky: no restart by the
//!   supervisor, out of the reader endpoint and of failover candidates),
//!   `stop` (clean shutdown, data kept), `finish`.
//! - `start_node`: `start` (option file re-rendered, process started),
//!   `attach` (replication from the current primary, running), `finish`
//!   (node `active`, back in the reader endpoint).
//! - `reboot_node`: [`switchover:*` for a primary unless forced], `restart`
//!   (see `resize::restart`: a replica leaves the reader endpoint, restarts
//!   cleanly and replicates again; a primary rebooted in place is made
//!   writable), `finish`.
//! - `set_maintenance`: `apply` (node `maintenance` — out of the reader
//!   endpoint and of failover candidates, still running and replicating — or
//!   back to `active`), `finish`.
//! - `set_read_only`: `apply` (the primary's `read_only`, held by the
//!   cluster's `primary_read_only` so the monitor leaves it), `finish`.
//!
//! `finish` returns the cluster to `active`; the monitor then judges it.
//! On failure the node is left for the monitor to judge (`down`, or `stopped`
//! again when a start failed) and the cluster serves as before.

use std::sync::Arc;

use marina_common::Error;
use marina_common::model::{ClusterStatus, NodeRecord, NodeRole, NodeStatus, Operation, OperationType};

use super::step::StepKind;
use super::{STOP_TIMEOUT, StepContext, admin_err, create, end_updating, op_node, primary_of, runtime_err, switchover};
use crate::Marina;

const STOP: &[StepKind] = &[StepKind::Drain, StepKind::Stop, StepKind::Finish];
const START: &[StepKind] = &[StepKind::Start, StepKind::Attach, StepKind::Finish];
const REBOOT: &[StepKind] = &[StepKind::Restart, StepKind::Finish];
const TOGGLE: &[StepKind] = &[StepKind::Apply, StepKind::Finish];

/// The steps of a node action (after any embedded switchover).
pub(super) fn steps(t: OperationType) -> &'static [StepKind] {
    match t {
        OperationType::StopNode => STOP,
        OperationType::StartNode => START,
        OperationType::RebootNode => REBOOT,
        _ => TOGGLE,
    }
}

fn enabled(op: &Operation) -> bool {
    op.params.as_ref().is_some_and(|p| p["enabled"] == true)
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let ctx = StepContext::load(app, op).await?;
    let node = op_node(op, &ctx.nodes)?;
    let primary = primary_of(&ctx.nodes)?;
    let addr = app.mgmt_addr(node, &ctx.secrets);
    match (op.op_type, step) {
        (_, StepKind::Finish) => finish(app, &ctx, op, node).await,
        (OperationType::StopNode, StepKind::Drain) => {
            app.store.update_node(&node.id, node.role, NodeStatus::Stopped).await?;
            crate::supervisor::apply_endpoints(app).await
        }
        (OperationType::StopNode, StepKind::Stop) => {
            let rt = app.runtime_of(node).await?;
            rt.stop(&node.id, STOP_TIMEOUT).await.map_err(runtime_err)
        }
        (OperationType::RebootNode, StepKind::Restart) => super::resize::restart(app, &ctx, node).await,
        (OperationType::StartNode, StepKind::Start) => {
            let spec = app.node_spec(&ctx.cluster, node, &ctx.secrets)?;
            let rt = app.runtime_of(node).await?;
            rt.prepare(&spec).await.map_err(runtime_err)?;
            rt.start(&spec).await.map_err(runtime_err)?;
            Ok(())
        }
        (OperationType::StartNode, StepKind::Attach) => {
            app.admin.set_read_only(&addr, true).await.map_err(admin_err)?;
            app.admin
                .start_replica(&addr, &app.replica_source(primary, &ctx.secrets), false)
                .await
                .map_err(admin_err)?;
            create::wait_replicating(app, &addr).await
        }
        (OperationType::SetMaintenance, StepKind::Apply) => {
            let status = if enabled(op) {
                NodeStatus::Maintenance
            } else {
                NodeStatus::Active
            };
            app.store.update_node(&node.id, node.role, status).await?;
            crate::supervisor::apply_endpoints(app).await
        }
        (OperationType::SetReadOnly, StepKind::Apply) => {
            if node.role != NodeRole::Primary {
                // Replicas are read-only already; only `enabled: true` gets here.
                return app.admin.set_read_only(&addr, true).await.map_err(admin_err);
            }
            let on = enabled(op);
            // Held first, so the monitor never undoes it in between.
            if on {
                app.store.set_primary_read_only(&ctx.cluster.id, true).await?;
                app.admin.set_read_only(&addr, true).await.map_err(admin_err)
            } else {
                app.admin
                    .make_primary(&addr, ctx.cluster.primary_waits_for_acks())
                    .await
                    .map_err(admin_err)?;
                app.store.set_primary_read_only(&ctx.cluster.id, false).await?;
                Ok(())
            }
        }
        (t, other) => Err(Error::internal(format!("unknown {t} step {other}"))),
    }
}

async fn finish(app: &Arc<Marina>, ctx: &StepContext, op: &Operation, node: &NodeRecord) -> Result<(), Error> {
    let status = match op.op_type {
        OperationType::StopNode => NodeStatus::Stopped,
        OperationType::SetMaintenance if enabled(op) => NodeStatus::Maintenance,
        OperationType::RebootNode if node.status == NodeStatus::Maintenance => NodeStatus::Maintenance,
        _ => NodeStatus::Active,
    };
    app.store.update_node(&node.id, node.role, status).await?;
    end_updating(app, &ctx.cluster.id).await?;
    let what = match op.op_type {
        OperationType::StopNode => "stopped".to_string(),
        OperationType::StartNode => "started and replicating".to_string(),
        OperationType::RebootNode => "rebooted".to_string(),
        OperationType::SetMaintenance if enabled(op) => "in maintenance".to_string(),
        OperationType::SetMaintenance => "out of maintenance".to_string(),
        _ => format!("read_only = {}", if enabled(op) { "ON" } else { "OFF" }),
    };
    app.event(
        &ctx.cluster.tenant_id,
        &ctx.cluster.id,
        Some(&node.id),
        "node_action_completed",
        format!("node {} ({}) is {what}", node.id, node.role),
    )
    .await;
    Ok(())
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(ctx) = StepContext::load_if_present(app, op).await? else {
        return Ok(());
    };
    if let Ok(node) = op_node(op, &ctx.nodes) {
        let status = match op.op_type {
            // A node that did not start is stopped, as it was.
            OperationType::StartNode => {
                if let Ok(rt) = app.runtime_of(node).await {
                    let _ = rt.stop(&node.id, STOP_TIMEOUT).await;
                }
                NodeStatus::Stopped
            }
            OperationType::SetMaintenance | OperationType::SetReadOnly => node.status,
            // The monitor judges it (and the supervisor restarts it if needed).
            _ => NodeStatus::Down,
        };
        app.store.update_node(&node.id, node.role, status).await?;
        app.store
            .set_node_ha(&node.id, Some(&format!("{} failed: {e}", op.op_type)), None)
            .await?;
    }
    app.store
        .update_cluster_status(
            &ctx.cluster.id,
            &[ClusterStatus::Updating],
            ClusterStatus::Degraded,
            None,
        )
        .await?;
    crate::supervisor::apply_endpoints(app).await?;
    app.event(
        &ctx.cluster.tenant_id,
        &ctx.cluster.id,
        op.node_id.as_deref(),
        "node_action_failed",
        format!(
            "{} on node {} failed: {e}",
            op.op_type,
            op.node_id.as_deref().unwrap_or_default()
        ),
    )
    .await;
    Ok(())
}

/// Failure of an operation that may have switched over first (remove, reboot):
/// the stored primary serves and writes are released, then as `on_failure`.
pub(super) async fn on_failure_moving_primary(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    if let Some(ctx) = StepContext::load_if_present(app, op).await? {
        switchover::serve_from_stored_primary(app, &ctx).await?;
    }
    on_failure(app, op, e).await
}
