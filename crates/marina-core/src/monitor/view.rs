//! The monitor's per-node view (`NodeHealth`) and the `/status` shape built from it.

use std::time::{Duration, Instant};

use marina_engine::AdminError;
use marina_engine::probe::Probe;
use serde::Serialize;
use utoipa::ToSchema;

/// The latest knowledge about one node.
#[derive(Debug, Clone)]
pub struct NodeHealth {
    /// The latest successful probe (kept while probes fail, marked stale by `reachable`).
    pub probe: Option<Probe>,
    /// Whether the latest probe succeeded.
    pub reachable: bool,
    /// When probes started failing (None while reachable).
    pub failing_since: Option<Instant>,
    /// Consecutive failed probes.
    pub consecutive_failures: u32,
    /// The latest probe error.
    pub last_error: Option<String>,
    /// When the node was last probed (RFC 3339).
    pub checked_at: String,
    /// When this replica last received something from its primary (an event or
    /// a heartbeat), as seen by its counters moving.
    pub last_heard: Instant,
    /// When the latest successful probe was taken: a replica's silence is
    /// measured up to it, not up to the evaluation (a tick slowed by a
    /// primary whose probe hangs must not make hearing replicas look deaf).
    pub probed_at: Instant,
}

impl NodeHealth {
    /// Folds a new probe result into the previous health.
    pub fn next(prev: Option<NodeHealth>, result: Result<Probe, AdminError>, now: Instant, checked_at: &str) -> Self {
        match result {
            Ok(p) => {
                let heard = match prev.as_ref().and_then(|h| h.probe.as_ref()) {
                    Some(old) => {
                        let moved = |p: &Probe| {
                            (
                                p.heartbeats,
                                p.replica
                                    .as_ref()
                                    .map(|r| (r.read_master_log_pos, r.master_log_file.clone())),
                            )
                        };
                        moved(old) != moved(&p)
                    }
                    None => true,
                };
                let last_heard = if heard {
                    now
                } else {
                    prev.as_ref().map(|h| h.last_heard).unwrap_or(now)
                };
                NodeHealth {
                    probe: Some(p),
                    reachable: true,
                    failing_since: None,
                    consecutive_failures: 0,
                    last_error: None,
                    checked_at: checked_at.into(),
                    last_heard,
                    probed_at: now,
                }
            }
            Err(e) => {
                let (probe, failing_since, failures, last_heard, probed_at) = match prev {
                    Some(h) => (
                        h.probe,
                        h.failing_since.unwrap_or(now),
                        h.consecutive_failures + 1,
                        h.last_heard,
                        h.probed_at,
                    ),
                    None => (None, now, 1, now, now),
                };
                NodeHealth {
                    probe,
                    reachable: false,
                    failing_since: Some(failing_since),
                    consecutive_failures: failures,
                    last_error: Some(e.to_string()),
                    checked_at: checked_at.into(),
                    last_heard,
                    probed_at,
                }
            }
        }
    }

    /// How long probes have failed.
    pub fn failing_for(&self, now: Instant) -> Duration {
        self.failing_since.map(|s| now.duration_since(s)).unwrap_or_default()
    }

    /// Writable primary right now.
    pub fn is_writable(&self) -> bool {
        self.reachable && self.probe.as_ref().is_some_and(|p| !p.read_only)
    }

    /// Read-only replica with both threads running.
    pub fn is_replicating(&self) -> bool {
        self.reachable
            && self
                .probe
                .as_ref()
                .is_some_and(|p| p.read_only && p.replica.as_ref().is_some_and(|r| r.io_running() && r.sql_running))
    }

    /// Replication lag in seconds, when replicating.
    pub fn lag_seconds(&self) -> Option<f64> {
        self.probe.as_ref()?.replica.as_ref()?.seconds_behind.map(|s| s as f64)
    }

    /// The contract's `probes` object. `primary_pos` (the primary's binlog
    /// position) gives replicas their GTID distance.
    pub fn probes(&self, primary_pos: Option<&str>) -> Probes {
        let p = self.probe.as_ref().filter(|_| self.reachable);
        let r = p.and_then(|p| p.replica.as_ref());
        Probes {
            reachable: self.reachable,
            writable: p.is_some_and(|p| !p.read_only),
            replication_io: r.map(|r| r.io_running()),
            replication_sql: r.map(|r| r.sql_running),
            lag_seconds: r.and_then(|r| r.seconds_behind).map(|s| s as f64),
            lag_transactions: r
                .and(p)
                .zip(primary_pos)
                .and_then(|(p, primary)| gtid_distance(primary, &p.gtid_slave_pos)),
            gtid_position: p.map(|p| p.gtid_current_pos.clone()),
            semisync: p.map(|p| {
                if p.read_only {
                    p.semisync_slave_on
                } else {
                    p.semisync_master_on
                }
            }),
            latency_ms: p.map(|p| p.latency.as_secs_f64() * 1000.0),
            error: self.last_error.clone(),
        }
    }
}

/// Transactions in `ahead` that `behind` has not reached, over all domains.
pub fn gtid_distance(ahead: &str, behind: &str) -> Option<u64> {
    let a = marina_engine::gtid::GtidPos::parse(ahead).ok()?;
    let b = marina_engine::gtid::GtidPos::parse(behind).ok()?;
    Some(a.0.keys().map(|d| a.seq(*d).saturating_sub(b.seq(*d))).sum())
}

/// The probes of one node, as `/status` shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Probes {
    pub reachable: bool,
    pub writable: bool,
    pub replication_io: Option<bool>,
    pub replication_sql: Option<bool>,
    pub lag_seconds: Option<f64>,
    /// GTID distance: transactions the primary has that this replica has not
    /// applied yet (summed over replication domains).
    pub lag_transactions: Option<u64>,
    pub gtid_position: Option<String>,
    /// Primary: waiting for replica acknowledgements (semi-sync on, not fallen
    /// back to async). Replica: acknowledging.
    pub semisync: Option<bool>,
    /// Round trip of the latest probe.
    pub latency_ms: Option<f64>,
    /// The latest probe error, if the node is unreachable.
    pub error: Option<String>,
}

/// One node in `/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeStatusView {
    pub node_id: String,
    pub role: marina_common::model::NodeRole,
    pub status: marina_common::model::NodeStatus,
    /// Why the node has its status; for every node of a cluster held
    /// read-only by its disk quota, why.
    pub status_reason: Option<String>,
    pub probes: Probes,
    /// What the node's host sees of it (a node on an agent host: the
    /// agent's own probes over the node's socket, streamed; none on the
    /// control plane's machine).
    pub host_probe: Option<HostProbeView>,
    /// The node directory's use of its disk quota (latest measurement).
    pub disk: Option<DiskView>,
}

/// What a node's host last saw of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostProbeView {
    pub host_id: String,
    pub reachable: bool,
    pub writable: Option<bool>,
    pub replication_io: Option<bool>,
    pub replication_sql: Option<bool>,
    pub error: Option<String>,
    /// How long ago the host's snapshot holding it arrived (it sends one on
    /// every change and at least every second; older means the stream is
    /// cut).
    pub age_ms: u64,
}

impl From<crate::host_probes::HostView> for HostProbeView {
    fn from(v: crate::host_probes::HostView) -> Self {
        HostProbeView {
            host_id: v.host_id,
            reachable: v.seen.reachable,
            writable: v.seen.writable,
            replication_io: v.seen.replication_io,
            replication_sql: v.seen.replication_sql,
            error: v.seen.error,
            age_ms: v.at.elapsed().as_millis() as u64,
        }
    }
}

/// A node's disk against its quota.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiskView {
    pub used_bytes: u64,
    pub quota_bytes: u64,
    pub percent: f64,
}

/// `GET /v1/clusters/{id}/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    pub cluster_id: String,
    pub status: marina_common::model::ClusterStatus,
    pub checked_at: Option<String>,
    pub nodes: Vec<NodeStatusView>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn gtid_distance_counts_missing_transactions() {
        assert_eq!(super::gtid_distance("0-1-100", "0-1-97"), Some(3));
        assert_eq!(super::gtid_distance("0-2-10,1-1-5", "0-1-10"), Some(5));
        assert_eq!(super::gtid_distance("0-1-5", "0-1-9"), Some(0));
        assert_eq!(super::gtid_distance("0-1-5", ""), Some(5));
        assert_eq!(super::gtid_distance("bad", ""), None);
    }
}
