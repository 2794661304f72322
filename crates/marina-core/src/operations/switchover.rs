//! The `switchover` operation: a planned, lossless change of primary.
//!
//! Steps:
//! 1. `check`: primary answers; the target (given, or the most advanced replica)
//!    is eligible and lags at most `failover.switchover_max_lag_secs`; the
//!    target then catches up to the primary's position of that moment (up to
//!    10 s) while writes still flow, so the pause below stays short.
//! 2. `block_writes`: the writer endpoint refuses new connections (clients retry
//!    and land on the new primary afterwards).
//! 3. `demote_primary`: wait up to `failover.switchover_wait_trx_secs` for the
//!    transactions open at its start to finish, then set the primary read-only and kill client
//!    connections (a long transaction is rolled back, never half-moved).
//! 4. `sync_target`: wait until the target has applied the old primary's final
//!    GTID position — the no-lost-write guarantee.
//! 5. `promote`: the target becomes the writable primary.
//! 6. `repoint_replicas`: the other replicas and the old primary follow it.
//! 7. `move_endpoints`: writes are released; the writer endpoint leads to the
//!    new primary.
//!
//! On failure before `promote`, the old primary is made writable again and writes
//! are released: a failed switchover leaves the cluster as it was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use marina_common::Error;
use marina_common::model::*;
use marina_engine::probe::ProbeConn;

use super::StepContext;
use super::elect::{Candidate, elect};
use super::failover::{finish, promote, repoint};
use super::step::StepKind;
use super::{admin_err, new_operation};
use crate::Marina;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::Check,
    StepKind::BlockWrites,
    StepKind::DemotePrimary,
    StepKind::SyncTarget,
    StepKind::Promote,
    StepKind::RepointReplicas,
    StepKind::MoveEndpoints,
];

const OP_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long `check` lets the target catch up before writes are held.
const PRE_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times the replicas are examined before a switchover is refused.
const SWITCHOVER_CHECK_ATTEMPTS: usize = 3;

impl Marina {
    /// Checks and records a switchover (`target`: the replica to promote).
    pub async fn start_switchover(&self, cluster: &ClusterRecord, target: Option<&str>) -> Result<Operation, Error> {
        if !matches!(cluster.status, ClusterStatus::Active | ClusterStatus::Degraded) {
            return Err(Error::Conflict(format!(
                "cluster {} is {}; a switchover needs a serving cluster with no operation running",
                cluster.name, cluster.status
            )));
        }
        let nodes = self.store.list_nodes(&cluster.id).await?;
        let chosen = self.switchover_target(cluster, &nodes, target).await?;
        let mut op = new_operation(&cluster.tenant_id, OperationType::Switchover, &cluster.id);
        op.node_id = Some(chosen);
        let from = [ClusterStatus::Active, ClusterStatus::Degraded];
        if !self
            .store
            .begin_cluster_operation(&cluster.id, &from, ClusterStatus::Updating, &op)
            .await?
        {
            return Err(Error::Conflict(format!(
                "cluster {} has another operation running",
                cluster.name
            )));
        }
        self.event(
            &cluster.tenant_id,
            &cluster.id,
            op.node_id.as_deref(),
            "switchover_requested",
            format!(
                "switchover to {} requested (operation {})",
                op.node_id.as_deref().unwrap_or("?"),
                op.id
            ),
        )
        .await;
        self.work.notify_one();
        Ok(op)
    }

    /// Elects and checks a switchover target (409 with the failed checks).
    pub(crate) async fn switchover_target(
        &self,
        cluster: &ClusterRecord,
        nodes: &[NodeRecord],
        target: Option<&str>,
    ) -> Result<String, Error> {
        let secrets = self.cluster_secrets(cluster)?;
        let primary = nodes
            .iter()
            .find(|n| n.role == NodeRole::Primary)
            .ok_or_else(|| Error::Conflict("the cluster has no primary".into()))?;
        if let Some(t) = target
            && !nodes.iter().any(|n| n.id == t && n.role == NodeRole::Replica)
        {
            return Err(Error::InvalidRequest(format!(
                "target_node_id {t:?} is not a replica of cluster {}",
                cluster.name
            )));
        }
        ProbeConn::new(self.mgmt_addr(primary, &secrets))
            .probe(OP_PROBE_TIMEOUT)
            .await
            .map_err(|e| Error::Conflict(format!("the primary does not answer ({e}); use a failover instead")))?;
        // Replication states are sometimes briefly in flux (an IO thread
        // reconnecting after a heartbeat gap): look a few times before refusing.
        let mut last_refusal = String::new();
        for attempt in 0..SWITCHOVER_CHECK_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            match self.switchover_candidates(nodes, primary, &secrets, target).await? {
                Ok(chosen) => return Ok(chosen),
                Err(why) => last_refusal = why,
            }
        }
        Err(Error::Conflict(format!("switchover refused: {last_refusal}")))
    }

    /// One look at the replicas: the chosen target, or why there is none.
    async fn switchover_candidates(
        &self,
        nodes: &[NodeRecord],
        primary: &NodeRecord,
        secrets: &ClusterSecrets,
        target: Option<&str>,
    ) -> Result<Result<String, String>, Error> {
        let max_lag = self.config.failover.switchover_max_lag_secs;
        let mut cands = Vec::new();
        let mut problems = Vec::new();
        for n in nodes.iter().filter(|n| n.role == NodeRole::Replica) {
            let probe = ProbeConn::new(self.mgmt_addr(n, secrets)).probe(OP_PROBE_TIMEOUT).await;
            let problem = match &probe {
                Err(e) => Some(format!("{} does not answer ({e})", n.id)),
                Ok(p) => match &p.replica {
                    None => Some(format!("{} is not replicating", n.id)),
                    Some(r) if r.master_port != primary.port => Some(format!(
                        "{} replicates from port {}, not the primary",
                        n.id, r.master_port
                    )),
                    Some(r) if !r.io_running() || !r.sql_running => Some(format!(
                        "{} replication threads are IO {} / SQL {}",
                        n.id,
                        r.io_state,
                        if r.sql_running { "Yes" } else { "No" }
                    )),
                    Some(r) => match r.seconds_behind {
                        Some(l) if l <= max_lag => None,
                        lag => Some(format!(
                            "{} lags {} (limit {max_lag} s)",
                            n.id,
                            lag.map_or("an unknown time".into(), |l| format!("{l} s"))
                        )),
                    },
                },
            };
            let usable = problem.is_none() && n.status.may_be_promoted();
            if let Some(p) = problem {
                problems.push(p);
            }
            let probe = probe.ok();
            cands.push(Candidate {
                node_id: n.id.clone(),
                ordinal: n.ordinal,
                server_id: probe.as_ref().map_or(n.server_id, |p| p.server_id),
                eligible: usable,
                gtid_binlog_pos: probe.as_ref().map(|p| p.gtid_binlog_pos.clone()).unwrap_or_default(),
                gtid_slave_pos: probe.as_ref().map(|p| p.gtid_slave_pos.clone()).unwrap_or_default(),
                received_pos: probe.as_ref().map(|p| p.gtid_slave_pos.clone()).unwrap_or_default(),
            });
        }
        // A planned switchover syncs the target first, so any eligible target
        // will do; without one, the most advanced eligible replica.
        let pick = match target {
            Some(t) => cands
                .iter()
                .find(|c| c.node_id == t && c.eligible)
                .map(|c| c.node_id.clone())
                .ok_or_else(|| {
                    if problems.is_empty() {
                        format!("{t} is not eligible")
                    } else {
                        problems.join("; ")
                    }
                }),
            None => elect(&cands, None).map_err(|e| if problems.is_empty() { e } else { problems.join("; ") }),
        };
        Ok(pick)
    }
}

/// Operations that move the primary away first (removing or rebooting it)
/// run these steps as their own, named `switchover:<step>`.
pub(super) fn embedded_steps() -> impl Iterator<Item = String> {
    STEPS.iter().map(|k| super::step::Step::Switchover(*k).name())
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let target_id = op
        .node_id
        .as_deref()
        .ok_or_else(|| Error::internal("switchover without target"))?;
    switchover_step(app, op, target_id, step, true).await
}

/// A `switchover:<step>` of an embedding operation; the target is its
/// `params.switchover_to`, elected when the operation was recorded.
pub(super) async fn run_embedded_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let target = op
        .params
        .as_ref()
        .and_then(|p| p["switchover_to"].as_str())
        .ok_or_else(|| Error::internal(format!("operation {} has no switchover target", op.id)))?;
    switchover_step(app, op, target, step, false).await
}

/// One step of a switchover to `target_id`. `standalone`: the operation is the
/// switchover itself, whose last step also ends the cluster's `updating`; an
/// embedding operation only gets its writes released.
pub(super) async fn switchover_step(
    app: &Arc<Marina>,
    op: &Operation,
    target_id: &str,
    step: StepKind,
    standalone: bool,
) -> Result<(), Error> {
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let cluster_id = cluster.id.as_str();
    let target = nodes
        .iter()
        .find(|n| n.id == target_id)
        .ok_or_else(|| Error::internal("target vanished"))?;
    let old = nodes.iter().find(|n| n.role == NodeRole::Primary && n.id != target_id);
    match step {
        StepKind::Check => {
            if let Some(old) = old {
                let pos = ProbeConn::new(app.mgmt_addr(old, &secrets))
                    .probe(OP_PROBE_TIMEOUT)
                    .await
                    .map_err(|e| Error::Conflict(format!("the primary does not answer ({e}); use a failover instead")))?
                    .gtid_binlog_pos;
                // Catch up while writes still flow, so the pause that follows
                // only covers the last moment's transactions. A target that
                // does not catch up in time is synced under the pause instead.
                let _ = app
                    .admin
                    .wait_for_gtid(&app.mgmt_addr(target, &secrets), &pos, PRE_SYNC_TIMEOUT)
                    .await;
            }
            Ok(())
        }
        StepKind::BlockWrites => {
            app.store.set_writer_paused(cluster_id, true).await?;
            crate::supervisor::apply_endpoints(app).await
        }
        StepKind::DemotePrimary => {
            let Some(old) = old else { return Ok(()) };
            let addr = app.mgmt_addr(old, &secrets);
            let wait = Duration::from_secs(app.config.failover.switchover_wait_trx_secs);
            let start = Instant::now();
            // The transactions open now may finish; ones that begin meanwhile
            // on connections opened before `block_writes` are cut by the fence
            // (unacknowledged, so nothing is lost): a steady writer holds the
            // pause to about one list refresh instead of the whole wait.
            let mut waiting = app.admin.open_transactions(&addr).await.map_err(admin_err)?;
            while !waiting.is_empty() && start.elapsed() < wait {
                tokio::time::sleep(marina_engine::admin::TRX_LIST_REFRESH).await;
                let open = app.admin.open_transactions(&addr).await.map_err(admin_err)?;
                waiting.retain(|id| open.contains(id));
            }
            let killed = app.admin.fence(&addr).await.map_err(admin_err)?;
            app.event(&cluster.tenant_id, cluster_id, Some(&old.id), "primary_demoted", format!(
                "primary {} set read-only after waiting {} ms for open transactions; {killed} client connection(s) killed",
                old.id,
                start.elapsed().as_millis()
            ))
            .await;
            Ok(())
        }
        StepKind::SyncTarget => {
            let Some(old) = old else { return Ok(()) };
            let pos = ProbeConn::new(app.mgmt_addr(old, &secrets))
                .probe(OP_PROBE_TIMEOUT)
                .await
                .map_err(admin_err)?
                .gtid_binlog_pos;
            let timeout = Duration::from_secs(app.config.failover.relay_apply_timeout_secs);
            if !app
                .admin
                .wait_for_gtid(&app.mgmt_addr(target, &secrets), &pos, timeout)
                .await
                .map_err(admin_err)?
            {
                return Err(Error::Unavailable(format!(
                    "{target_id} did not reach the primary's position {pos} in {timeout:?}"
                )));
            }
            Ok(())
        }
        StepKind::Promote => promote(app, &cluster, target, old, &secrets, false).await,
        StepKind::RepointReplicas => {
            // The old primary is a replica now (recorded by `promote`) and, being
            // cleanly demoted, is repointed with the others.
            repoint(app, &cluster, &nodes, target, None, &secrets).await;
            Ok(())
        }
        StepKind::MoveEndpoints => {
            if standalone {
                finish(app, &cluster, ClusterStatus::Updating).await?;
            } else {
                app.store.set_writer_paused(cluster_id, false).await?;
                crate::supervisor::apply_endpoints(app).await?;
            }
            app.event(
                &cluster.tenant_id,
                cluster_id,
                Some(target_id),
                "switchover_completed",
                format!("switchover completed: {target_id} is the primary"),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown switchover step {other}"))),
    }
}

/// After a failed switchover (standalone or embedded): before promotion the
/// old primary is still the primary in the store, after it the new one is;
/// either way the stored primary is made writable and writes are released.
pub(super) async fn serve_from_stored_primary(app: &Arc<Marina>, ctx: &StepContext) -> Result<(), Error> {
    if let Some(p) = ctx.nodes.iter().find(|n| n.role == NodeRole::Primary) {
        let _ = app
            .admin
            .make_primary(&app.mgmt_addr(p, &ctx.secrets), ctx.cluster.primary_waits_for_acks())
            .await;
    }
    app.store.set_writer_paused(&ctx.cluster.id, false).await?;
    Ok(())
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(ctx) = StepContext::load_if_present(app, op).await? else {
        return Ok(());
    };
    serve_from_stored_primary(app, &ctx).await?;
    let c = ctx.cluster;
    let cluster_id = c.id.as_str();
    finish(app, &c, ClusterStatus::Updating).await?;
    app.event(
        &c.tenant_id,
        cluster_id,
        None,
        "switchover_failed",
        format!("switchover failed: {e}; the primary is unchanged and writes are released"),
    )
    .await;
    Ok(())
}
