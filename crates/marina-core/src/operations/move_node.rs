//! The `move_node` operation: a node leaves its host — a drained host, or a
//! host down for `hosts.replace_after_secs` — and a replica on another host
//! takes its place. The new node's row exists from the start (`op.node_id`,
//! status `creating`); the node it replaces is `params.from`. The cluster is
//! `updating` and keeps serving.
//!
//! Steps:
//! 1. `copy_data`, `start_node`, `attach`: as `add_node` (a physical copy of
//!    a live node, streamed between hosts, started, replicating).
//! 2. `join`: once the new node has applied what the primary had when the
//!    step began (up to 2 min), it is `active` and in the reader endpoint.
//! 3. `switchover:*` (only when the node moved was the primary when the
//!    move was recorded): the new node becomes the primary, lossless.
//! 4. `drain`, `stop_node`, `delete_node`: as `remove_node`, on the old
//!    node (a host that does not answer keeps its process and files until
//!    it returns: the supervisor removes what no row names then).
//! 5. `finish`: cluster back to `active`.
//!
//! On failure before `join`, the new node is rolled back as a failed
//! `add_node` is. After it, the new node stays (it holds every write) and
//! the old one serves again as a replica if it still can (the drain task
//! tries the move again).

use std::sync::Arc;

use marina_common::Error;
use marina_common::model::{NodeRole, NodeStatus, Operation, OperationStep, OperationType, StepStatus};

use super::step::{Step, StepKind};
use super::{StepContext, add_node, end_updating, op_node, remove_node, switchover};
use crate::Marina;

/// How long a new replica may take to apply the backlog of its copy.
const CATCH_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The steps of a move of a replica.
pub(super) const STEPS: &[StepKind] = &[
    StepKind::CopyData,
    StepKind::StartNode,
    StepKind::Attach,
    StepKind::Join,
    StepKind::Drain,
    StepKind::StopNode,
    StepKind::DeleteNode,
    StepKind::Finish,
];

/// The steps of a move (`primary`: the node moved is the primary, so the
/// new node takes over by a switchover before the old one goes).
pub(crate) fn steps(primary: bool) -> Vec<OperationStep> {
    let pending = |name: String| OperationStep {
        name,
        status: StepStatus::Pending,
        started_at: None,
        finished_at: None,
    };
    let (before, after) = STEPS.split_at(4);
    let mut steps: Vec<OperationStep> = before.iter().map(|k| pending(k.as_str().into())).collect();
    if primary {
        steps.extend(switchover::embedded_steps().map(pending));
    }
    steps.extend(after.iter().map(|k| pending(k.as_str().into())));
    debug_assert!(steps.iter().all(|s| Step::parse(&s.name).is_some()));
    steps
}

/// The node a move replaces.
fn from(op: &Operation) -> Result<String, Error> {
    op.params
        .as_ref()
        .and_then(|p| p["from"].as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::internal(format!("operation {} names no node to move", op.id)))
}

/// `op` acting on the old node (the steps `remove_node` runs).
fn on_old(op: &Operation) -> Result<Operation, Error> {
    Ok(Operation {
        op_type: OperationType::RemoveNode,
        node_id: Some(from(op)?),
        ..op.clone()
    })
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    match step {
        StepKind::CopyData | StepKind::StartNode | StepKind::Attach => add_node::run_step(app, op, step).await,
        StepKind::Join => {
            let ctx = StepContext::load(app, op).await?;
            let node = op_node(op, &ctx.nodes)?;
            // Caught up first: a copy taken under a write load leaves the
            // new replica a backlog, and a switchover to a replica that is
            // far behind cannot sync within its pause (seen under load: "did
            // not reach the primary's position in 10s").
            let primary = super::primary_of(&ctx.nodes)?;
            let pos = app
                .admin
                .gtid_binlog_pos(&app.mgmt_addr(primary, &ctx.secrets))
                .await
                .map_err(super::admin_err)?;
            let caught_up = app
                .admin
                .wait_for_gtid(&app.mgmt_addr(node, &ctx.secrets), &pos, CATCH_UP_TIMEOUT)
                .await
                .map_err(|e| Error::Unavailable(format!("the new replica {} did not catch up: {e}", node.id)))?;
            if !caught_up {
                return Err(Error::Unavailable(format!(
                    "the new replica {} did not reach the primary's position {pos} in {} s",
                    node.id,
                    CATCH_UP_TIMEOUT.as_secs()
                )));
            }
            if node.status == NodeStatus::Creating {
                app.store.update_node(&node.id, node.role, NodeStatus::Active).await?;
            }
            crate::supervisor::apply_endpoints(app).await
        }
        StepKind::Drain | StepKind::StopNode | StepKind::DeleteNode => {
            remove_node::run_step(app, &on_old(op)?, step).await
        }
        StepKind::Finish => {
            let ctx = StepContext::load(app, op).await?;
            let old = from(op)?;
            end_updating(app, &ctx.cluster.id).await?;
            app.event(
                &ctx.cluster.tenant_id,
                &ctx.cluster.id,
                op.node_id.as_deref(),
                "node_moved",
                format!(
                    "node {} on host {} replaced node {old}",
                    op.node_id.as_deref().unwrap_or_default(),
                    op_node(op, &ctx.nodes)?.host_id.as_deref().unwrap_or("?")
                ),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown move_node step {other}"))),
    }
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(ctx) = StepContext::load_if_present(app, op).await? else {
        return Ok(());
    };
    switchover::serve_from_stored_primary(app, &ctx).await?;
    let new = op
        .node_id
        .as_deref()
        .and_then(|id| ctx.nodes.iter().find(|n| n.id == id));
    if new.is_none_or(|n| n.status == NodeStatus::Creating) {
        // Not joined yet: undone as a failed addition.
        return add_node::on_failure(app, op, e).await;
    }
    // The new node joined and stays; the old one serves again if it is
    // still here.
    if let Ok(old) = from(op)
        && let Some(n) = ctx.nodes.iter().find(|n| n.id == old)
        && n.status == NodeStatus::Deleting
    {
        let role = if n.role == NodeRole::Primary {
            NodeRole::Replica
        } else {
            n.role
        };
        app.store.update_node(&n.id, role, NodeStatus::Down).await?;
    }
    end_updating(app, &ctx.cluster.id).await?;
    app.event(
        &ctx.cluster.tenant_id,
        &ctx.cluster.id,
        op.node_id.as_deref(),
        "node_move_failed",
        format!(
            "moving node {} failed after its replacement {} joined (both stay): {e}",
            from(op).unwrap_or_default(),
            op.node_id.as_deref().unwrap_or_default()
        ),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_primary_is_switched_over_after_its_replacement_joins() {
        let names = |p| steps(p).into_iter().map(|s| s.name).collect::<Vec<_>>();
        let replica = names(false);
        assert_eq!(
            replica,
            [
                "copy_data",
                "start_node",
                "attach",
                "join",
                "drain",
                "stop_node",
                "delete_node",
                "finish"
            ]
        );
        let primary = names(true);
        let join = primary.iter().position(|s| s == "join").unwrap();
        let drain = primary.iter().position(|s| s == "drain").unwrap();
        assert!(primary[join + 1].starts_with("switchover:"), "{primary:?}");
        assert!(primary[join + 1..drain].iter().all(|s| s.starts_with("switchover:")));
        assert_eq!(drain - join - 1, switchover::embedded_steps().count());
    }
}
