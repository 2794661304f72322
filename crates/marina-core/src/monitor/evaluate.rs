//! Acting on the monitor's view of one cluster: failure decisions, fencing,
//! rejoining, and node/cluster statuses.
//!
//! Rules, applied in this order on every tick to every cluster not under an
//! operation:
//! 1. **Detect** (`detect.rs`). A failed primary starts a failover operation —
//!    unless the cluster is in `manual` mode or the anti-flapping guard refuses
//!    (a crash loop, `flapping.rs`); every refusal is an event listing why,
//!    and the cluster is `failed` (not serving writes) until an operator acts.
//! 2. **Fence**: a reachable node that is writable but is not the primary is
//!    fenced before anything else — a returning old primary is killed (see
//!    `fence`), any other node is set read-only and its clients disconnected.
//! 3. **Primary**: a reachable primary that is read-only (it restarted) is made
//!    writable again — unless the user holds it read-only (`manual` mode only).
//! 4. **Replicas**: decided purely by `replica_plan.rs` (rejoin within the
//!    primary's history or fail as diverged, restart stopped threads, relay-log
//!    repair, auto-reseed, lifting an old primary's limit and fence) and carried
//!    out here.
//! 5. **Statuses**: nodes are `active` when healthy in their role and `down`
//!    otherwise (`failed`, `maintenance` and `stopped` are sticky); the cluster
//!    is `active` when all nodes are active or out of service on purpose
//!    (`stopped`, `maintenance`), `degraded` when the primary serves but
//!    something is unhealthy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use marina_common::model::*;
use marina_common::{Error, time_fmt};
use marina_engine::{NodeAddr, ReplicaSource};

use super::detect::{Observed, PrimaryVerdict, assess_primary};
use super::replica_plan::{self, ReplicaAction, ReplicaView};
use super::view::NodeHealth;
use crate::Marina;
use crate::operations::admin_err;

pub(super) async fn evaluate(app: &Arc<Marina>, cluster: &ClusterRecord, nodes: &[NodeRecord]) -> Result<(), Error> {
    let now = Instant::now();
    let Some(primary) = nodes.iter().find(|n| n.role == NodeRole::Primary) else {
        return Ok(());
    };
    let Some(ph) = app.monitor.node(&primary.id) else {
        return Ok(());
    };
    let secrets = app.cluster_secrets(cluster)?;
    let witnesses: Vec<(String, Observed)> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Replica && !n.status.is_sticky())
        .filter_map(|n| app.monitor.node(&n.id).map(|h| (n, h)))
        .map(|(n, h)| {
            let io_connected = h
                .probe
                .as_ref()
                .and_then(|p| p.replica.as_ref())
                .is_some_and(|r| r.io_running() && r.master_port == primary.port && r.master_host == primary.host);
            let o = Observed {
                reachable: h.reachable,
                failing_for: h.failing_for(now),
                io_connected,
                silent_for: now.duration_since(h.last_heard),
                exited: false,
            };
            (n.id.clone(), o)
        })
        .collect();
    let primary_obs = Observed {
        reachable: ph.reachable,
        failing_for: ph.failing_for(now),
        io_connected: false,
        silent_for: Duration::ZERO,
        exited: app.monitor.exited(&primary.id),
    };
    let verdict = assess_primary(
        &primary_obs,
        &witnesses,
        Duration::from_millis(app.config.monitor.failure_window_ms),
        Duration::from_millis(app.config.monitor.witness_silence_ms),
    );

    // 2. Fence any writable non-primary first, whatever else is going on. A
    // fenced node's view is stale for the rest of this tick.
    let mut fenced = std::collections::HashSet::new();
    for n in nodes.iter().filter(|n| n.role == NodeRole::Replica) {
        if app.monitor.node(&n.id).is_some_and(|h| h.is_writable()) {
            fence(app, cluster, n, &secrets).await?;
            fenced.insert(n.id.clone());
        }
    }

    let mut primary_failed_refused = false;
    let pid = Some(primary.id.as_str());
    match &verdict {
        PrimaryVerdict::Failed { evidence } => {
            let refusal = match app.failover_refusal(cluster).await? {
                Some(why) => format!("{evidence}; failover refused: {why}"),
                None => match app.start_failover(cluster, None, false).await {
                    Ok(op) => {
                        app.monitor.clear_decision(&cluster.id);
                        let msg = format!("{evidence}; automatic failover started (operation {})", op.id);
                        app.event(&cluster.tenant_id, &cluster.id, pid, "failover_started", msg)
                            .await;
                        return Ok(());
                    }
                    Err(e) => format!("{evidence}; automatic failover could not start: {e}"),
                },
            };
            record_once(app, cluster, pid, "failover_refused", &refusal, refusal.clone()).await;
            primary_failed_refused = true;
        }
        PrimaryVerdict::NotFailed { reason } => {
            record_once(app, cluster, pid, "failover_skipped", reason, reason.clone()).await;
        }
        PrimaryVerdict::Suspect { .. } => {
            if primary_obs.exited {
                // The replicas are about to notice: look again very soon.
                app.monitor.probe_soon(app, Duration::from_millis(30));
            }
            let msg = format!(
                "primary {} is not answering probes ({})",
                primary.id,
                ph.last_error.clone().unwrap_or_default()
            );
            record_once(app, cluster, pid, "primary_suspect", "suspect", msg).await;
        }
        PrimaryVerdict::Healthy => app.monitor.clear_decision(&cluster.id),
    }

    // Disk quotas (`disk.rs`): a cluster over its quota keeps its primary read-only.
    let disk_limited = if verdict == PrimaryVerdict::Healthy {
        disk_quota(app, cluster, nodes, primary, &ph, &secrets).await?
    } else {
        app.monitor.disk_limited(&cluster.id).is_some()
    };
    let held_read_only = cluster.primary_read_only || disk_limited;
    // Replicas whose SQL thread a physical backup stopped for its copy.
    let paused: std::collections::HashSet<String> = app
        .store
        .unfinished_backups(&cluster.id)
        .await?
        .into_iter()
        .filter(|b| b.status == BackupStatus::Running && b.method == BackupMethod::Physical)
        .filter_map(|b| b.source_node_id)
        .collect();

    if verdict == PrimaryVerdict::Healthy {
        // 3. The primary must be writable.
        if ph.probe.as_ref().is_some_and(|p| p.read_only) && !held_read_only {
            let semisync = cluster.primary_waits_for_acks();
            app.admin
                .make_primary(&app.mgmt_addr(primary, &secrets), semisync)
                .await
                .map_err(admin_err)?;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                Some(&primary.id),
                "primary_writable",
                format!("primary {} was read-only (restarted?); made writable", primary.id),
            )
            .await;
        }
        // 4. Replicas follow it.
        for n in nodes
            .iter()
            .filter(|n| n.role == NodeRole::Replica && !fenced.contains(&n.id))
        {
            let paused = paused.contains(&n.id);
            if let Some(h) = app.monitor.node(&n.id)
                && let Err(e) = reconcile_replica(app, cluster, (primary, &ph), (n, &h, paused), &secrets).await
            {
                tracing::warn!(node_id = %n.id, error = %e, "replica reconciliation failed");
            }
        }
    }

    // 5. Statuses.
    let nodes = app.store.list_nodes(&cluster.id).await?;
    let mut changed = false;
    for n in nodes.iter().filter(|n| !fenced.contains(&n.id)) {
        let Some(h) = app.monitor.node(&n.id) else { continue };
        let want = node_status(
            n,
            &h,
            nodes.iter().find(|p| p.role == NodeRole::Primary),
            held_read_only,
            paused.contains(&n.id),
        );
        // Guarded: a node whose role or status changed since this read (an
        // operation's doing) is left as it is now.
        if want != n.status && app.store.set_node_status_if(&n.id, n.role, n.status, want).await? {
            changed = true;
            let kind = if want == NodeStatus::Active {
                "node_active"
            } else {
                "node_down"
            };
            let detail = h.last_error.clone().unwrap_or_else(|| "not healthy in its role".into());
            let msg = match want {
                NodeStatus::Active => format!("node {} ({}) is active", n.id, n.role),
                _ => format!("node {} ({}) is {want}: {detail}", n.id, n.role),
            };
            app.event(&cluster.tenant_id, &cluster.id, Some(&n.id), kind, msg).await;
        }
    }
    let primary_active = nodes
        .iter()
        .any(|n| n.role == NodeRole::Primary && n.status == NodeStatus::Active);
    let want = if primary_failed_refused {
        ClusterStatus::Failed
    } else if primary_active && nodes.iter().all(|n| n.status.is_as_intended()) {
        ClusterStatus::Active
    } else {
        ClusterStatus::Degraded
    };
    if want != cluster.status {
        let done = app
            .store
            .update_cluster_status(
                &cluster.id,
                &[ClusterStatus::Active, ClusterStatus::Degraded, ClusterStatus::Failed],
                want,
                None,
            )
            .await?;
        if done.is_some() {
            changed = true;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                None,
                "cluster_status",
                format!("cluster {} is {want}", cluster.name),
            )
            .await;
        }
    }
    if changed {
        app.reconcile.notify_one();
    }
    Ok(())
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
    secrets: &ClusterSecrets,
) -> Result<(), Error> {
    let msg = if n.rejoin_gtid.is_some() {
        app.runtime.kill(&n.id).await.map_err(crate::operations::runtime_err)?;
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

/// The status a node should have given its latest health (`held_read_only`:
/// the user holds the primary read-only, which is then as intended).
/// Decides the cluster's disk state (`disk::assess`) and acts on it: holds
/// the primary read-only while limited, with one event when that starts and
/// one when it ends. Returns whether the cluster is limited.
async fn disk_quota(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    nodes: &[NodeRecord],
    primary: &NodeRecord,
    ph: &NodeHealth,
    secrets: &ClusterSecrets,
) -> Result<bool, Error> {
    use super::disk::{self, DiskVerdict};
    let usage: Vec<(String, disk::NodeDisk)> = nodes
        .iter()
        .filter_map(|n| app.monitor.node_disk(&n.id).map(|d| (n.id.clone(), d)))
        .collect();
    let limited_now = app.monitor.disk_limited(&cluster.id).is_some();
    let reserve = (app.config.capacity.disk_reserve_gib * (1u64 << 30) as f64) as u64;
    let host_free = app.monitor.host_free();
    match disk::assess(&usage, host_free, reserve, limited_now) {
        DiskVerdict::Limited { reason, full } => {
            // Recorded (and said) first, so whoever sees a refused write can
            // read why; a failed `read_only` is retried by the next tick.
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
            let fence = full && !app.monitor.disk_fenced(&cluster.id);
            // A statement still writing would hold `read_only` off: it is
            // interrupted first then (`hold_read_only`); every session is
            // ended, once, if a node reaches its whole quota anyway.
            let ended = if fence {
                let ended = app.admin.kill_client_connections(&addr).await.map_err(admin_err)?;
                app.admin.set_read_only(&addr, true).await.map_err(admin_err)?;
                app.monitor.set_disk_fenced(&cluster.id);
                ended
            } else if ph.is_writable() {
                app.admin.hold_read_only(&addr).await.map_err(admin_err)?
            } else {
                0
            };
            if ended > 0 || fence {
                let msg = format!(
                    "writes were still running at the disk quota's line: the primary is read-only and {ended} \
                     running statement(s) or client session(s) were stopped"
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
            Ok(true)
        }
        DiskVerdict::Within => {
            if app.monitor.set_disk_limited(&cluster.id, None) {
                let msg = format!(
                    "every node is below {}% of its disk quota: the primary takes writes again",
                    disk::RELEASE_PERCENT
                );
                app.event(
                    &cluster.tenant_id,
                    &cluster.id,
                    Some(&primary.id),
                    "disk_quota_released",
                    msg,
                )
                .await;
            }
            Ok(false)
        }
    }
}

/// (`paused`: the replica's SQL thread is stopped by a backup's copy, which
/// is as intended.)
fn node_status(
    n: &NodeRecord,
    h: &NodeHealth,
    primary: Option<&NodeRecord>,
    held_read_only: bool,
    paused: bool,
) -> NodeStatus {
    if n.status.is_sticky() {
        return n.status;
    }
    if !h.reachable {
        // One lost probe is a blip, not an outage.
        return if h.consecutive_failures >= 2 {
            NodeStatus::Down
        } else {
            n.status
        };
    }
    let Some(p) = h.probe.as_ref() else { return n.status };
    match n.role {
        NodeRole::Primary if !p.read_only || held_read_only => NodeStatus::Active,
        NodeRole::Primary => NodeStatus::Down,
        NodeRole::Replica => {
            let following = p.replica.as_ref().is_some_and(|r| {
                primary.is_some_and(|pr| r.master_port == pr.port) && r.io_running() && (r.sql_running || paused)
            });
            if following && p.read_only {
                NodeStatus::Active
            } else {
                NodeStatus::Down
            }
        }
    }
}

/// Carries out what `replica_plan::plan` decided for one replica.
async fn reconcile_replica(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    (primary, ph): (&NodeRecord, &NodeHealth),
    (n, h, paused): (&NodeRecord, &NodeHealth, bool),
    secrets: &ClusterSecrets,
) -> Result<(), Error> {
    let now = Instant::now();
    let probe = h.probe.as_ref().filter(|_| h.reachable);
    let view = ReplicaView {
        node: n,
        probe,
        primary,
        primary_pos: ph.probe.as_ref().map_or("", |p| p.gtid_binlog_pos.as_str()),
        auto_reseed: cluster.auto_reseed,
        paused,
        repair_allowed: app.monitor.relay_repairs.would_allow(&n.id, now),
    };
    let actions = replica_plan::plan(&view).map_err(Error::internal)?;
    let addr = app.mgmt_addr(n, secrets);
    let source = app.replica_source(primary, secrets);
    for action in actions {
        match action {
            ReplicaAction::Restart => app
                .admin
                .start_replica(&addr, &source, false)
                .await
                .map_err(admin_err)?,
            ReplicaAction::RepairRelayLog { error } => {
                app.monitor.relay_repairs.allow(&n.id, now);
                let applied = probe.map_or("", |p| p.gtid_slave_pos.as_str());
                repair_relay_log(app, cluster, n, (&addr, &source), &error, applied).await?;
            }
            ReplicaAction::Fail { reason } => fail_node(app, cluster, n, &reason).await?,
            ReplicaAction::Reseed => auto_reseed(app, cluster, n).await?,
            ReplicaAction::Rejoin { mine, limit } => {
                app.admin.start_replica(&addr, &source, true).await.map_err(admin_err)?;
                app.store.set_node_ha(&n.id, None, None).await?;
                let msg = format!(
                    "node {} rejoined as a replica of {} (its history {mine} is within {limit})",
                    n.id, primary.id
                );
                app.event(&cluster.tenant_id, &cluster.id, Some(&n.id), "node_rejoined", msg)
                    .await;
            }
            ReplicaAction::ClearRejoinLimit => app.store.set_node_ha(&n.id, None, None).await?,
            ReplicaAction::LiftFence => lift_fence(app, cluster, n, primary).await?,
        }
    }
    Ok(())
}

/// Lifts the data-path fence of an old primary that now follows the primary.
async fn lift_fence(
    app: &Arc<Marina>,
    cluster: &ClusterRecord,
    n: &NodeRecord,
    primary: &NodeRecord,
) -> Result<(), Error> {
    app.store.set_node_fenced(&n.id, false).await?;
    app.reconcile.notify_one();
    app.event(
        &cluster.tenant_id,
        &cluster.id,
        Some(&n.id),
        "node_unfenced",
        format!(
            "node {} follows the primary {} read-only: its data-path fence is lifted",
            n.id, primary.id
        ),
    )
    .await;
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

async fn fail_node(app: &Arc<Marina>, cluster: &ClusterRecord, n: &NodeRecord, reason: &str) -> Result<(), Error> {
    app.store.fail_node(&n.id, reason).await?;
    app.event(
        &cluster.tenant_id,
        &cluster.id,
        Some(&n.id),
        "node_failed",
        format!("node {} is failed: {reason}", n.id),
    )
    .await;
    Ok(())
}

impl Marina {
    /// Why an automatic failover may not run now (`None`: it may).
    pub(crate) async fn failover_refusal(&self, cluster: &ClusterRecord) -> Result<Option<String>, Error> {
        if cluster.failover_mode == FailoverMode::Manual {
            return Ok(Some(
                "failover mode is manual: an operator must act (POST /v1/clusters/{id}/failover)"
                    .replace("{id}", &cluster.id),
            ));
        }
        let f = &self.config.failover;
        let now = time::OffsetDateTime::now_utc();
        let since = time_fmt::format_rfc3339(now - time::Duration::seconds(f.window_secs as i64));
        let previous: Vec<_> = self
            .store
            .operation_times_since(&cluster.id, OperationType::Failover, &since)
            .await?
            .iter()
            .filter_map(|t| time_fmt::parse_rfc3339(t))
            .collect();
        let settle = Duration::from_secs(f.min_interval_secs);
        Ok(super::flapping::crash_loop(&previous, now, settle, f.limit).map(|l| l.describe(settle, f.limit)))
    }
}
