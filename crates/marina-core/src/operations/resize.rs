//! The rolling operations `resize_node`, `resize_cluster` and
//! `reboot_cluster` (see `crate::resize` for the order of steps). The cluster
//! is `updating` and keeps serving.
//!
//! Steps:
//! - `resize:<node_id>`: the node's size is recorded, its option file
//!   re-rendered, and the new settings applied online (`innodb_buffer_pool_size`,
//!   `innodb_log_file_size`, `max_connections` are dynamic); the runtime's
//!   resource limits follow. Only if the server refuses an online change is
//!   the node restarted — a replica after leaving the reader endpoint, then
//!   reattached. The primary is reached only after the switchover, when it is
//!   a replica (or in a 1-node cluster, where the change is online only).
//! - `reboot:<node_id>`: a clean restart (`restart`), the node back in
//!   service before the next step.
//! - `switchover:*` (embedded, see `switchover.rs`): to a resized replica.
//! - `finish`: a whole-cluster resize makes the size the cluster's; the
//!   cluster returns to `active` and the endpoints are applied.
//!
//! Every step converges (recording a size or setting a variable twice is
//! harmless), so a resumed operation finishes.

use std::sync::Arc;

use marina_common::Error;
use marina_common::model::{NodeRecord, NodeRole, NodeStatus, Operation, OperationType};

use super::step::{Step, StepKind};
use super::{STOP_TIMEOUT, StepContext, admin_err, create, end_updating, primary_of, runtime_err};
use crate::Marina;

fn size_of(op: &Operation) -> Result<String, Error> {
    op.params
        .as_ref()
        .and_then(|p| p["size_id"].as_str())
        .map(String::from)
        .ok_or_else(|| Error::internal(format!("operation {} has no size", op.id)))
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: &Step) -> Result<(), Error> {
    let ctx = StepContext::load(app, op).await?;
    let node_of = |id: &str| {
        ctx.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::internal(format!("node {id} vanished during {}", op.op_type)))
    };
    match step {
        Step::Resize(node_id) => resize_one(app, &ctx, node_of(node_id)?, &size_of(op)?).await,
        Step::Reboot(node_id) => reboot_one(app, &ctx, node_of(node_id)?).await,
        Step::Own(StepKind::Finish) => {
            if op.op_type == OperationType::ResizeCluster {
                app.store.set_cluster_size(&ctx.cluster.id, &size_of(op)?).await?;
            }
            end_updating(app, &ctx.cluster.id).await?;
            let what = match op.op_type {
                OperationType::RebootCluster => "rolling reboot".to_string(),
                _ => format!("resize to {}", size_of(op)?),
            };
            app.event(
                &ctx.cluster.tenant_id,
                &ctx.cluster.id,
                op.node_id.as_deref(),
                "rolling_completed",
                format!("{what} completed (operation {})", op.id),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown resize step {}", other.name()))),
    }
}

async fn resize_one(app: &Arc<Marina>, ctx: &StepContext, node: &NodeRecord, size_id: &str) -> Result<(), Error> {
    let size = app
        .size(size_id)
        .cloned()
        .ok_or_else(|| Error::internal(format!("size {size_id} left the catalog")))?;
    let replicated = ctx.nodes.len() > 1;
    if node.role == NodeRole::Primary && replicated {
        return Err(Error::internal(format!(
            "node {} is still the primary; it is resized after the switchover",
            node.id
        )));
    }
    app.store.set_node_size(&node.id, size_id).await?;
    let mut resized = node.clone();
    resized.size_id = size_id.to_string();
    let spec = app.node_spec(&ctx.cluster, &resized, &ctx.secrets)?;
    // The option file first, so any later start has the new size.
    let rt = app.runtime_of(node).await?;
    rt.prepare(&spec).await.map_err(runtime_err)?;
    let addr = app.mgmt_addr(&resized, &ctx.secrets);
    let online = app
        .admin
        .run_statements(
            &addr,
            &marina_engine::cnf::online_size_sql(size.buffer_pool_bytes(), size.max_connections()),
        )
        .await;
    let how = match online {
        Ok(()) => "online",
        Err(e) if node.role == NodeRole::Replica => {
            tracing::info!(node_id = %node.id, error = %e, "online resize refused; restarting the replica");
            restart(app, ctx, &resized).await?;
            "with a restart"
        }
        Err(e) => return Err(admin_err(e)),
    };
    rt.apply_limits(&spec).await.map_err(runtime_err)?;
    app.event(
        &ctx.cluster.tenant_id,
        &ctx.cluster.id,
        Some(&node.id),
        "node_resized",
        format!("node {} ({}) is now {size_id}, {how}", node.id, node.role),
    )
    .await;
    Ok(())
}

/// A clean restart of one node: a replica leaves the reader endpoint, restarts
/// and replicates again before it returns; a primary (only in a 1-node
/// cluster, or after its switchover when it is a replica) is made writable
/// again unless the user holds it read-only.
pub(super) async fn restart(app: &Arc<Marina>, ctx: &StepContext, node: &NodeRecord) -> Result<(), Error> {
    let spec = app.node_spec(&ctx.cluster, node, &ctx.secrets)?;
    let addr = app.mgmt_addr(node, &ctx.secrets);
    let replica = node.role == NodeRole::Replica;
    // A node in maintenance stays in maintenance (and out of the endpoints).
    let in_service = node.status != NodeStatus::Maintenance;
    if replica && in_service {
        app.store.update_node(&node.id, node.role, NodeStatus::Down).await?;
        crate::supervisor::apply_endpoints(app).await?;
    }
    let rt = app.runtime_of(node).await?;
    rt.stop(&node.id, STOP_TIMEOUT).await.map_err(runtime_err)?;
    rt.prepare(&spec).await.map_err(runtime_err)?;
    rt.start(&spec).await.map_err(runtime_err)?;
    if !replica {
        if !ctx.cluster.primary_read_only {
            app.admin
                .make_primary(&addr, ctx.cluster.primary_waits_for_acks())
                .await
                .map_err(admin_err)?;
        }
        return Ok(());
    }
    let primary = primary_of(&ctx.nodes)?;
    app.admin.set_read_only(&addr, true).await.map_err(admin_err)?;
    app.admin
        .start_replica(&addr, &app.replica_source(primary, &ctx.secrets), false)
        .await
        .map_err(admin_err)?;
    create::wait_replicating(app, &addr).await?;
    if in_service {
        app.store.update_node(&node.id, node.role, NodeStatus::Active).await?;
    }
    crate::supervisor::apply_endpoints(app).await
}

async fn reboot_one(app: &Arc<Marina>, ctx: &StepContext, node: &NodeRecord) -> Result<(), Error> {
    if node.role == NodeRole::Primary && ctx.nodes.len() > 1 {
        return Err(Error::internal(format!(
            "node {} is still the primary; it is rebooted after the switchover",
            node.id
        )));
    }
    restart(app, ctx, node).await?;
    app.event(
        &ctx.cluster.tenant_id,
        &ctx.cluster.id,
        Some(&node.id),
        "node_rebooted",
        format!("node {} ({}) was restarted", node.id, node.role),
    )
    .await;
    Ok(())
}
