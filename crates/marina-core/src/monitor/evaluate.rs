//! Carrying out the monitor's plan for one cluster (`plan.rs`): gathers the
//! observations (health, exits, disk use, recent failovers, paused
//! replicas), asks the pure planner what to do, and does it.
//!
//! Rules:
//! - Every store write is guarded (`MonitorWrite`): it lands only while the
//!   cluster's generation is the one this evaluation read and the node still
//!   has the role (and status) the plan saw — an operation that began since,
//!   or changed a node, wins.
//! - The evaluation holds the cluster's turn (`Marina::evaluation_turns`), so
//!   no operation starts while it acts.
//! - One replica's action failing is logged and the others go on; a failed
//!   side effect is retried by the next tick (the plan is recomputed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use marina_common::model::*;
use marina_common::{Error, time_fmt};
use marina_engine::{NodeAddr, ReplicaSource};
use marina_store::MonitorWrite;

use super::plan::{self, Action, Observations, Settings};
use super::replica_plan::ReplicaAction;
use crate::Marina;
use crate::operations::admin_err;

/// Which records an evaluation plans from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Records {
    /// The tick's read, without the cluster's turn: only a plan whose
    /// actions are all in memory (`Action::in_memory`) is carried out.
    Tick,
    /// A fresh read under the cluster's turn: every action is carried out.
    Fresh,
}

/// Plans for a cluster and carries the plan out; false when the plan (from
/// the tick's records) needs a fresh read to be acted on.
pub(super) async fn evaluate(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    nodes: &[NodeRecord],
    records: Records,
) -> Result<bool, Error> {
    let now = Instant::now();
    let wall = time::OffsetDateTime::now_utc();
    let Some(primary) = nodes.iter().find(|n| n.role == NodeRole::Primary) else {
        return Ok(true);
    };
    let health: HashMap<String, super::NodeHealth> = nodes
        .iter()
        .filter_map(|n| app.monitor.node(&n.id).map(|h| (n.id.clone(), h)))
        .collect();
    let Some(ph) = health.get(&primary.id) else {
        return Ok(true);
    };
    let settings = app.monitor_settings();
    // Failover history matters only to a primary that is not answering.
    let recent_failovers = if ph.reachable {
        Vec::new()
    } else {
        app.recent_failovers(cluster, wall).await?
    };
    let disk: Vec<(String, super::disk::NodeDisk)> = nodes
        .iter()
        .filter_map(|n| app.monitor.node_disk(&n.id).map(|d| (n.id.clone(), d)))
        .collect();
    // Which replicas a running backup paused matters only for a replica
    // whose SQL thread is stopped: the store is asked only then.
    let sql_stopped = health.values().any(|h| {
        h.probe
            .as_ref()
            .and_then(|p| p.replica.as_ref())
            .is_some_and(|r| !r.sql_running)
    });
    let paused: HashSet<String> = if sql_stopped {
        app.store
            .unfinished_backups(&cluster.id)
            .await?
            .into_iter()
            .filter(|b| b.status == BackupStatus::Running)
            .filter_map(|b| b.source_node_id)
            .collect()
    } else {
        HashSet::new()
    };
    let repair_allowed: HashSet<String> = nodes
        .iter()
        .filter(|n| app.monitor.relay_repairs.would_allow(&n.id, now))
        .map(|n| n.id.clone())
        .collect();
    let obs = Observations {
        cluster,
        nodes,
        health: &health,
        primary_exited: app.monitor.exited(&primary.id),
        recent_failovers: &recent_failovers,
        disk: &disk,
        host_free: app.monitor.host_free(),
        disk_limited: app.monitor.disk_limited(&cluster.id).is_some(),
        disk_fenced: app.monitor.disk_fenced(&cluster.id),
        paused: &paused,
        repair_allowed: &repair_allowed,
    };
    let actions = plan::plan(&obs, &settings, now, wall);
    if actions.iter().all(Action::in_memory) {
        for action in actions {
            act_in_memory(app, cluster, &action);
        }
        return Ok(true);
    }
    if records == Records::Tick {
        return Ok(false);
    }
    let secrets = app.cluster_secrets(cluster)?;
    let cx = Context {
        app,
        cluster,
        nodes,
        health: &health,
        secrets: &secrets,
        primary,
    };
    let mut changed = false;
    for action in actions {
        let replica = matches!(action, Action::Replica { .. });
        match cx.act(action).await {
            Ok(c) => changed |= c,
            Err(e) if replica => tracing::warn!(cluster_id = %cluster.id, error = %e, "replica reconciliation failed"),
            Err(e) => return Err(e),
        }
    }
    if changed {
        app.reconcile.notify_one();
    }
    Ok(true)
}

/// Carries out an action that changes only the monitor's memory.
fn act_in_memory(app: &Arc<Marina>, cluster: &ClusterRecord, action: &Action) {
    match action {
        Action::ClearDecision => app.monitor.clear_decision(&cluster.id),
        Action::ProbeSoon => app.monitor.probe_soon(app, Duration::from_millis(30)),
        _ => {}
    }
}

/// What an evaluation acts with.
struct Context<'a> {
    app: &'a Arc<Marina>,
    cluster: &'a ClusterRecord,
    nodes: &'a [NodeRecord],
    health: &'a HashMap<String, super::NodeHealth>,
    secrets: &'a ClusterSecrets,
    primary: &'a NodeRecord,
}

impl Context<'_> {
    fn node(&self, id: &str) -> Result<&NodeRecord, Error> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::internal(format!("the plan named an unknown node {id}")))
    }

    /// A guarded store write; whether it landed.
    async fn write(&self, w: MonitorWrite<'_>) -> Result<bool, Error> {
        Ok(self
            .app
            .store
            .monitor_write(&self.cluster.id, self.cluster.generation, &w)
            .await?)
    }

    async fn event(&self, node: Option<&str>, kind: &str, msg: String) {
        let c = self.cluster;
        self.app.event(&c.tenant_id, &c.id, node, kind, msg).await;
    }

    /// Carries out one action; returns whether the data path should be
    /// refreshed (a status or fence changed).
    async fn act(&self, action: Action) -> Result<bool, Error> {
        let (app, cluster) = (self.app, self.cluster);
        let pid = Some(self.primary.id.as_str());
        match action {
            Action::Fence { node, kill } => fence(app, cluster, self.node(&node)?, kill, self.secrets).await?,
            Action::StartFailover { evidence } => match app.start_failover(cluster, None, false).await {
                Ok(op) => {
                    app.monitor.clear_decision(&cluster.id);
                    let msg = format!("{evidence}; automatic failover started (operation {})", op.id);
                    self.event(pid, "failover_started", msg).await;
                }
                Err(e) => {
                    let msg = format!("{evidence}; automatic failover could not start: {e}");
                    record_once(app, cluster, pid, "failover_refused", &msg, msg.clone()).await;
                    let to = ClusterStatus::Failed;
                    if cluster.status != to && self.write(MonitorWrite::ClusterStatus { to }).await? {
                        self.event(None, "cluster_status", format!("cluster {} is {to}", cluster.name))
                            .await;
                    }
                }
            },
            Action::Note { kind, key, msg } => record_once(app, cluster, pid, kind, &key, msg).await,
            Action::ClearDecision | Action::ProbeSoon => act_in_memory(app, cluster, &action),
            Action::DiskLimit { reason, fence, hold } => {
                disk_limit(app, cluster, self.primary, self.secrets, reason, (fence, hold)).await?
            }
            Action::DiskRelease => {
                if app.monitor.set_disk_limited(&cluster.id, None) {
                    let msg = format!(
                        "every node is below {}% of its disk quota: the primary takes writes again",
                        super::disk::RELEASE_PERCENT
                    );
                    self.event(pid, "disk_quota_released", msg).await;
                }
            }
            Action::MakeWritable { node } => {
                let n = self.node(&node)?;
                let semisync = cluster.primary_waits_for_acks();
                app.admin
                    .make_primary(&app.mgmt_addr(n, self.secrets), semisync)
                    .await
                    .map_err(admin_err)?;
                let msg = format!("primary {} was read-only (restarted?); made writable", n.id);
                self.event(Some(&n.id), "primary_writable", msg).await;
            }
            Action::Replica { node, action } => return self.replica(self.node(&node)?, action).await,
            Action::NodeStatus {
                node,
                role,
                from,
                to,
                detail,
            } => {
                let w = MonitorWrite::NodeStatus {
                    node_id: &node,
                    role,
                    from,
                    to,
                };
                if !self.write(w).await? {
                    return Ok(false);
                }
                let (kind, msg) = match to {
                    NodeStatus::Active => ("node_active", format!("node {node} ({role}) is active")),
                    _ => ("node_down", format!("node {node} ({role}) is {to}: {detail}")),
                };
                self.event(Some(&node), kind, msg).await;
                return Ok(true);
            }
            Action::ClusterStatus { to } => {
                if !self.write(MonitorWrite::ClusterStatus { to }).await? {
                    return Ok(false);
                }
                self.event(None, "cluster_status", format!("cluster {} is {to}", cluster.name))
                    .await;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Carries out what `replica_plan::plan` decided for one replica.
    async fn replica(&self, n: &NodeRecord, action: ReplicaAction) -> Result<bool, Error> {
        let (app, cluster, primary) = (self.app, self.cluster, self.primary);
        let addr = app.mgmt_addr(n, self.secrets);
        let source = app.replica_source(primary, self.secrets);
        let role = n.role;
        match action {
            ReplicaAction::Restart => app
                .admin
                .start_replica(&addr, &source, false)
                .await
                .map_err(admin_err)?,
            ReplicaAction::RecordApplied { pos } => {
                app.admin.stop_io_thread(&addr).await.map_err(admin_err)?;
                app.admin.set_slave_pos(&addr, &pos).await.map_err(admin_err)?;
                app.admin
                    .start_replica(&addr, &source, false)
                    .await
                    .map_err(admin_err)?;
                let msg = format!(
                    "replica {} had applied transactions its replication position lost (a crash); its position is \
                     now {pos}, from its binlog",
                    n.id
                );
                self.event(Some(&n.id), "replica_position_repaired", msg).await;
            }
            ReplicaAction::RepairRelayLog { error } => {
                app.monitor.relay_repairs.allow(&n.id, Instant::now());
                let applied = self
                    .health
                    .get(&n.id)
                    .and_then(|h| h.probe.as_ref())
                    .map_or("", |p| p.gtid_slave_pos.as_str());
                repair_relay_log(app, cluster, n, (&addr, &source), &error, applied).await?;
            }
            ReplicaAction::Fail { reason } => {
                let w = MonitorWrite::FailNode {
                    node_id: &n.id,
                    role,
                    reason: &reason,
                };
                if self.write(w).await? {
                    let msg = format!("node {} is failed: {reason}", n.id);
                    self.event(Some(&n.id), "node_failed", msg).await;
                    return Ok(true);
                }
            }
            ReplicaAction::Reseed => auto_reseed(app, cluster, n).await?,
            ReplicaAction::Rejoin { mine, limit } => {
                app.admin.start_replica(&addr, &source, true).await.map_err(admin_err)?;
                self.write(MonitorWrite::ClearRejoinLimit { node_id: &n.id, role })
                    .await?;
                let msg = format!(
                    "node {} rejoined as a replica of {} (its history {mine} is within {limit})",
                    n.id, primary.id
                );
                self.event(Some(&n.id), "node_rejoined", msg).await;
            }
            ReplicaAction::ClearRejoinLimit => {
                self.write(MonitorWrite::ClearRejoinLimit { node_id: &n.id, role })
                    .await?;
            }
            ReplicaAction::LiftFence => {
                if self.write(MonitorWrite::Unfence { node_id: &n.id, role }).await? {
                    let msg = format!(
                        "node {} follows the primary {} read-only: its data-path fence is lifted",
                        n.id, primary.id
                    );
                    self.event(Some(&n.id), "node_unfenced", msg).await;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// Records a decision as an event once: repeated identical decisions (`key`)
/// on later ticks stay silent until the situation changes.
async fn record_once(app: &Marina, cluster: &ClusterRecord, node_id: Option<&str>, kind: &str, key: &str, msg: String) {
    if app.monitor.decide(&cluster.id, key) {
        app.event(&cluster.tenant_id, &cluster.id, node_id, kind, msg).await;
    }
}

/// Fences a writable node that is not the primary.
///
/// A demoted primary (it has a rejoin limit) is killed outright: a transaction it
/// binlogged but nobody acknowledged may still be waiting for a semi-sync ack,
/// and `read_only` would let it commit when the wait ends. Killed, it dies
/// uncommitted; the supervisor restarts the node as a replica
/// (`init_rpl_role=SLAVE`), crash recovery discards it, and the node can rejoin.
/// Any other writable replica is set read-only and its clients are disconnected.
async fn fence(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    n: &NodeRecord,
    kill: bool,
    secrets: &ClusterSecrets,
) -> Result<(), Error> {
    let msg = if kill {
        app.runtime_of(n)
            .await?
            .kill(&n.id)
            .await
            .map_err(crate::operations::runtime_err)?;
        app.reconcile.notify_one();
        format!(
            "old primary {} came back writable: killed at once (uncommitted transactions are discarded when it \
             restarts as a replica)",
            n.id
        )
    } else {
        let killed = app.admin.fence(&app.mgmt_addr(n, secrets)).await.map_err(admin_err)?;
        format!(
            "node {} was writable but is not the primary: set read-only, {killed} client connection(s) killed",
            n.id
        )
    };
    app.event(&cluster.tenant_id, &cluster.id, Some(&n.id), "node_fenced", msg)
        .await;
    Ok(())
}

/// Holds the primary read-only for the disk quota (`plan.rs` decided the
/// cluster is limited), with one event when that starts; `fence`: ends
/// every session once, `hold`: interrupts a statement still writing.
async fn disk_limit(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    primary: &NodeRecord,
    secrets: &ClusterSecrets,
    reason: String,
    (fence, hold): (bool, bool),
) -> Result<(), Error> {
    // Recorded (and said) first, so whoever sees a refused write can read
    // why; a failed `read_only` is retried by the next tick.
    if app.monitor.set_disk_limited(&cluster.id, Some(reason.clone())) {
        tracing::warn!(cluster_id = %cluster.id, %reason, "disk quota reached");
        app.event(
            &cluster.tenant_id,
            &cluster.id,
            Some(&primary.id),
            "disk_quota_read_only",
            reason,
        )
        .await;
    }
    let addr = app.mgmt_addr(primary, secrets);
    let ended = if fence {
        let ended = app.admin.kill_client_connections(&addr).await.map_err(admin_err)?;
        app.admin.set_read_only(&addr, true).await.map_err(admin_err)?;
        app.monitor.set_disk_fenced(&cluster.id);
        ended
    } else if hold {
        app.admin.hold_read_only(&addr).await.map_err(admin_err)?
    } else {
        0
    };
    if ended > 0 || fence {
        let msg = format!(
            "writes were still running at the disk quota's line: the primary is read-only and {ended} running \
             statement(s) or client session(s) were stopped"
        );
        tracing::warn!(cluster_id = %cluster.id, ended, "disk quota: primary fenced");
        app.event(
            &cluster.tenant_id,
            &cluster.id,
            Some(&primary.id),
            "disk_quota_fenced",
            msg,
        )
        .await;
    }
    Ok(())
}

/// Rebuilds a diverged replica from the primary (`failover.auto_reseed`).
async fn auto_reseed(app: &Arc<Marina>, cluster: &ClusterRecord, n: &NodeRecord) -> Result<(), Error> {
    match app
        .start_reseed(cluster, &n.id, ReseedFrom::Primary, "automatic: its history diverged")
        .await
    {
        Ok(_) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Throws away a replica's unreadable relay log by re-attaching it: it fetches
/// again from the GTID position it applied (`relay_repair.rs`).
async fn repair_relay_log(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    n: &NodeRecord,
    (addr, source): (&NodeAddr, &ReplicaSource),
    error: &str,
    gtid_slave_pos: &str,
) -> Result<(), Error> {
    app.admin.start_replica(addr, source, false).await.map_err(admin_err)?;
    app.event(
        &cluster.tenant_id,
        &cluster.id,
        Some(&n.id),
        "relay_log_repaired",
        format!(
            "replica {} could not use its relay log ({error}); the relay log was discarded and the replica fetches \
             again from its GTID position {}",
            n.id, gtid_slave_pos
        ),
    )
    .await;
    Ok(())
}

impl Marina {
    /// The monitor's settings that its decisions depend on (`plan.rs`).
    pub(crate) fn monitor_settings(&self) -> Settings {
        let (m, f) = (&self.config.monitor, &self.config.failover);
        Settings {
            failure_window: Duration::from_millis(m.failure_window_ms),
            witness_silence: Duration::from_millis(m.witness_silence_ms),
            settle: Duration::from_secs(f.min_interval_secs),
            flap_limit: f.limit,
            disk_reserve: (self.config.capacity.disk_reserve_gib * (1u64 << 30) as f64) as u64,
        }
    }

    /// Start times of a cluster's failovers within the anti-flapping window.
    pub(crate) async fn recent_failovers(
        &self,
        cluster: &ClusterRecord,
        wall: time::OffsetDateTime,
    ) -> Result<Vec<time::OffsetDateTime>, Error> {
        let window = time::Duration::seconds(self.config.failover.window_secs as i64);
        let since = time_fmt::format_rfc3339(wall - window);
        Ok(self
            .store
            .operation_times_since(&cluster.id, OperationType::Failover, &since)
            .await?
            .iter()
            .filter_map(|t| time_fmt::parse_rfc3339(t))
            .collect())
    }
}
