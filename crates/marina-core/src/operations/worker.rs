//! The operation worker: claims unfinished operations from the store and runs
//! their steps. Activated by a signal (a new operation was recorded) and by a
//! timer; at start-up its first activation picks up whatever a crashed process
//! left running.

use std::sync::Arc;
use std::time::Duration;

use marina_common::Error;
use marina_common::model::{Operation, OperationError, OperationStatus, OperationType, StepStatus};
use marina_common::time_fmt::now_rfc3339;
use tokio_util::sync::CancellationToken;

use super::{
    add_node, backup, create, delete, failover, node_action, remove_node, reseed, resize, restore, switchover,
};
use crate::{Marina, failpoint};

/// Worker loop.
pub async fn run(app: Arc<Marina>, cancel: CancellationToken) {
    loop {
        match app.store.unfinished_operations().await {
            Ok(ops) => {
                for op in ops {
                    let fresh = app
                        .inflight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(op.id.clone());
                    if fresh {
                        tokio::spawn(execute(app.clone(), op));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "operation worker cannot read the store"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = app.work.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn execute(app: Arc<Marina>, op: Operation) {
    let started = std::time::Instant::now();
    tracing::info!(op_id = %op.id, op_type = %op.op_type, "running operation");
    let result = run_steps(&app, &op).await;
    let (status, error) = match result {
        Ok(()) => (OperationStatus::Succeeded, None),
        Err(e) => {
            tracing::warn!(op_id = %op.id, error = %e, "operation failed");
            on_failure(&app, &op, &e).await;
            let message = match &e {
                Error::Internal { context } => context.clone(),
                other => other.to_string(),
            };
            (
                OperationStatus::Failed,
                Some(OperationError {
                    code: e.code().into(),
                    message,
                }),
            )
        }
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
    app.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&op.id);
    app.reconcile.notify_one();
}

async fn run_steps(app: &Arc<Marina>, op: &Operation) -> Result<(), Error> {
    app.store.start_operation(&op.id, &now_rfc3339()).await?;
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
        let outcome = match op.op_type {
            OperationType::CreateCluster => create::run_step(app, op, &step.name).await,
            OperationType::DeleteCluster => delete::run_step(app, op, &step.name).await,
            OperationType::Failover => failover::run_step(app, op, &step.name).await,
            OperationType::Switchover => switchover::run_step(app, op, &step.name).await,
            OperationType::Backup => backup::run_step(app, op, &step.name).await,
            OperationType::RestoreCluster => restore::run_step(app, op, &step.name).await,
            OperationType::ReseedNode => reseed::run_step(app, op, &step.name).await,
            _ if step.name.starts_with(switchover::EMBEDDED_PREFIX) => {
                switchover::run_embedded_step(app, op, &step.name).await
            }
            OperationType::AddNode => add_node::run_step(app, op, &step.name).await,
            OperationType::RemoveNode => remove_node::run_step(app, op, &step.name).await,
            OperationType::ResizeNode | OperationType::ResizeCluster | OperationType::RebootCluster => {
                resize::run_step(app, op, &step.name).await
            }
            _ => node_action::run_step(app, op, &step.name).await,
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
