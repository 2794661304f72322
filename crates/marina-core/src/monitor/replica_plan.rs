//! What the monitor does about one replica of a healthy primary, as a pure
//! function of what it observed (`plan`); `evaluate.rs` carries the actions
//! out. The rules (step 4 of the evaluation):
//! - A `failed` replica whose history diverged is reseeded when the cluster
//!   allows it (`failover.auto_reseed`); other sticky statuses and
//!   unreachable replicas are left alone.
//! - A replica following the primary: an SQL error fails it — unless it is a
//!   relay-log failure and a repair is allowed (`relay_repair.rs`), or a GTID
//!   its binlog already holds from another server (a crash lost the
//!   replication position of a DDL statement: its position is set from its
//!   binlog); a
//!   duplicate key or a missing row means its data drifted: failed as
//!   diverged (and reseeded when allowed); stopped
//!   threads are restarted, except an SQL thread a backup's copy stopped; an
//!   old primary that receives again loses its rejoin limit, and its
//!   data-path fence is lifted once it follows read-only.
//! - A replica following anything else rejoins the primary only if its GTID
//!   history is within the primary's (for a demoted primary: within the new
//!   primary's position at its promotion); otherwise it is failed as
//!   diverged (and reseeded when allowed).

use marina_common::model::{NodeRecord, NodeStatus};
use marina_engine::gtid::GtidPos;
use marina_engine::probe::Probe;

/// One thing to do about a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaAction {
    /// Restart stopped replication threads (same source, same position).
    Restart,
    /// Set the replication position to `pos` (what its binlog shows it
    /// applied) and restart replication.
    RecordApplied { pos: String },
    /// Re-attach to discard an unreadable relay log (`relay_repair.rs`).
    RepairRelayLog { error: String },
    /// Mark the node `failed` with this reason.
    Fail { reason: String },
    /// Rebuild the node from the primary (a diverged replica).
    Reseed,
    /// Attach to the primary from its own GTID position.
    Rejoin { mine: String, limit: String },
    /// The old primary receives again: its rejoin limit is done.
    ClearRejoinLimit,
    /// The old primary follows read-only: its data-path fence goes.
    LiftFence,
}

/// The end of a diverged node's failure reason (auto-reseed looks for it).
pub const DIVERGED: &str = "cannot rejoin without a reseed";

/// What the monitor knows when it plans for one replica.
pub struct ReplicaView<'a> {
    pub node: &'a NodeRecord,
    /// The replica's latest probe, if it is reachable.
    pub probe: Option<&'a Probe>,
    pub primary: &'a NodeRecord,
    /// The primary's `gtid_binlog_pos`, from its latest probe.
    pub primary_pos: &'a str,
    /// The cluster rebuilds diverged replicas on its own.
    pub auto_reseed: bool,
    /// A backup's copy stopped this replica's SQL thread.
    pub paused: bool,
    /// A relay-log repair is allowed now (not too many lately).
    pub repair_allowed: bool,
    /// Its probe and the primary's were taken after the cluster last
    /// changed. A replica not following the primary on an older probe is
    /// left to the next tick: an operation that ended since (a switchover
    /// that repointed it) may have made it follow, and its position then
    /// says nothing about divergence.
    pub probed_since_change: bool,
}

/// Decides what to do about one replica. An unparsable GTID position is an
/// error (the node reported something Marina does not understand).
pub fn plan(v: &ReplicaView) -> Result<Vec<ReplicaAction>, String> {
    let n = v.node;
    let diverged = n.status == NodeStatus::Failed && n.status_reason.as_deref().is_some_and(|r| r.contains(DIVERGED));
    if diverged && v.auto_reseed {
        return Ok(vec![ReplicaAction::Reseed]);
    }
    let Some(p) = v.probe.filter(|_| !n.status.is_sticky()) else {
        return Ok(vec![]);
    };
    let following = p
        .replica
        .as_ref()
        .filter(|r| r.master_port == v.primary.port && r.master_host == v.primary.host);
    let Some(r) = following else {
        if !v.probed_since_change {
            return Ok(vec![]);
        }
        return rejoin(v, p);
    };
    if !r.last_sql_error.is_empty() && !r.sql_running {
        if super::relay_repair::is_relay_log_error(r.last_sql_errno) && v.repair_allowed {
            return Ok(vec![ReplicaAction::RepairRelayLog {
                error: r.last_sql_error.clone(),
            }]);
        }
        if r.last_sql_errno == GTID_ALREADY_BINLOGGED
            && let Some(pos) = applied_but_unrecorded(p)
        {
            return Ok(vec![ReplicaAction::RecordApplied { pos }]);
        }
        if is_drift(r.last_sql_errno) {
            // The replica's rows differ from the primary's: a restart cannot
            // fix that, a reseed can (chaos found an old primary whose data
            // was ahead of its binlog after a crash).
            let reason = format!(
                "replication SQL error: {} — its data differs from the primary's, so it {DIVERGED}",
                r.last_sql_error
            );
            let mut actions = vec![ReplicaAction::Fail { reason }];
            if v.auto_reseed {
                actions.push(ReplicaAction::Reseed);
            }
            return Ok(actions);
        }
        return Ok(vec![ReplicaAction::Fail {
            reason: format!("replication SQL error: {}", r.last_sql_error),
        }]);
    }
    let mut actions = Vec::new();
    let backup_pause = v.paused && r.io_running() && !r.sql_running;
    if (r.io_state == "No" || !r.sql_running) && !backup_pause {
        actions.push(ReplicaAction::Restart);
    } else if n.rejoin_gtid.is_some() && r.io_running() {
        actions.push(ReplicaAction::ClearRejoinLimit);
    }
    if n.fenced && r.io_running() && p.read_only {
        actions.push(ReplicaAction::LiftFence);
    }
    Ok(actions)
}

/// `ER_GTID_STRICT_OUT_OF_ORDER`: the SQL thread met a GTID the replica's
/// binlog already holds.
const GTID_ALREADY_BINLOGGED: u32 = 1950;

/// The replication position a replica should have when its binlog holds
/// transactions its position lost, all of them applied from another server
/// (a replica killed between a replicated DDL statement and its
/// `gtid_slave_pos` row, which are not one transaction, restarts one GTID
/// behind its own binlog, and strict mode then refuses the statement
/// again): the union of both. A GTID of its own server is an errant write
/// and leaves it failed (`None`).
fn applied_but_unrecorded(p: &Probe) -> Option<String> {
    let binlog = GtidPos::parse(&p.gtid_binlog_pos).ok()?;
    let slave = GtidPos::parse(&p.gtid_slave_pos).ok()?;
    let mut ahead = binlog.0.iter().filter(|(d, (_, seq))| *seq > slave.seq(**d)).peekable();
    ahead.peek()?;
    ahead
        .all(|(_, (server, _))| *server != p.server_id)
        .then(|| slave.max(&binlog).to_string())
}

/// Whether an SQL thread error says the replica's rows differ from its
/// source's (a duplicate key, a row not found).
fn is_drift(errno: u32) -> bool {
    matches!(errno, 1062 | 1032)
}

/// A replica not following the primary: rejoin within the limit, or fail.
fn rejoin(v: &ReplicaView, p: &Probe) -> Result<Vec<ReplicaAction>, String> {
    let mine = GtidPos::parse(&p.gtid_binlog_pos)?;
    let limit_text = v.node.rejoin_gtid.as_deref().unwrap_or(v.primary_pos);
    let limit = GtidPos::parse(limit_text)?;
    if mine.le(&limit) {
        return Ok(vec![ReplicaAction::Rejoin {
            mine: mine.to_string(),
            limit: limit.to_string(),
        }]);
    }
    let reason = format!(
        "its GTID history ({mine}) is not contained in the primary's ({limit}): it has transactions the primary \
         never had, so it {DIVERGED}"
    );
    let mut actions = vec![ReplicaAction::Fail { reason }];
    if v.auto_reseed {
        actions.push(ReplicaAction::Reseed);
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use marina_common::model::NodeRole;
    use marina_engine::probe::ReplicaProbe;

    fn node(id: &str, port: u16) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            cluster_id: "cl".into(),
            ordinal: 0,
            role: NodeRole::Replica,
            status: NodeStatus::Active,
            host: "127.0.0.1".into(),
            port,
            size_id: "xsmall".into(),
            server_id: 1,
            status_reason: None,
            rejoin_gtid: None,
            fenced: false,
            host_id: None,
            zone: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn probe(pos: &str, replica: Option<ReplicaProbe>) -> Probe {
        Probe {
            read_only: true,
            gtid_binlog_pos: pos.into(),
            replica,
            ..Default::default()
        }
    }

    fn following(io: &str, sql: bool) -> ReplicaProbe {
        ReplicaProbe {
            io_state: io.into(),
            sql_running: sql,
            master_host: "127.0.0.1".into(),
            master_port: 4000,
            ..Default::default()
        }
    }

    struct Case {
        name: &'static str,
        node: NodeRecord,
        probe: Option<Probe>,
        auto_reseed: bool,
        paused: bool,
        repair_allowed: bool,
        probed_since_change: bool,
        want: Vec<ReplicaAction>,
    }

    fn case(name: &'static str, node: NodeRecord, probe: Option<Probe>, want: Vec<ReplicaAction>) -> Case {
        Case {
            name,
            node,
            probe,
            auto_reseed: false,
            paused: false,
            repair_allowed: true,
            probed_since_change: true,
            want,
        }
    }

    #[test]
    fn decisions() {
        use ReplicaAction::*;
        let primary = NodeRecord {
            role: NodeRole::Primary,
            ..node("p", 4000)
        };
        let healthy = probe("0-1-10", Some(following("Yes", true)));
        let sql_error = |errno: u32| {
            probe(
                "0-1-10",
                Some(ReplicaProbe {
                    last_sql_error: "boom".into(),
                    last_sql_errno: errno,
                    ..following("Yes", false)
                }),
            )
        };
        let old_primary = NodeRecord {
            rejoin_gtid: Some("0-1-12".into()),
            fenced: true,
            ..node("r", 4001)
        };
        let diverged_node = NodeRecord {
            status: NodeStatus::Failed,
            status_reason: Some(format!("… so it {DIVERGED}")),
            ..node("r", 4001)
        };
        let cases = vec![
            case("healthy: nothing", node("r", 4001), Some(healthy.clone()), vec![]),
            case("unreachable: nothing", node("r", 4001), None, vec![]),
            case(
                "stopped IO thread: restart",
                node("r", 4001),
                Some(probe("0-1-10", Some(following("No", true)))),
                vec![Restart],
            ),
            case(
                "stopped SQL thread: restart",
                node("r", 4001),
                Some(probe("0-1-10", Some(following("Yes", false)))),
                vec![Restart],
            ),
            Case {
                paused: true,
                ..case(
                    "SQL thread stopped by a backup: left alone",
                    node("r", 4001),
                    Some(probe("0-1-10", Some(following("Yes", false)))),
                    vec![],
                )
            },
            case(
                "SQL error: failed",
                node("r", 4001),
                Some(sql_error(1146)),
                vec![Fail {
                    reason: "replication SQL error: boom".into(),
                }],
            ),
            Case {
                auto_reseed: true,
                ..case(
                    "duplicate key: diverged, reseeded when allowed",
                    node("r", 4001),
                    Some(sql_error(1062)),
                    vec![
                        Fail {
                            reason: format!(
                                "replication SQL error: boom — its data differs from the primary's, so it {DIVERGED}"
                            ),
                        },
                        Reseed,
                    ],
                )
            },
            case(
                "GTID already in its binlog, applied from the primary: rejoins from its binlog",
                node("r", 4001),
                Some(Probe {
                    server_id: 2,
                    gtid_slave_pos: "0-1-9".into(),
                    ..sql_error(1950)
                }),
                vec![RecordApplied { pos: "0-1-10".into() }],
            ),
            case(
                "GTID already in its binlog, written by itself: failed",
                node("r", 4001),
                Some(Probe {
                    server_id: 1,
                    gtid_slave_pos: "0-1-9".into(),
                    ..sql_error(1950)
                }),
                vec![Fail {
                    reason: "replication SQL error: boom".into(),
                }],
            ),
            case(
                "GTID already in its binlog, position not behind it: failed",
                node("r", 4001),
                Some(Probe {
                    server_id: 2,
                    gtid_slave_pos: "0-1-10".into(),
                    ..sql_error(1950)
                }),
                vec![Fail {
                    reason: "replication SQL error: boom".into(),
                }],
            ),
            case(
                "relay-log error: repaired",
                node("r", 4001),
                Some(sql_error(1594)),
                vec![RepairRelayLog { error: "boom".into() }],
            ),
            Case {
                repair_allowed: false,
                ..case(
                    "relay-log error, too many repairs: failed",
                    node("r", 4001),
                    Some(sql_error(1594)),
                    vec![Fail {
                        reason: "replication SQL error: boom".into(),
                    }],
                )
            },
            case(
                "old primary receiving read-only: limit cleared, fence lifted",
                old_primary.clone(),
                Some(healthy.clone()),
                vec![ClearRejoinLimit, LiftFence],
            ),
            case(
                "old primary within its limit: rejoins",
                old_primary.clone(),
                Some(probe("0-1-11", None)),
                vec![Rejoin {
                    mine: "0-1-11".into(),
                    limit: "0-1-12".into(),
                }],
            ),
            case(
                "old primary past its limit: failed as diverged",
                old_primary.clone(),
                Some(probe("0-1-13", None)),
                vec![Fail {
                    reason: format!(
                        "its GTID history (0-1-13) is not contained in the primary's (0-1-12): it has transactions \
                         the primary never had, so it {DIVERGED}"
                    ),
                }],
            ),
            case(
                "replica of another source within the primary: rejoins",
                node("r", 4001),
                Some(probe(
                    "0-1-9",
                    Some(ReplicaProbe {
                        master_port: 4999,
                        ..following("Yes", true)
                    }),
                )),
                vec![Rejoin {
                    mine: "0-1-9".into(),
                    limit: "0-1-10".into(),
                }],
            ),
            case(
                "diverged and failed, no auto-reseed: nothing",
                diverged_node.clone(),
                Some(healthy.clone()),
                vec![],
            ),
            Case {
                auto_reseed: true,
                ..case(
                    "diverged and failed, auto-reseed: reseed",
                    diverged_node,
                    None,
                    vec![Reseed],
                )
            },
            Case {
                probed_since_change: false,
                ..case(
                    "old primary past its limit on a probe older than the cluster's last change: next tick",
                    old_primary.clone(),
                    Some(probe("0-1-13", None)),
                    vec![],
                )
            },
            Case {
                probed_since_change: false,
                ..case(
                    "following the primary on an older probe: judged as usual",
                    old_primary.clone(),
                    Some(healthy.clone()),
                    vec![ClearRejoinLimit, LiftFence],
                )
            },
        ];
        for c in cases {
            let v = ReplicaView {
                node: &c.node,
                probe: c.probe.as_ref(),
                primary: &primary,
                primary_pos: "0-1-10",
                auto_reseed: c.auto_reseed,
                paused: c.paused,
                repair_allowed: c.repair_allowed,
                probed_since_change: c.probed_since_change,
            };
            assert_eq!(plan(&v).unwrap(), c.want, "{}", c.name);
        }
    }

    #[test]
    fn diverged_with_auto_reseed_fails_then_reseeds() {
        let primary = NodeRecord {
            role: NodeRole::Primary,
            ..node("p", 4000)
        };
        let n = node("r", 4001);
        let p = probe("0-1-11", None);
        let v = ReplicaView {
            node: &n,
            probe: Some(&p),
            primary: &primary,
            primary_pos: "0-1-10",
            auto_reseed: true,
            paused: false,
            repair_allowed: true,
            probed_since_change: true,
        };
        let actions = plan(&v).unwrap();
        assert!(
            matches!(actions.as_slice(), [ReplicaAction::Fail { .. }, ReplicaAction::Reseed]),
            "{actions:?}"
        );
        let bad = probe("not a position", None);
        assert!(plan(&ReplicaView { probe: Some(&bad), ..v }).is_err());
    }
}
