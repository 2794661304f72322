//! The `remove_node` operation. The cluster is `updating` and keeps serving.
//!
//! Steps (a primary is first switched over: `switchover:*`, see
//! `switchover.rs`; the node is then a replica like any other):
//! 1. `drain`: the node becomes `deleting` and the endpoints are applied
//!    without it — no new connection reaches it before it stops.
//! 2. `stop_node`: its process stops.
//! 3. `delete_node`: its directory and row go (the port is free again); the
//!    primary's semi-sync side follows the smaller cluster (off when it is
//!    alone).
//! 4. `finish`: cluster back to `active` (the monitor then judges it).
//!
//! A node on a `down` host is only removed from the store: its host's agent
//! does not answer, and the supervisor removes what no row names when the
//! host returns.
//!
//! Each step is a no-op once the node is gone, so a resumed operation
//! finishes. On failure the cluster serves as the failure left it (see
//! `node_action::on_failure_moving_primary`).

use std::sync::Arc;
use std::time::Duration;

use marina_common::Error;
use marina_common::model::{NodeRole, NodeStatus, Operation};

use super::step::StepKind;
use super::{StepContext, end_updating, runtime_err};
use crate::Marina;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::Drain,
    StepKind::StopNode,
    StepKind::DeleteNode,
    StepKind::Finish,
];

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let node_id = op.node_id.as_deref().unwrap_or_default();
    let node = nodes.iter().find(|n| n.id == node_id);
    if let Some(n) = node
        && n.role == NodeRole::Primary
    {
        return Err(Error::Conflict(format!(
            "node {node_id} is the primary; it is removed after a switchover"
        )));
    }
    // A node of a host that does not answer (down) is removed from the
    // store only; its process and files go when the host returns (the
    // supervisor removes nodes no row names).
    let host = node.and_then(|n| n.host_id.as_deref());
    let answering = app.host_answering(host).await;
    match step {
        StepKind::Drain => {
            if let Some(n) = node {
                app.store.update_node(&n.id, n.role, NodeStatus::Deleting).await?;
            }
            crate::supervisor::apply_endpoints(app).await
        }
        StepKind::StopNode if !answering => Ok(()),
        StepKind::StopNode => app
            .runtime_on(host)
            .await?
            .stop(node_id, Duration::from_secs(30))
            .await
            .map_err(runtime_err),
        StepKind::DeleteNode => {
            if answering {
                app.runtime_on(host)
                    .await?
                    .destroy(node_id)
                    .await
                    .map_err(runtime_err)?;
            }
            if node.is_some() {
                app.store.remove_node(&cluster.id, node_id).await?;
            }
            let Some(ctx) = StepContext::load_if_present(app, op).await? else {
                return Ok(());
            };
            if let Some(p) = ctx.nodes.iter().find(|n| n.role == NodeRole::Primary) {
                app.admin
                    .set_semisync_primary(&app.mgmt_addr(p, &secrets), ctx.cluster.primary_waits_for_acks())
                    .await
                    .map_err(super::admin_err)?;
            }
            Ok(())
        }
        StepKind::Finish => {
            end_updating(app, &cluster.id).await?;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                Some(node_id),
                "node_removed",
                format!("node {node_id} was removed; the cluster has {} node(s)", nodes.len()),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown remove_node step {other}"))),
    }
}
