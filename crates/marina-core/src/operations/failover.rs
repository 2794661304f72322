//! The `failover` operation: promote a replica because the primary failed (or
//! an operator forces it).
//!
//! Steps:
//! 1. `elect`: probe the replicas afresh and elect one (`elect.rs`); the choice
//!    is recorded on the operation (`node_id`) so a resumed run keeps it.
//! 2. `fence_old_primary`: the old primary is cut off at the data path (every
//!    TCP packet to its port reset, every packet from it dropped: clients,
//!    replicas, a frozen process that resumes) and the writer endpoint leads
//!    nowhere (the cluster is `failing_over`); replicas stop receiving; then —
//!    if the old primary answers — it is set read-only and its clients killed.
//!    If it does not answer, the monitor fences it the moment it is seen again
//!    (it is no longer the primary). The data-path fence is lifted by the
//!    monitor once the node follows the new primary.
//! 3. `apply_relay_log`: wait until the candidate has applied everything it
//!    received (`MASTER_GTID_WAIT`), bounded by `failover.relay_apply_timeout_secs`.
//! 4. `promote`: stop its replication, make it writable (semisync master on),
//!    record the roles, and give the old primary a rejoin limit (the new
//!    primary's GTID position now).
//! 5. `repoint_replicas`: the other reachable replicas follow the new primary
//!    (`MASTER_USE_GTID=slave_pos`); unreachable ones are attached by the monitor.
//! 6. `move_endpoints`: the cluster serves again; the writer endpoint leads to
//!    the new primary.

use std::sync::Arc;
use std::time::Duration;

use marina_common::Error;
use marina_common::model::*;
use marina_engine::probe::ProbeConn;

use super::StepContext;
use super::elect::{Candidate, elect};
use super::step::StepKind;
use super::{admin_err, new_operation};
use crate::Marina;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::Elect,
    StepKind::FenceOldPrimary,
    StepKind::ApplyRelayLog,
    StepKind::Promote,
    StepKind::RepointReplicas,
    StepKind::MoveEndpoints,
];

/// Statuses from which a failover may start.
const FAILOVER_FROM: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded, ClusterStatus::Failed];

/// Probe timeout used by operations.
const OP_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl Marina {
    /// Records a failover operation (`target`: a replica to promote). The monitor
    /// calls it with `forced = false`; `POST …/failover` with `forced = true`.
    pub async fn start_failover(
        &self,
        cluster: &ClusterRecord,
        target: Option<&str>,
        forced: bool,
    ) -> Result<Operation, Error> {
        let nodes = self.store.list_nodes(&cluster.id).await?;
        if nodes.len() < 2 {
            return Err(Error::Conflict(format!(
                "cluster {} has one node: there is no replica to promote",
                cluster.name
            )));
        }
        if let Some(t) = target
            && !nodes.iter().any(|n| n.id == t && n.role == NodeRole::Replica)
        {
            return Err(Error::InvalidRequest(format!(
                "target_node_id {t:?} is not a replica of cluster {}",
                cluster.name
            )));
        }
        let mut op = new_operation(&cluster.tenant_id, OperationType::Failover, &cluster.id);
        op.node_id = target.map(String::from);
        if !self
            .store
            .begin_cluster_operation(&cluster.id, FAILOVER_FROM, ClusterStatus::FailingOver, &op)
            .await?
        {
            let now = self
                .store
                .get_cluster(None, &cluster.id)
                .await?
                .map(|c| c.status.to_string())
                .unwrap_or_default();
            return Err(Error::Conflict(format!(
                "cluster {} is {now}; a failover can start once its current operation finishes",
                cluster.name
            )));
        }
        if forced {
            self.event(
                &cluster.tenant_id,
                &cluster.id,
                target,
                "failover_requested",
                format!("forced failover requested (operation {})", op.id),
            )
            .await;
        }
        self.work.notify_one();
        self.reconcile.notify_one();
        Ok(op)
    }
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let cluster_id = cluster.id.as_str();
    // The elected node, once recorded.
    let current = app
        .store
        .get_operation(None, &op.id)
        .await?
        .ok_or_else(|| Error::internal("operation vanished"))?;
    let candidate = current
        .node_id
        .as_deref()
        .and_then(|id| nodes.iter().find(|n| n.id == id));
    let old_primary = nodes
        .iter()
        .find(|n| n.role == NodeRole::Primary && Some(n.id.as_str()) != current.node_id.as_deref());
    match step {
        StepKind::Elect => {
            let mut cands = Vec::new();
            for n in nodes.iter().filter(|n| n.role == NodeRole::Replica) {
                let usable = n.status.may_be_promoted();
                let probe = ProbeConn::new(app.mgmt_addr(n, &secrets))
                    .probe(OP_PROBE_TIMEOUT)
                    .await
                    .ok();
                let received = probe
                    .as_ref()
                    .and_then(|p| p.replica.as_ref())
                    .map(|r| r.gtid_io_pos.clone())
                    .filter(|s| !s.is_empty());
                cands.push(Candidate {
                    node_id: n.id.clone(),
                    ordinal: n.ordinal,
                    server_id: probe.as_ref().map_or(n.server_id, |p| p.server_id),
                    eligible: usable && probe.is_some(),
                    gtid_binlog_pos: probe.as_ref().map(|p| p.gtid_binlog_pos.clone()).unwrap_or_default(),
                    gtid_slave_pos: probe.as_ref().map(|p| p.gtid_slave_pos.clone()).unwrap_or_default(),
                    received_pos: received
                        .or_else(|| probe.as_ref().map(|p| p.gtid_slave_pos.clone()))
                        .unwrap_or_default(),
                });
            }
            // A resumed run keeps its earlier choice.
            let chosen = elect(&cands, current.node_id.as_deref()).map_err(Error::Conflict)?;
            app.store.set_operation_node(&op.id, &chosen).await?;
            app.event(
                &cluster.tenant_id,
                cluster_id,
                Some(&chosen),
                "failover_elected",
                format!("elected {chosen} to become the primary"),
            )
            .await;
            Ok(())
        }
        StepKind::FenceOldPrimary => {
            // Cut the old primary off at the data path before anything else:
            // even if a frozen process resumes now it can neither take nor
            // acknowledge a write, its clients' connections are closed, and
            // nothing below waits on it.
            if let Some(old) = old_primary.filter(|o| !o.fenced) {
                app.store.set_node_fenced(&old.id, true).await?;
            }
            crate::supervisor::apply_endpoints(app).await?;
            stop_receiving(app, &nodes, old_primary, &secrets).await;
            if let Some(old) = old_primary {
                // Trust the monitor: a primary it cannot reach is not waited for.
                let reachable = app.monitor.node(&old.id).is_some_and(|h| h.reachable);
                let fenced = if reachable {
                    let addr = app.mgmt_addr(old, &secrets);
                    tokio::time::timeout(OP_PROBE_TIMEOUT, app.admin.fence(&addr))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                } else {
                    None
                };
                let msg = match fenced {
                    Some(killed) => format!(
                        "old primary {} answered: set read-only, {killed} client connection(s) killed",
                        old.id
                    ),
                    None => format!(
                        "old primary {} does not answer; it is cut from the writer endpoint and will be fenced if it returns",
                        old.id
                    ),
                };
                app.event(&cluster.tenant_id, cluster_id, Some(&old.id), "old_primary_fenced", msg)
                    .await;
            }
            Ok(())
        }
        StepKind::ApplyRelayLog => {
            let c = candidate.ok_or_else(|| Error::internal("no elected candidate"))?;
            let addr = app.mgmt_addr(c, &secrets);
            // A backup's copy may have stopped its SQL thread (best effort:
            // the wait below says whether it applied everything).
            let _ = app.admin.start_sql_thread(&addr).await;
            // An old primary that still answers (a forced failover) is read-only
            // by now: its final position is the target, as in a switchover.
            // Otherwise, everything the candidate received.
            let old_pos = match old_primary.filter(|o| app.monitor.node(&o.id).is_some_and(|h| h.reachable)) {
                Some(o) => ProbeConn::new(app.mgmt_addr(o, &secrets))
                    .probe(OP_PROBE_TIMEOUT)
                    .await
                    .ok()
                    .filter(|p| p.read_only)
                    .map(|p| p.gtid_binlog_pos),
                None => None,
            };
            let target = match old_pos {
                Some(p) => p,
                None => {
                    let probe = ProbeConn::new(addr.clone())
                        .probe(OP_PROBE_TIMEOUT)
                        .await
                        .map_err(admin_err)?;
                    probe.replica.map(|r| r.gtid_io_pos).unwrap_or_default()
                }
            };
            if target.is_empty() {
                return Ok(());
            }
            let timeout = Duration::from_secs(app.config.failover.relay_apply_timeout_secs);
            if !app
                .admin
                .wait_for_gtid(&addr, &target, timeout)
                .await
                .map_err(admin_err)?
            {
                return Err(Error::Unavailable(format!(
                    "{} did not reach GTID {target} within {timeout:?}",
                    c.id
                )));
            }
            Ok(())
        }
        StepKind::Promote => {
            let c = candidate.ok_or_else(|| Error::internal("no elected candidate"))?;
            promote(app, &cluster, c, old_primary, &secrets, true).await
        }
        StepKind::RepointReplicas => {
            let c = candidate.ok_or_else(|| Error::internal("no elected candidate"))?;
            repoint(app, &cluster, &nodes, c, old_primary, &secrets).await;
            Ok(())
        }
        StepKind::MoveEndpoints => {
            finish(app, &cluster, ClusterStatus::FailingOver).await?;
            let took = current
                .started_at
                .as_deref()
                .and_then(marina_common::time_fmt::parse_rfc3339)
                .map(|t| (time::OffsetDateTime::now_utc() - t).whole_milliseconds())
                .unwrap_or(0);
            app.event(
                &cluster.tenant_id,
                cluster_id,
                candidate.map(|c| c.id.as_str()),
                "failover_completed",
                format!(
                    "failover completed in {took} ms: {} is the primary; the writer endpoint leads to it",
                    candidate.map(|c| c.id.as_str()).unwrap_or("?")
                ),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown failover step {other}"))),
    }
}

/// Every replica stops receiving from the old primary, in parallel and
/// without waiting on it: its IO thread is killed, the sockets to the old
/// primary are destroyed (a thread that was reconnecting waits on one), then
/// replication's IO side is stopped. Bounded; a replica that does not answer
/// is left to the monitor.
async fn stop_receiving(
    app: &Arc<Marina>,
    nodes: &[NodeRecord],
    old_primary: Option<&NodeRecord>,
    secrets: &ClusterSecrets,
) {
    let replicas: Vec<_> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Replica)
        .map(|n| app.mgmt_addr(n, secrets))
        .collect();
    on_each(app, &replicas, |app, addr| async move {
        app.admin.kill_io_thread(&addr).await
    })
    .await;
    if let Some(addr) = old_primary.and_then(|o| Some(std::net::SocketAddrV4::new(o.host.parse().ok()?, o.port))) {
        app.datapath.close_connections_to(addr).await;
    }
    on_each(app, &replicas, |app, addr| async move {
        app.admin.stop_io_thread(&addr).await
    })
    .await;
}

/// Runs `f` on every address at once, each bounded by three probe timeouts;
/// failures are left to the monitor.
async fn on_each<F, Fut>(app: &Arc<Marina>, addrs: &[marina_engine::NodeAddr], f: F)
where
    F: Fn(Arc<Marina>, marina_engine::NodeAddr) -> Fut,
    Fut: std::future::Future<Output = Result<(), marina_engine::AdminError>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for addr in addrs {
        set.spawn(tokio::time::timeout(OP_PROBE_TIMEOUT * 3, f(app.clone(), addr.clone())));
    }
    while set.join_next().await.is_some() {}
}

/// Makes `c` the primary (idempotent) and records the roles. With
/// `rejoin_limit`, the old primary may rejoin only within `c`'s position now.
pub(super) async fn promote(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    c: &NodeRecord,
    old_primary: Option<&NodeRecord>,
    secrets: &ClusterSecrets,
    rejoin_limit: bool,
) -> Result<(), Error> {
    let addr = app.mgmt_addr(c, secrets);
    // An old primary that rejoined may be promoted before its data-path
    // fence was lifted: a primary is never fenced.
    if c.fenced {
        app.store.set_node_fenced(&c.id, false).await?;
    }
    if c.role != NodeRole::Primary {
        app.admin.stop_replication(&addr).await.map_err(admin_err)?;
    }
    app.admin
        .make_primary(&addr, cluster.primary_waits_for_acks())
        .await
        .map_err(admin_err)?;
    if c.role == NodeRole::Primary {
        return Ok(()); // Recorded by an earlier run of this step.
    }
    let pos = ProbeConn::new(addr)
        .probe(OP_PROBE_TIMEOUT)
        .await
        .map_err(admin_err)?
        .gtid_binlog_pos;
    if let Some(old) = old_primary {
        let status = if rejoin_limit { NodeStatus::Down } else { old.status };
        app.store.update_node(&old.id, NodeRole::Replica, status).await?;
        app.store
            .set_node_ha(&old.id, None, rejoin_limit.then_some(pos.as_str()))
            .await?;
    }
    app.store
        .update_node(&c.id, NodeRole::Primary, NodeStatus::Active)
        .await?;
    app.event(
        &cluster.tenant_id,
        &cluster.id,
        Some(&c.id),
        "node_promoted",
        format!("{} promoted to primary at GTID {pos}", c.id),
    )
    .await;
    Ok(())
}

/// Points every other reachable replica at the new primary (best effort: the
/// monitor attaches the rest when they answer).
pub(super) async fn repoint(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    nodes: &[NodeRecord],
    new_primary: &NodeRecord,
    old_primary: Option<&NodeRecord>,
    secrets: &ClusterSecrets,
) {
    let source = app.replica_source(new_primary, secrets);
    for n in nodes
        .iter()
        .filter(|n| n.id != new_primary.id && Some(n.id.as_str()) != old_primary.map(|o| o.id.as_str()))
    {
        // Failed and maintenance nodes stay put; a demoted primary (rejoin limit
        // set) rejoins through the monitor's history check, never blindly.
        if n.status.is_sticky() || n.rejoin_gtid.is_some() {
            continue;
        }
        let addr = app.mgmt_addr(n, secrets);
        // `demote`: a node's own binlog history becomes its replication position,
        // a no-op for a plain replica and right for a cleanly demoted primary.
        match tokio::time::timeout(OP_PROBE_TIMEOUT * 2, app.admin.start_replica(&addr, &source, true)).await {
            Ok(Ok(())) => {}
            _ => {
                app.event(
                    &cluster.tenant_id,
                    &cluster.id,
                    Some(&n.id),
                    "replica_repoint_deferred",
                    format!(
                        "replica {} did not answer; the monitor attaches it to {} when it does",
                        n.id, new_primary.id
                    ),
                )
                .await
            }
        }
    }
}

/// Ends a failover/switchover: the cluster serves again and routes follow.
pub(super) async fn finish(app: &Arc<Marina>, cluster: &ClusterRecord, from: ClusterStatus) -> Result<(), Error> {
    app.store.set_writer_paused(&cluster.id, false).await?;
    let nodes = app.store.list_nodes(&cluster.id).await?;
    let status = if nodes.iter().all(|n| n.status.is_as_intended()) {
        ClusterStatus::Active
    } else {
        ClusterStatus::Degraded
    };
    app.store
        .update_cluster_status(&cluster.id, &[from], status, None)
        .await?;
    crate::supervisor::apply_endpoints(app).await
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(StepContext {
        cluster: c,
        nodes,
        secrets,
    }) = StepContext::load_if_present(app, op).await?
    else {
        return Ok(());
    };
    let cluster_id = c.id.as_str();
    // If a primary exists and answers, serve again; otherwise stay failed.
    let primary_ok = match nodes.iter().find(|n| n.role == NodeRole::Primary) {
        Some(p) => ProbeConn::new(app.mgmt_addr(p, &secrets))
            .probe(OP_PROBE_TIMEOUT)
            .await
            .is_ok_and(|p| !p.read_only),
        None => false,
    };
    let status = if primary_ok {
        ClusterStatus::Degraded
    } else {
        ClusterStatus::Failed
    };
    app.store
        .update_cluster_status(cluster_id, &[ClusterStatus::FailingOver], status, None)
        .await?;
    crate::supervisor::apply_endpoints(app).await?;
    app.event(
        &c.tenant_id,
        cluster_id,
        None,
        "failover_failed",
        format!("failover failed: {e}; cluster is {status}"),
    )
    .await;
    Ok(())
}
