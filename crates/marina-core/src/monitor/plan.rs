//! What the monitor does about one cluster, as a pure function of what it
//! observed (`plan`); `evaluate.rs` gathers the observations and carries the
//! actions out under guarded store writes.
//!
//! Rules, in this order:
//! 1. **Fence**: a reachable node that is writable but is not the primary is
//!    fenced before anything else — a returning old primary (it has a rejoin
//!    limit) is killed, any other node is set read-only and its clients cut.
//!    A fenced node's view is stale for the rest of the plan.
//! 2. **Detect** (`detect.rs`). A failed primary starts a failover — unless
//!    the cluster is in `manual` mode or the anti-flapping guard refuses (a
//!    crash loop, `flapping.rs`): then the refusal is recorded once and the
//!    cluster is `failed`. Starting a failover ends the plan (the operation
//!    owns the cluster from then on). A primary not failed (its replicas
//!    still hear it) or only suspect is recorded once.
//! 3. **Disk quotas** (`disk.rs`, judged only while the primary is healthy):
//!    a cluster over its quota keeps its primary read-only.
//! 4. **Primary**: a healthy primary that is read-only (it restarted) is made
//!    writable again — unless the user or the disk quota holds it read-only.
//! 5. **Replicas** of a healthy primary: `replica_plan.rs`.
//! 6. **Statuses**: nodes are `active` when healthy in their role and `down`
//!    after two lost probes (`failed`, `maintenance` and `stopped` are
//!    sticky); the cluster is `active` when every node is as intended,
//!    `degraded` when the primary serves but something is unhealthy, `failed`
//!    when a failover was refused.
//!
//! Reader membership (which replicas the reader endpoint leads to) is
//! `reader_fit`, used by the supervisor's route table.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use marina_common::model::*;

use super::detect::{Observed, PrimaryVerdict, assess_primary};
use super::disk::{self, DiskVerdict, NodeDisk};
use super::replica_plan::{self, ReplicaAction, ReplicaView};
use super::view::NodeHealth;

/// Everything the monitor knows about one cluster when it plans.
pub struct Observations<'a> {
    pub cluster: &'a ClusterRecord,
    pub nodes: &'a [NodeRecord],
    /// Latest health by node id (a node without one is not planned for).
    pub health: &'a HashMap<String, NodeHealth>,
    /// The runtime saw the primary's process exit.
    pub primary_exited: bool,
    /// Start times of the cluster's failovers within the anti-flapping window.
    pub recent_failovers: &'a [time::OffsetDateTime],
    /// The disk use of each node, and the host's free bytes.
    pub disk: &'a [(String, NodeDisk)],
    pub host_free: Option<u64>,
    /// The cluster is held read-only by its disk quota now, and its primary
    /// was fenced for it.
    pub disk_limited: bool,
    pub disk_fenced: bool,
    /// Replicas whose SQL thread a physical backup's copy stopped.
    pub paused: &'a HashSet<String>,
    /// Replicas that may have their relay log repaired now.
    pub repair_allowed: &'a HashSet<String>,
}

/// The monitor's settings that decisions depend on.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub failure_window: Duration,
    pub witness_silence: Duration,
    /// Anti-flapping: failovers closer than this are a crash loop's …
    pub settle: Duration,
    /// … and this many of them in a row refuse the next.
    pub flap_limit: u32,
    /// Free bytes kept on the host (disk quotas).
    pub disk_reserve: u64,
}

/// One thing to do. Node ids refer to `Observations::nodes`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Cut off a writable node that is not the primary (`kill`: a demoted
    /// primary, killed so an unacknowledged transaction dies uncommitted).
    Fence { node: String, kill: bool },
    /// Start a failover of the primary.
    StartFailover { evidence: String },
    /// Record a decision as an event, once until the decision changes.
    Note {
        kind: &'static str,
        key: String,
        msg: String,
    },
    /// The primary is healthy: forget the last decision.
    ClearDecision,
    /// The primary's process exited: probe again very soon.
    ProbeSoon,
    /// Hold the primary read-only for the disk quota (`fence`: end every
    /// session too; `hold`: the primary is writable, interrupt writes).
    DiskLimit { reason: String, fence: bool, hold: bool },
    /// The disk quota no longer holds the primary.
    DiskRelease,
    /// Make the (read-only, restarted) primary writable.
    MakeWritable { node: String },
    /// Something to do about one replica.
    Replica { node: String, action: ReplicaAction },
    /// A node's status changes (`detail`: why, for the event).
    NodeStatus {
        node: String,
        role: NodeRole,
        from: NodeStatus,
        to: NodeStatus,
        detail: String,
    },
    /// The cluster's status changes.
    ClusterStatus { to: ClusterStatus },
}

impl Action {
    /// Whether the action changes only the monitor's memory, so it may be
    /// carried out from records read without the cluster's turn (an
    /// operation may have taken the cluster since): the steady state's plan
    /// is `[ClearDecision]`, which then costs no fresh read.
    pub fn in_memory(&self) -> bool {
        matches!(self, Action::ClearDecision | Action::ProbeSoon)
    }
}

/// Whether `h`'s probe was taken after the cluster last changed (its
/// `updated_at`; a time that cannot be read counts as after).
fn probed_since_change(cluster: &ClusterRecord, h: &NodeHealth) -> bool {
    let parse = marina_common::time_fmt::parse_rfc3339;
    match (parse(&cluster.updated_at), parse(&h.checked_at)) {
        (Some(changed), Some(probed)) => probed >= changed,
        _ => true,
    }
}

/// Decides what to do about one cluster.
pub fn plan(o: &Observations, s: &Settings, now: Instant, wall: time::OffsetDateTime) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(primary) = o.nodes.iter().find(|n| n.role == NodeRole::Primary) else {
        return actions;
    };
    let Some(ph) = o.health.get(&primary.id) else {
        return actions;
    };

    // 1. Fence.
    let mut fenced = HashSet::new();
    for n in o.nodes.iter().filter(|n| n.role == NodeRole::Replica) {
        if o.health.get(&n.id).is_some_and(|h| h.is_writable()) {
            actions.push(Action::Fence {
                node: n.id.clone(),
                kill: n.rejoin_gtid.is_some(),
            });
            fenced.insert(n.id.as_str());
        }
    }

    // 2. Detect.
    let verdict = verdict(o, primary, ph, s, now);
    let mut refused = false;
    match &verdict {
        PrimaryVerdict::Failed { evidence } => match refusal(o.cluster, o.recent_failovers, s, wall) {
            None => {
                actions.push(Action::StartFailover {
                    evidence: evidence.clone(),
                });
                return actions;
            }
            Some(why) => {
                let msg = format!("{evidence}; failover refused: {why}");
                actions.push(Action::Note {
                    kind: "failover_refused",
                    key: msg.clone(),
                    msg,
                });
                refused = true;
            }
        },
        PrimaryVerdict::NotFailed { reason } => actions.push(Action::Note {
            kind: "failover_skipped",
            key: reason.clone(),
            msg: reason.clone(),
        }),
        PrimaryVerdict::Suspect { .. } => {
            if o.primary_exited {
                actions.push(Action::ProbeSoon);
            }
            let msg = format!(
                "primary {} is not answering probes ({})",
                primary.id,
                ph.last_error.clone().unwrap_or_default()
            );
            actions.push(Action::Note {
                kind: "primary_suspect",
                key: "suspect".into(),
                msg,
            });
        }
        PrimaryVerdict::Healthy => actions.push(Action::ClearDecision),
    }
    let healthy = verdict == PrimaryVerdict::Healthy;

    // 3. Disk quotas.
    let disk_limited = if healthy {
        match disk::assess(o.disk, o.host_free, s.disk_reserve, o.disk_limited) {
            DiskVerdict::Limited { reason, full } => {
                actions.push(Action::DiskLimit {
                    reason,
                    fence: full && !o.disk_fenced,
                    hold: ph.is_writable(),
                });
                true
            }
            DiskVerdict::Within => {
                if o.disk_limited {
                    actions.push(Action::DiskRelease);
                }
                false
            }
        }
    } else {
        o.disk_limited
    };
    let held_read_only = o.cluster.primary_read_only || disk_limited;

    let mut failed = HashSet::new();
    if healthy {
        // 4. The primary must be writable.
        if ph.probe.as_ref().is_some_and(|p| p.read_only) && !held_read_only {
            actions.push(Action::MakeWritable {
                node: primary.id.clone(),
            });
        }
        // 5. Replicas follow it.
        let primary_pos = ph.probe.as_ref().map_or("", |p| p.gtid_binlog_pos.as_str());
        for n in o
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::Replica && !fenced.contains(n.id.as_str()))
        {
            let Some(h) = o.health.get(&n.id) else { continue };
            let view = ReplicaView {
                node: n,
                probe: h.probe.as_ref().filter(|_| h.reachable),
                primary,
                primary_pos,
                auto_reseed: o.cluster.auto_reseed,
                paused: o.paused.contains(&n.id),
                repair_allowed: o.repair_allowed.contains(&n.id),
                probed_since_change: probed_since_change(o.cluster, h) && probed_since_change(o.cluster, ph),
            };
            // A position Marina cannot read leaves this replica alone (and
            // says so); the rest of the cluster is still decided.
            let planned = match replica_plan::plan(&view) {
                Ok(planned) => planned,
                Err(e) => {
                    let msg = format!("replica {} reported a GTID position Marina cannot read: {e}", n.id);
                    actions.push(Action::Note {
                        kind: "replica_unreadable",
                        key: msg.clone(),
                        msg,
                    });
                    continue;
                }
            };
            for action in planned {
                if matches!(action, ReplicaAction::Fail { .. }) {
                    failed.insert(n.id.as_str());
                }
                actions.push(Action::Replica {
                    node: n.id.clone(),
                    action,
                });
            }
        }
    }

    // 6. Statuses, as they will be once the actions above are done.
    let mut statuses: Vec<(&NodeRecord, NodeStatus)> = Vec::new();
    for n in o.nodes {
        if failed.contains(n.id.as_str()) {
            statuses.push((n, NodeStatus::Failed));
            continue;
        }
        let h = o.health.get(&n.id).filter(|_| !fenced.contains(n.id.as_str()));
        let Some(h) = h else {
            statuses.push((n, n.status));
            continue;
        };
        let want = node_status(n, h, primary, held_read_only, o.paused.contains(&n.id));
        if want != n.status {
            actions.push(Action::NodeStatus {
                node: n.id.clone(),
                role: n.role,
                from: n.status,
                to: want,
                detail: h.last_error.clone().unwrap_or_else(|| "not healthy in its role".into()),
            });
        }
        statuses.push((n, want));
    }
    let primary_active = statuses
        .iter()
        .any(|(n, st)| n.role == NodeRole::Primary && *st == NodeStatus::Active);
    let want = if refused {
        ClusterStatus::Failed
    } else if primary_active && statuses.iter().all(|(_, st)| st.is_as_intended()) {
        ClusterStatus::Active
    } else {
        ClusterStatus::Degraded
    };
    if want != o.cluster.status {
        actions.push(Action::ClusterStatus { to: want });
    }
    actions
}

/// Whether the primary failed (`detect.rs`), from the primary's and its
/// replicas' health.
fn verdict(o: &Observations, primary: &NodeRecord, ph: &NodeHealth, s: &Settings, now: Instant) -> PrimaryVerdict {
    let witnesses: Vec<(String, Observed)> =
        o.nodes
            .iter()
            .filter(|n| n.role == NodeRole::Replica && !n.status.is_sticky())
            .filter_map(|n| o.health.get(&n.id).map(|h| (n, h)))
            .map(|(n, h)| {
                let io_connected =
                    h.probe.as_ref().and_then(|p| p.replica.as_ref()).is_some_and(|r| {
                        r.io_running() && r.master_port == primary.port && r.master_host == primary.host
                    });
                let o = Observed {
                    reachable: h.reachable,
                    failing_for: h.failing_for(now),
                    io_connected,
                    silent_for: h.probed_at.duration_since(h.last_heard),
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
        exited: o.primary_exited,
    };
    assess_primary(&primary_obs, &witnesses, s.failure_window, s.witness_silence)
}

/// Why an automatic failover may not run now (`None`: it may): manual mode,
/// or a crash loop (`flapping.rs`).
pub fn refusal(
    cluster: &ClusterRecord,
    recent_failovers: &[time::OffsetDateTime],
    s: &Settings,
    wall: time::OffsetDateTime,
) -> Option<String> {
    if cluster.failover_mode == FailoverMode::Manual {
        return Some(format!(
            "failover mode is manual: an operator must act (POST /v1/clusters/{}/failover)",
            cluster.id
        ));
    }
    super::flapping::crash_loop(recent_failovers, wall, s.settle, s.flap_limit)
        .map(|l| l.describe(s.settle, s.flap_limit))
}

/// The status a node should have given its latest health (`held_read_only`:
/// the primary is read-only on purpose; `paused`: the replica's SQL thread
/// is stopped by a backup's copy, which is as intended).
fn node_status(n: &NodeRecord, h: &NodeHealth, primary: &NodeRecord, held_read_only: bool, paused: bool) -> NodeStatus {
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
                r.master_port == primary.port
                    && r.master_host == primary.host
                    && r.io_running()
                    && (r.sql_running || paused)
            });
            if following && p.read_only {
                NodeStatus::Active
            } else {
                NodeStatus::Down
            }
        }
    }
}

/// Whether the reader endpoint leads to a replica: not fenced, replicating
/// read-only with both threads running, and no further behind than
/// `max_lag_secs` (a replica never probed yet is given the benefit of the
/// doubt; its status keeps it out until it is active).
pub fn reader_fit(n: &NodeRecord, health: Option<&NodeHealth>, max_lag_secs: f64) -> bool {
    !n.fenced && health.is_none_or(|h| h.is_replicating() && h.lag_seconds().is_none_or(|l| l <= max_lag_secs))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
