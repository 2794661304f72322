//! The operation worker: claims unfinished operations from the store and runs
//! their steps. Activated by a signal (a new operation was recorded) and by a
//! timer; at start-up its first activation picks up whatever a crashed process
//! left running.

use marina_common::Error;
use marina_common::model::{Operation, OperationError, OperationStatus, OperationType, StepStatus};
use marina_common::time_fmt::now_rfc3339;
use std::sync::Arc;

use super::step::Step;
use super::{
    add_node, backup, create, delete, failover, move_node, node_action, remove_node, reseed, resize, restore,
    switchover,
};
use crate::claim::Claim;
use crate::{Marina, failpoint};

/// One activation (`background/`): starts every unfinished operation not
/// already running here; returns how many started and how many run.
pub(crate) async fn claim_once(app: &Arc<Marina>) -> Result<(usize, usize), Error> {
    let mut started = 0;
    for op in app.store.unfinished_operations().await? {
        // Held until the operation ends, fails or panics.
        let claim = Claim::take(app, |m| &m.inflight, &op.id).map(|c| c.on_release(|m| m.reconcile.notify_one()));
        if let Some(guard) = claim {
            started += 1;
            tokio::spawn(execute(app.clone(), op, guard));
        }
    }
    let running = app.inflight.lock().unwrap_or_else(|e| e.into_inner()).len();
    Ok((started, running))
}

async fn execute(app: Arc<Marina>, op: Operation, _guard: Claim) {
    let started = std::time::Instant::now();
    tracing::info!(op_id = %op.id, op_type = %op.op_type, "running operation");
    let (status, error) = match op.error.clone() {
        // It failed before a restart: only its failure handler runs again,
        // never the failed step against a cluster being rolled back.
        Some(recorded) => {
            tracing::warn!(op_id = %op.id, error = %recorded.message, "resuming a failed operation's failure handler");
            on_failure(&app, &op, &Error::internal(recorded.message.clone())).await;
            (OperationStatus::Failed, Some(recorded))
        }
        None => match steps_in_own_task(&app, &op).await {
            Ok(()) => (OperationStatus::Succeeded, None),
            Err(e) => {
                tracing::warn!(op_id = %op.id, error = %e, "operation failed");
                let error = operation_error(&e);
                // Durable before the handler runs (see above); if this write
                // fails, a restart re-runs the step, as before the failure.
                if let Err(err) = app.store.record_operation_error(&op.id, &error).await {
                    tracing::error!(op_id = %op.id, error = %err, "cannot record an operation's failure");
                }
                failpoint::hit(&format!("{}:on_failure:before", op.op_type));
                on_failure(&app, &op, &e).await;
                (OperationStatus::Failed, Some(error))
            }
        },
    };
    if let Err(e) = app
        .store
        .finish_operation(&op.id, status, error.as_ref(), &now_rfc3339())
        .await
    {
        tracing::error!(op_id = %op.id, error = %e, "cannot record the end of an operation; it will run again");
    } else {
        tracing::info!(op_id = %op.id, %status, elapsed_ms = started.elapsed().as_millis() as u64, "operation finished");
        // From creation (a resumed operation counts its time before a restart).
        let elapsed = marina_common::time_fmt::parse_rfc3339(&op.created_at)
            .map(|t| (time::OffsetDateTime::now_utc() - t).unsigned_abs())
            .unwrap_or_else(|| started.elapsed());
        app.metrics.operation(
            op.op_type.as_str(),
            op.cluster_id.as_deref(),
            status == OperationStatus::Succeeded,
            elapsed,
        );
    }
}

/// The steps run in a task of their own: a panic in one is the operation's
/// failure (rolled back by its failure handler), not a stuck cluster.
async fn steps_in_own_task(app: &Arc<Marina>, op: &Operation) -> Result<(), Error> {
    let (a, o) = (app.clone(), op.clone());
    match tokio::spawn(async move { run_steps(&a, &o).await }).await {
        Ok(r) => r,
        Err(e) => Err(Error::internal(format!(
            "a step panicked: {}",
            crate::background::panic_message(e)
        ))),
    }
}

/// How a failure is recorded and shown.
fn operation_error(e: &Error) -> OperationError {
    let message = match e {
        Error::Internal { context } => context.clone(),
        other => other.to_string(),
    };
    OperationError {
        code: e.code().into(),
        message,
    }
}

async fn run_steps(app: &Arc<Marina>, op: &Operation) -> Result<(), Error> {
    app.store.start_operation(&op.id, &now_rfc3339()).await?;
    // An evaluation of the monitor acting on the cluster finishes first; the
    // next one sees the operation's cluster status and leaves it alone.
    if let Some(cluster_id) = op.cluster_id.as_deref() {
        app.evaluation_turns.pass(cluster_id).await;
    }
    // A node restart the supervisor began before this operation took the
    // cluster finishes first (see the supervisor's rules). Not for a
    // failover: the writes are down, it stops or removes no node, and the
    // supervisor never restarts the primary it replaces.
    if let Some(cluster_id) = op
        .cluster_id
        .as_deref()
        .filter(|_| op.op_type != OperationType::Failover)
    {
        app.restart_turns.pass(cluster_id).await;
    }
    for (idx, step) in op.steps.iter().enumerate() {
        if matches!(step.status, StepStatus::Succeeded | StepStatus::Skipped) {
            continue;
        }
        app.store
            .update_step(&op.id, idx, StepStatus::Running, &now_rfc3339())
            .await?;
        let point = format!("{}:{}", op.op_type, step.name);
        failpoint::hit(&format!("{point}:before"));
        failpoint::panic_point(&format!("step:{point}"));
        let outcome = match Step::parse(&step.name) {
            Some(typed) => run_step(app, op, &typed).await,
            None => Err(Error::internal(format!(
                "operation {} has a step this version does not know: {:?}",
                op.id, step.name
            ))),
        };
        if let Err(e) = outcome {
            let _ = app
                .store
                .update_step(&op.id, idx, StepStatus::Failed, &now_rfc3339())
                .await;
            return Err(e);
        }
        failpoint::hit(&format!("{point}:after"));
        app.store
            .update_step(&op.id, idx, StepStatus::Succeeded, &now_rfc3339())
            .await?;
    }
    Ok(())
}

/// Runs one typed step of `op`.
async fn run_step(app: &Arc<Marina>, op: &Operation, step: &Step) -> Result<(), Error> {
    use OperationType as T;
    match (op.op_type, step) {
        (_, Step::Switchover(k)) => switchover::run_embedded_step(app, op, *k).await,
        (T::ResizeNode | T::ResizeCluster | T::RebootCluster, _) => resize::run_step(app, op, step).await,
        (t, Step::Resize(_) | Step::Reboot(_)) => Err(Error::internal(format!(
            "a {t} operation has a rolling step {}",
            step.name()
        ))),
        (T::CreateCluster, Step::Own(k)) => create::run_step(app, op, *k).await,
        (T::DeleteCluster, Step::Own(k)) => delete::run_step(app, op, *k).await,
        (T::Failover, Step::Own(k)) => failover::run_step(app, op, *k).await,
        (T::Switchover, Step::Own(k)) => switchover::run_step(app, op, *k).await,
        (T::Backup, Step::Own(k)) => backup::run_step(app, op, *k).await,
        (T::RestoreCluster, Step::Own(k)) => restore::run_step(app, op, *k).await,
        (T::ReseedNode, Step::Own(k)) => reseed::run_step(app, op, *k).await,
        (T::AddNode, Step::Own(k)) => add_node::run_step(app, op, *k).await,
        (T::RemoveNode, Step::Own(k)) => remove_node::run_step(app, op, *k).await,
        (T::MoveNode, Step::Own(k)) => move_node::run_step(app, op, *k).await,
        (_, Step::Own(k)) => node_action::run_step(app, op, *k).await,
    }
}

async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) {
    let outcome = match op.op_type {
        OperationType::CreateCluster => create::on_failure(app, op, e).await,
        OperationType::DeleteCluster => delete::on_failure(app, op, e).await,
        OperationType::Failover => failover::on_failure(app, op, e).await,
        OperationType::Switchover => switchover::on_failure(app, op, e).await,
        OperationType::Backup => backup::on_failure(app, op, e).await,
        OperationType::RestoreCluster => restore::on_failure(app, op, e).await,
        OperationType::ReseedNode => reseed::on_failure(app, op, e).await,
        OperationType::AddNode => add_node::on_failure(app, op, e).await,
        OperationType::MoveNode => move_node::on_failure(app, op, e).await,
        OperationType::RemoveNode
        | OperationType::RebootNode
        | OperationType::ResizeNode
        | OperationType::ResizeCluster
        | OperationType::RebootCluster => node_action::on_failure_moving_primary(app, op, e).await,
        _ => node_action::on_failure(app, op, e).await,
    };
    if let Err(err) = outcome {
        tracing::error!(op_id = %op.id, error = %err, "failure handler failed");
    }
}
