//! Durable operations: every change to a running system is an operation with
//! named steps, stored before any work starts and executed by the worker.
//!
//! Rules for steps:
//! - A step is idempotent: running it again after a crash at any line (before,
//!   during, or after its side effects, before or after it is marked done) gives
//!   the same result. Steps therefore read desired state from the store and
//!   converge towards it rather than replaying deltas.
//! - Progress is recorded per step; a restarted worker resumes at the first step
//!   not marked succeeded.
//! - A failing step fails the operation with the step's error and runs the
//!   operation type's failure handler (which leaves nothing running that the
//!   store does not know about).

mod add_node;
mod backup;
mod create;
mod datadir;
mod delete;
pub mod elect;
mod failover;
pub(crate) mod move_node;
mod node_action;
mod remove_node;
mod reseed;
mod resize;
mod restore;
pub mod step;
mod switchover;
pub mod worker;

use marina_common::model::{Operation, OperationStatus, OperationStep, OperationType, StepStatus};
use marina_common::{ids, time_fmt};
use step::{Step, StepKind};

/// The steps of each operation type, in order.
pub fn steps_for(t: OperationType) -> &'static [StepKind] {
    match t {
        OperationType::CreateCluster => create::STEPS,
        OperationType::DeleteCluster => delete::STEPS,
        OperationType::Failover => failover::STEPS,
        OperationType::Switchover => switchover::STEPS,
        OperationType::Backup => backup::STEPS,
        OperationType::RestoreCluster => restore::STEPS,
        OperationType::ReseedNode => reseed::STEPS,
        OperationType::AddNode => add_node::STEPS,
        OperationType::RemoveNode => remove_node::STEPS,
        OperationType::MoveNode => move_node::STEPS,
        OperationType::ResizeNode | OperationType::ResizeCluster | OperationType::RebootCluster => &[StepKind::Finish],
        t => node_action::steps(t),
    }
}

fn pending(name: String) -> OperationStep {
    OperationStep {
        name,
        status: StepStatus::Pending,
        started_at: None,
        finished_at: None,
    }
}

/// A rolling operation's steps: one per replica (`per_node`:
/// `Step::Resize` or `Step::Reboot`), then the switchover's (when
/// `switchover`), then the primary's, then `finish`.
pub fn rolling_steps(
    per_node: fn(String) -> Step,
    replicas: &[&str],
    primary: Option<&str>,
    switchover: bool,
) -> Vec<OperationStep> {
    let node_step = |id: &&str| pending(per_node(id.to_string()).name());
    let mut steps: Vec<OperationStep> = replicas.iter().map(node_step).collect();
    if switchover {
        steps.extend(switchover::embedded_steps().map(pending));
    }
    steps.extend(primary.as_ref().map(node_step));
    steps.push(pending(StepKind::Finish.as_str().into()));
    steps
}

/// Like `new_operation`, with a switchover's steps first (`switchover:<step>`):
/// for operations on the primary that move it away before acting.
pub fn new_operation_with_switchover(tenant_id: &str, t: OperationType, cluster_id: &str) -> Operation {
    let mut op = new_operation(tenant_id, t, cluster_id);
    let own = std::mem::take(&mut op.steps);
    op.steps = switchover::embedded_steps().map(pending).chain(own).collect();
    op
}

/// A new pending operation on a cluster with its steps.
pub fn new_operation(tenant_id: &str, t: OperationType, cluster_id: &str) -> Operation {
    Operation {
        id: ids::new_id(ids::prefix::OPERATION),
        object: "operation",
        op_type: t,
        status: OperationStatus::Pending,
        cluster_id: Some(cluster_id.into()),
        node_id: None,
        params: None,
        tenant_id: tenant_id.into(),
        created_at: time_fmt::now_rfc3339(),
        started_at: None,
        finished_at: None,
        error: None,
        steps: steps_for(t).iter().map(|k| pending(k.as_str().into())).collect(),
    }
}

use std::future::Future;
use std::sync::Arc;

use marina_common::Error;
use marina_common::model::NodeRecord;

use crate::Marina;

/// Runs `f` for every node concurrently; the first error wins (the others still
/// run to completion so nothing is left half-done in the background).
pub(crate) async fn each_node<F, Fut>(app: &Arc<Marina>, nodes: &[NodeRecord], f: F) -> Result<(), Error>
where
    F: Fn(Arc<Marina>, NodeRecord) -> Fut,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for n in nodes {
        set.spawn(f(app.clone(), n.clone()));
    }
    let mut first = None;
    while let Some(res) = set.join_next().await {
        let res = res.unwrap_or_else(|e| Err(Error::internal(format!("node task panicked: {e}"))));
        if let Err(e) = res {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// What a step of a cluster operation works on, read afresh from the store at
/// every step (steps never trust what an earlier run had in memory).
pub(crate) struct StepContext {
    pub cluster: marina_common::model::ClusterRecord,
    pub nodes: Vec<NodeRecord>,
    pub secrets: marina_common::model::ClusterSecrets,
}

impl StepContext {
    pub(crate) async fn load(app: &Marina, op: &Operation) -> Result<Self, Error> {
        let id = op.cluster_id.as_deref().unwrap_or_default();
        Self::load_if_present(app, op)
            .await?
            .ok_or_else(|| Error::internal(format!("cluster {id} vanished during {}", op.op_type)))
    }

    /// Like `load`, but a cluster that is gone (or an operation without one) is
    /// `None` — what failure handlers want.
    pub(crate) async fn load_if_present(app: &Marina, op: &Operation) -> Result<Option<Self>, Error> {
        let Some(id) = op.cluster_id.as_deref() else {
            return Ok(None);
        };
        let Some(cluster) = app.store.get_cluster(None, id).await? else {
            return Ok(None);
        };
        let nodes = app.store.list_nodes(id).await?;
        let secrets = app.cluster_secrets(&cluster)?;
        Ok(Some(StepContext {
            cluster,
            nodes,
            secrets,
        }))
    }
}

/// How long a clean shutdown of a node may take before it is killed.
pub(crate) const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The cluster's primary among `nodes`.
pub(crate) fn primary_of(nodes: &[NodeRecord]) -> Result<&NodeRecord, Error> {
    nodes
        .iter()
        .find(|n| n.role == marina_common::model::NodeRole::Primary)
        .ok_or_else(|| Error::internal("cluster has no primary"))
}

/// The node an operation acts on (`op.node_id`), among `nodes`.
pub(crate) fn op_node<'a>(op: &Operation, nodes: &'a [NodeRecord]) -> Result<&'a NodeRecord, Error> {
    let id = op.node_id.as_deref().unwrap_or_default();
    nodes
        .iter()
        .find(|n| n.id == id)
        .ok_or_else(|| Error::internal(format!("node {id} of operation {} is gone", op.id)))
}

/// The last step of a node operation: the cluster leaves `updating` for
/// `active` (the monitor then judges it) and the endpoints are applied.
pub(crate) async fn end_updating(app: &Arc<Marina>, cluster_id: &str) -> Result<(), Error> {
    app.store
        .update_cluster_status(
            cluster_id,
            &[marina_common::model::ClusterStatus::Updating],
            marina_common::model::ClusterStatus::Active,
            None,
        )
        .await?;
    crate::supervisor::apply_endpoints(app).await
}

/// Attaches a node holding a fresh physical copy (added or reseeded): its
/// replication and binlog history is reset, `gtid_slave_pos` set to the
/// copy's GTID, and it replicates from `primary` — unless it already does (a
/// resumed step keeps its position).
pub(crate) async fn attach_copy(
    app: &Marina,
    node: &NodeRecord,
    primary: &NodeRecord,
    secrets: &marina_common::model::ClusterSecrets,
    gtid: &str,
) -> Result<(), Error> {
    let addr = app.mgmt_addr(node, secrets);
    let following = app
        .admin
        .replica_status(&addr)
        .await
        .map_err(admin_err)?
        .is_some_and(|s| s.io_running && s.sql_running);
    if !following {
        app.admin.reset_history(&addr).await.map_err(admin_err)?;
        app.admin.set_slave_pos(&addr, gtid).await.map_err(admin_err)?;
        app.admin.set_read_only(&addr, true).await.map_err(admin_err)?;
        app.admin
            .start_replica(&addr, &app.replica_source(primary, secrets), false)
            .await
            .map_err(admin_err)?;
    }
    create::wait_replicating(app, &addr).await
}

/// Runtime failures are reported to users as they are (they say what to do).
pub(crate) fn runtime_err(e: marina_runtime::RuntimeError) -> Error {
    Error::Unavailable(e.to_string())
}

/// MariaDB management failures.
pub(crate) fn admin_err(e: marina_engine::AdminError) -> Error {
    Error::Unavailable(e.to_string())
}
