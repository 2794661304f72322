//! The monitor: probes every node of every serving cluster on a short interval
//! over a persistent management connection, keeps the latest view in memory
//! (for `/status`, health checks and the reader endpoint), and acts on it.
//!
//! Rules:
//! - One tick probes all nodes concurrently, each probe bounded by
//!   `monitor.probe_timeout_ms`; a failed probe drops its connection.
//! - After the probes, each cluster not under an operation is evaluated:
//!   `plan.rs` decides (failure detection in `detect.rs`, failover decisions,
//!   fencing and rejoining of nodes, node/cluster statuses) and `evaluate.rs`
//!   acts under guarded writes. Evaluation is
//!   idempotent and reads only the store and the latest view, so the next tick is
//!   the retry.
//! - A cluster is first planned from the tick's records; only a plan that
//!   acts beyond the monitor's memory (anything but the steady state's
//!   `ClearDecision`) is planned again from a fresh read under the cluster's
//!   turn and carried out: the steady state costs no store read per cluster.
//! - Clusters under an operation (`creating`, `failing_over`, `updating`,
//!   `deleting`) are probed (the view stays fresh) but not acted on.

mod detect;
pub mod disk;
mod evaluate;
pub mod flapping;
pub mod history;
pub mod plan;
mod relay_repair;
mod replica_plan;
pub mod view;

pub use detect::{Observed, PrimaryVerdict, assess_primary};
pub use view::{NodeHealth, StatusView};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use marina_common::model::{ClusterStatus, NodeRecord};
use marina_engine::probe::ProbeConn;

use crate::Marina;
use crate::claim::Claim;

/// The latest observations, shared with the API.
#[derive(Default)]
pub struct MonitorState {
    /// Health by node id.
    nodes: RwLock<HashMap<String, NodeHealth>>,
    /// Latest decision message per cluster, to record each decision once.
    decisions: Mutex<HashMap<String, String>>,
    /// Clusters whose evaluation is running (one at a time per cluster).
    busy: Mutex<HashSet<String>>,
    /// The last 15 minutes of every node (console charts).
    pub history: history::History,
    /// Recent relay-log repairs per node (`relay_repair.rs`).
    relay_repairs: relay_repair::RelayRepairs,
    /// Each node's latest disk measurement and when it was taken (`disk.rs`).
    disk: RwLock<HashMap<String, (disk::NodeDisk, Instant)>>,
    /// Clusters held read-only by their disk quota, with the reason and
    /// whether their primary was fenced (`disk.rs`: full).
    disk_limited: RwLock<HashMap<String, (String, bool)>>,
    /// Free bytes on the data dir's file system, read once per tick.
    host_free: RwLock<Option<u64>>,
    /// Nodes whose process the runtime saw exit, and when (cleared by the
    /// node's next successful probe).
    exits: Mutex<HashMap<String, Instant>>,
    /// Primaries with an exit watcher (`watch_primaries`).
    watching: Mutex<HashSet<String>>,
}

impl MonitorState {
    /// The latest health of a node.
    pub fn node(&self, node_id: &str) -> Option<NodeHealth> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node_id)
            .cloned()
    }

    /// A node's latest disk measurement.
    pub fn node_disk(&self, node_id: &str) -> Option<disk::NodeDisk> {
        self.disk
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node_id)
            .map(|(d, _)| *d)
    }

    /// Free bytes on the data dir's file system at the latest tick.
    pub(crate) fn host_free(&self) -> Option<u64> {
        *self.host_free.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Why a cluster is held read-only by its disk quota, if it is.
    pub fn disk_limited(&self, cluster_id: &str) -> Option<String> {
        self.disk_limited
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster_id)
            .map(|(reason, _)| reason.clone())
    }

    /// Records whether a cluster is limited; returns whether that changed.
    pub(crate) fn set_disk_limited(&self, cluster_id: &str, reason: Option<String>) -> bool {
        let mut map = self.disk_limited.write().unwrap_or_else(|e| e.into_inner());
        match reason {
            Some(r) => match map.get_mut(cluster_id) {
                Some(entry) => {
                    entry.0 = r;
                    false
                }
                None => {
                    map.insert(cluster_id.to_string(), (r, false));
                    true
                }
            },
            None => map.remove(cluster_id).is_some(),
        }
    }

    /// Whether a limited cluster's primary was fenced since it was limited.
    pub(crate) fn disk_fenced(&self, cluster_id: &str) -> bool {
        self.disk_limited
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster_id)
            .is_some_and(|(_, fenced)| *fenced)
    }

    /// Records that a limited cluster's primary was fenced.
    pub(crate) fn set_disk_fenced(&self, cluster_id: &str) {
        if let Some(entry) = self
            .disk_limited
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(cluster_id)
        {
            entry.1 = true;
        }
    }

    /// Whether the runtime saw the node's process exit since it last answered.
    pub(crate) fn exited(&self, node_id: &str) -> bool {
        self.exits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(node_id)
    }

    /// Asks for a monitor tick after `delay` (the monitor task's signal).
    pub(crate) fn probe_soon(&self, app: &Arc<Marina>, delay: Duration) {
        let app = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            app.probe_now.notify_one();
        });
    }

    /// Records a decision; true when it differs from the previous one.
    pub(crate) fn decide(&self, cluster_id: &str, message: &str) -> bool {
        let mut d = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        if d.get(cluster_id).map(String::as_str) == Some(message) {
            return false;
        }
        d.insert(cluster_id.to_string(), message.to_string());
        true
    }

    /// Forgets the last decision (the situation is resolved).
    pub(crate) fn clear_decision(&self, cluster_id: &str) {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cluster_id);
    }
}

/// Reads the host's free space once for the tick's evaluations, and asks the
/// runtime what the nodes due (`disk::measure_due`) take on their host.
async fn measure_disks(
    app: &Arc<Marina>,
    per_cluster: &[(marina_common::model::ClusterRecord, Vec<NodeRecord>)],
    now: Instant,
) {
    *app.monitor.host_free.write().unwrap_or_else(|e| e.into_inner()) = disk::free_bytes(&app.config.data_dir);
    let every = Duration::from_millis(app.config.monitor.disk_check_interval_ms);
    let due: Vec<(String, Option<String>, u64)> = {
        let known = app.monitor.disk.read().unwrap_or_else(|e| e.into_inner());
        per_cluster
            .iter()
            .flat_map(|(_, nodes)| nodes.iter())
            .filter(|n| disk::measure_due(known.get(&n.id).map(|(d, at)| (*d, now.duration_since(*at))), every))
            .filter_map(|n| {
                let quota = app.sizes.iter().find(|s| s.id == n.size_id)?.disk_quota_bytes();
                Some((n.id.clone(), n.host_id.clone(), quota))
            })
            .collect()
    };
    if due.is_empty() {
        return;
    }
    let mut measured = Vec::with_capacity(due.len());
    for (id, host_id, quota_bytes) in due {
        let used_bytes = match app.runtime_on(host_id.as_deref()).await {
            Ok(rt) => rt.disk_usage(&id).await,
            Err(_) => continue,
        };
        measured.push((
            id,
            disk::NodeDisk {
                used_bytes,
                quota_bytes,
            },
        ));
    }
    let mut known = app.monitor.disk.write().unwrap_or_else(|e| e.into_inner());
    for (id, d) in measured {
        known.insert(id, (d, now));
    }
}

/// Statuses whose nodes are probed.
const PROBED: &[ClusterStatus] = &[
    ClusterStatus::Active,
    ClusterStatus::Degraded,
    ClusterStatus::Failed,
    ClusterStatus::FailingOver,
    ClusterStatus::Updating,
];

/// What one tick did (the background task's status).
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct TickReport {
    /// Clusters probed.
    pub clusters: usize,
    /// Nodes probed.
    pub nodes: usize,
    /// Evaluations started (a cluster still being evaluated is skipped).
    pub evaluations: usize,
    /// Clusters that could not be probed this tick, with why.
    pub skipped: Vec<String>,
}

/// The replicas of every cluster whose primary's probe just failed, probed
/// again now: a failing primary's probe can hold the tick up to the probe
/// timeout, and a replica's silence counts only up to its own latest probe
/// (`NodeHealth::probed_at`), so the witnesses are asked again right before
/// the evaluation instead of being judged on what they said at the tick's
/// start. Costs nothing while primaries answer.
async fn reprobe_witnesses(
    app: &Arc<Marina>,
    conns: &mut HashMap<String, ProbeConn>,
    per_cluster: &[(marina_common::model::ClusterRecord, Vec<NodeRecord>)],
    timeout: Duration,
) {
    let witnesses: Vec<String> = {
        let health = app.monitor.nodes.read().unwrap_or_else(|e| e.into_inner());
        per_cluster
            .iter()
            .filter(|(_, nodes)| {
                nodes.iter().any(|n| {
                    n.role == marina_common::model::NodeRole::Primary && health.get(&n.id).is_some_and(|h| !h.reachable)
                })
            })
            .flat_map(|(_, nodes)| nodes.iter())
            .filter(|n| n.role == marina_common::model::NodeRole::Replica)
            .filter(|n| health.get(&n.id).is_some_and(|h| h.reachable))
            .map(|n| n.id.clone())
            .collect()
    };
    let mut set = tokio::task::JoinSet::new();
    for id in witnesses {
        let Some(mut conn) = conns.remove(&id) else { continue };
        set.spawn(async move {
            let r = conn.probe(timeout).await;
            (id, conn, r)
        });
    }
    let now = Instant::now();
    let checked_at = marina_common::time_fmt::now_rfc3339();
    while let Some(joined) = set.join_next().await {
        let Ok((id, conn, result)) = joined else { continue };
        conns.insert(id.clone(), conn);
        let mut nodes = app.monitor.nodes.write().unwrap_or_else(|e| e.into_inner());
        let prev = nodes.remove(&id);
        nodes.insert(id, NodeHealth::next(prev, result, now, &checked_at));
    }
}

/// One tick: probe every node, then evaluate each cluster in a task of its
/// own. `conns` are the persistent probe connections, kept between ticks.
pub(crate) async fn tick(
    app: &Arc<Marina>,
    conns: &mut HashMap<String, ProbeConn>,
) -> Result<TickReport, marina_common::Error> {
    let mut report = TickReport::default();
    let clusters: Vec<_> = app
        .store
        .live_clusters()
        .await?
        .into_iter()
        .filter(|c| PROBED.contains(&c.status))
        .collect();
    let mut per_cluster: Vec<(marina_common::model::ClusterRecord, Vec<NodeRecord>)> = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let timeout = Duration::from_millis(app.config.monitor.probe_timeout_ms);
    let mut wanted = HashSet::new();
    let mut nodes_of = app.nodes_by_cluster().await?;
    for c in clusters {
        let nodes = nodes_of.remove(&c.id).unwrap_or_default();
        // The secrets are opened only for a node without a connection yet;
        // one cluster's bad state never stops the monitor for the others.
        let secrets = if nodes.iter().all(|n| conns.contains_key(&n.id)) {
            None
        } else {
            match app.cluster_secrets(&c) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(cluster_id = %c.id, error = %e, "cannot probe a cluster: its secrets are unreadable");
                    report.skipped.push(format!("{}: {e}", c.id));
                    continue;
                }
            }
        };
        report.clusters += 1;
        report.nodes += nodes.len();
        for n in &nodes {
            wanted.insert(n.id.clone());
            let Some(mut conn) = conns
                .remove(&n.id)
                .or_else(|| secrets.as_ref().map(|s| ProbeConn::new(app.mgmt_addr(n, s))))
            else {
                continue;
            };
            let id = n.id.clone();
            let cluster_id = c.id.clone();
            set.spawn(async move {
                let r = conn.probe(timeout).await;
                (id, cluster_id, conn, r)
            });
        }
        per_cluster.push((c, nodes));
    }
    let now = Instant::now();
    let checked_at = marina_common::time_fmt::now_rfc3339();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    while let Some(joined) = set.join_next().await {
        let Ok((id, cluster_id, conn, result)) = joined else {
            continue;
        };
        app.metrics.probe(&cluster_id, result.as_ref().ok().map(|p| p.latency));
        app.monitor.history.record(&id, unix_now, result.as_ref().ok());
        conns.insert(id.clone(), conn);
        if result.is_ok() {
            app.monitor.exits.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }
        let mut nodes = app.monitor.nodes.write().unwrap_or_else(|e| e.into_inner());
        let prev = nodes.remove(&id);
        nodes.insert(id, NodeHealth::next(prev, result, now, &checked_at));
    }
    reprobe_witnesses(app, conns, &per_cluster, timeout).await;
    watch_primaries(app, &per_cluster);
    conns.retain(|id, _| wanted.contains(id));
    measure_disks(app, &per_cluster, now).await;
    app.monitor
        .disk
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|id, _| wanted.contains(id));
    app.monitor.history.retain(|id| wanted.contains(id));
    app.monitor.relay_repairs.retain(|id| wanted.contains(id));
    app.monitor
        .nodes
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|id, _| wanted.contains(id));

    for (cluster, nodes) in per_cluster {
        // A cluster that never became active (a failed create or restore) has
        // nothing to fail over, fence or rejoin.
        if !cluster.endpoints_ready || !EVALUATED.contains(&cluster.status) {
            continue;
        }
        // One evaluation per cluster, released however it ends.
        let Some(guard) = Claim::take(app, |m| &m.monitor.busy, &cluster.id) else {
            continue;
        };
        report.evaluations += 1;
        tokio::spawn(async move {
            let app = guard.app().clone();
            crate::failpoint::panic_point("monitor:evaluate");
            if let Err(e) = evaluate_cluster(&app, &cluster, &nodes).await {
                tracing::warn!(cluster_id = %cluster.id, error = %e, "cluster evaluation failed; next tick retries");
            }
            drop(guard);
        });
    }
    Ok(report)
}

/// Evaluates a cluster: from the tick's records when its plan is all in
/// memory (the steady state), else again from a fresh read under its turn.
async fn evaluate_cluster(
    app: &Arc<Marina>,
    cluster: &marina_common::model::ClusterRecord,
    nodes: &[NodeRecord],
) -> Result<(), marina_common::Error> {
    if evaluate::evaluate(app, cluster, nodes, evaluate::Records::Tick).await? {
        return Ok(());
    }
    evaluate_in_turn(app, &cluster.id).await
}

/// Evaluates a cluster holding its evaluation turn, from a fresh read of
/// the cluster and its nodes: an operation recorded since the tick read them
/// has changed the cluster's status (it is then not acted on), and one that
/// starts waits for this evaluation to end.
async fn evaluate_in_turn(app: &Arc<Marina>, cluster_id: &str) -> Result<(), marina_common::Error> {
    let turn = app.evaluation_turns.of(cluster_id);
    let _acting = turn.lock().await;
    let Some(cluster) = app.store.get_cluster(None, cluster_id).await? else {
        return Ok(());
    };
    if !cluster.endpoints_ready || !EVALUATED.contains(&cluster.status) {
        return Ok(());
    }
    let nodes = app.store.list_nodes(cluster_id).await?;
    crate::failpoint::delay_point("monitor:evaluate").await;
    evaluate::evaluate(app, &cluster, &nodes, evaluate::Records::Fresh)
        .await
        .map(drop)
}

/// Statuses whose clusters are evaluated (no operation holds them).
const EVALUATED: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded, ClusterStatus::Failed];

/// Watches the process of every reachable primary: when it exits, the exit
/// is recorded and the monitor ticks at once (`detect.rs`: a known exit needs
/// no failure window). One watcher per node; it ends with the process.
fn watch_primaries(app: &Arc<Marina>, per_cluster: &[(marina_common::model::ClusterRecord, Vec<NodeRecord>)]) {
    let primaries = per_cluster
        .iter()
        .flat_map(|(_, nodes)| nodes.iter())
        .filter(|n| n.role == marina_common::model::NodeRole::Primary)
        .filter(|n| app.monitor.node(&n.id).is_some_and(|h| h.reachable));
    for p in primaries {
        let Some(watching) = Claim::take(app, |m| &m.monitor.watching, &p.id) else {
            continue;
        };
        let (app, node_id, host_id) = (app.clone(), p.id.clone(), p.host_id.clone());
        tokio::spawn(async move {
            let exited = match app.runtime_on(host_id.as_deref()).await {
                Ok(rt) => rt.exited(&node_id).await,
                Err(_) => false,
            };
            if exited {
                app.monitor
                    .exits
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(node_id, Instant::now());
            }
            drop(watching);
            if exited {
                app.probe_now.notify_one();
            }
        });
    }
}
