//! Table tests of the monitor's cluster plan (`plan.rs`): one row per
//! decision, each naming what was observed and the actions expected.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use marina_common::model::*;
use marina_engine::probe::{Probe, ReplicaProbe};

use super::*;
use crate::monitor::replica_plan::ReplicaAction;

const P: &str = "nd_p";
const R1: &str = "nd_r1";
const R2: &str = "nd_r2";

fn cluster() -> ClusterRecord {
    ClusterRecord {
        id: "cl_1".into(),
        tenant_id: "tn_1".into(),
        name: "c".into(),
        status: ClusterStatus::Active,
        size_id: "small".into(),
        version: "10.11.1".into(),
        replication: Replication::Semisync,
        node_count: 3,
        writer_host: "127.77.0.1".into(),
        reader_host: "127.78.0.1".into(),
        endpoint_port: 3306,
        endpoints_ready: true,
        secrets_enc: String::new(),
        generation: 1,
        failover_mode: FailoverMode::Automatic,
        writer_paused: false,
        restore: None,
        backup_policy: None,
        backup_slot: None,
        auto_reseed: false,
        primary_read_only: false,
        binlog_archive_since: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn node(id: &str, role: NodeRole, port: u16) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        cluster_id: "cl_1".into(),
        ordinal: 0,
        role,
        status: NodeStatus::Active,
        host: "127.0.0.1".into(),
        port,
        size_id: "small".into(),
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

fn nodes() -> Vec<NodeRecord> {
    vec![
        node(P, NodeRole::Primary, 4000),
        node(R1, NodeRole::Replica, 4001),
        node(R2, NodeRole::Replica, 4002),
    ]
}

/// What the test clock says "now" is.
fn now() -> Instant {
    *NOW.get_or_init(|| Instant::now() + Duration::from_secs(3600))
}
static NOW: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn up(probe: Probe) -> NodeHealth {
    NodeHealth {
        probe: Some(probe),
        reachable: true,
        failing_since: None,
        consecutive_failures: 0,
        last_error: None,
        checked_at: String::new(),
        last_heard: now(),
        probed_at: now(),
    }
}

/// Unreachable for `ms`, after `failures` lost probes; its last probe kept.
fn lost(mut h: NodeHealth, ms: u64, failures: u32) -> NodeHealth {
    h.reachable = false;
    h.failing_since = Some(now() - Duration::from_millis(ms));
    h.consecutive_failures = failures;
    h.last_error = Some("connection refused".into());
    h
}

fn primary_probe(read_only: bool) -> Probe {
    Probe {
        read_only,
        gtid_binlog_pos: "0-1-10".into(),
        ..Default::default()
    }
}

fn replica_probe(io: &str, sql: bool) -> Probe {
    Probe {
        read_only: true,
        gtid_binlog_pos: "0-1-10".into(),
        replica: Some(ReplicaProbe {
            io_state: io.into(),
            sql_running: sql,
            master_host: "127.0.0.1".into(),
            master_port: 4000,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn healthy() -> HashMap<String, NodeHealth> {
    HashMap::from([
        (P.to_string(), up(primary_probe(false))),
        (R1.to_string(), up(replica_probe("Yes", true))),
        (R2.to_string(), up(replica_probe("Yes", true))),
    ])
}

/// Replicas that lost the primary: IO thread reconnecting, silent for 2 s.
fn orphaned(mut health: HashMap<String, NodeHealth>) -> HashMap<String, NodeHealth> {
    for id in [R1, R2] {
        let h = health.get_mut(id).unwrap();
        h.probe = Some(replica_probe("Connecting", true));
        h.last_heard = now() - Duration::from_secs(2);
    }
    health
}

fn settings() -> Settings {
    Settings {
        failure_window: Duration::from_millis(400),
        witness_silence: Duration::from_millis(400),
        settle: Duration::from_secs(30),
        flap_limit: 2,
        disk_reserve: 0,
    }
}

/// One row: a setup applied to a healthy three-node cluster, and the
/// actions expected.
struct Case {
    name: &'static str,
    setup: fn(&mut Fixture),
    want: Vec<Action>,
}

struct Fixture {
    cluster: ClusterRecord,
    nodes: Vec<NodeRecord>,
    health: HashMap<String, NodeHealth>,
    exited: bool,
    recent: Vec<time::OffsetDateTime>,
    disk: Vec<(String, NodeDisk)>,
    disk_limited: bool,
    paused: HashSet<String>,
    repair_allowed: HashSet<String>,
}

fn wall() -> time::OffsetDateTime {
    time::macros::datetime!(2026-12-06 12:00 UTC)
}

fn run(f: &Fixture) -> Vec<Action> {
    let o = Observations {
        cluster: &f.cluster,
        nodes: &f.nodes,
        health: &f.health,
        primary_exited: f.exited,
        recent_failovers: &f.recent,
        disk: &f.disk,
        host_free: None,
        disk_limited: f.disk_limited,
        disk_fenced: false,
        paused: &f.paused,
        repair_allowed: &f.repair_allowed,
    };
    plan(&o, &settings(), now(), wall())
}

fn fixture() -> Fixture {
    Fixture {
        cluster: cluster(),
        nodes: nodes(),
        health: healthy(),
        exited: false,
        recent: Vec::new(),
        disk: Vec::new(),
        disk_limited: false,
        paused: HashSet::new(),
        repair_allowed: HashSet::from([R1.to_string(), R2.to_string()]),
    }
}

fn status(node: &str, role: NodeRole, from: NodeStatus, to: NodeStatus, detail: &str) -> Action {
    Action::NodeStatus {
        node: node.into(),
        role,
        from,
        to,
        detail: detail.into(),
    }
}

fn replica(node: &str, action: ReplicaAction) -> Action {
    Action::Replica {
        node: node.into(),
        action,
    }
}

fn becomes(to: ClusterStatus) -> Action {
    Action::ClusterStatus { to }
}

fn disk(percent: u64) -> Vec<(String, NodeDisk)> {
    vec![(
        R1.to_string(),
        NodeDisk {
            used_bytes: percent << 20,
            quota_bytes: 100 << 20,
        },
    )]
}

const FAILED_EVIDENCE: &str =
    "primary unreachable for 500 ms; replicas agree: nd_r1 lost its connection; nd_r2 lost its connection";

#[test]
fn decisions() {
    use Action::{ClearDecision, DiskLimit, DiskRelease, Fence, MakeWritable, Note, ProbeSoon, StartFailover};
    use NodeRole::{Primary, Replica};
    use NodeStatus::{Active, Down};
    let cases = vec![
        Case {
            name: "healthy and active: nothing but clearing the last decision",
            setup: |_| {},
            want: vec![ClearDecision],
        },
        Case {
            name: "healthy but degraded: the cluster is active again",
            setup: |f| f.cluster.status = ClusterStatus::Degraded,
            want: vec![ClearDecision, becomes(ClusterStatus::Active)],
        },
        Case {
            name: "primary lost for the window and the replicas agree: failover, and nothing else",
            setup: |f| {
                f.health = orphaned(healthy());
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 500, 3));
            },
            want: vec![StartFailover {
                evidence: FAILED_EVIDENCE.into(),
            }],
        },
        Case {
            name: "failed primary in manual mode: refused once, cluster failed, primary down",
            setup: |f| {
                f.cluster.failover_mode = FailoverMode::Manual;
                f.health = orphaned(healthy());
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 500, 3));
            },
            want: vec![
                Note {
                    kind: "failover_refused",
                    key: format!(
                        "{FAILED_EVIDENCE}; failover refused: failover mode is manual: an operator must act (POST \
                         /v1/clusters/cl_1/failover)"
                    ),
                    msg: format!(
                        "{FAILED_EVIDENCE}; failover refused: failover mode is manual: an operator must act (POST \
                         /v1/clusters/cl_1/failover)"
                    ),
                },
                status(P, Primary, Active, Down, "connection refused"),
                status(R1, Replica, Active, Down, "not healthy in its role"),
                status(R2, Replica, Active, Down, "not healthy in its role"),
                becomes(ClusterStatus::Failed),
            ],
        },
        Case {
            name: "failed primary in a crash loop: refused, naming the loop",
            setup: |f| {
                f.recent = vec![wall() - time::Duration::seconds(10), wall() - time::Duration::seconds(20)];
                f.health = orphaned(healthy());
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 500, 3));
                f.nodes.iter_mut().for_each(|n| n.status = Down);
                f.cluster.status = ClusterStatus::Failed;
            },
            want: vec![Note {
                kind: "failover_refused",
                key: format!(
                    "{FAILED_EVIDENCE}; failover refused: crash loop: 2 failover(s) in 20 s, each new primary \
                     failing within 30 s of its promotion, reached the limit of 2; an operator must act"
                ),
                msg: format!(
                    "{FAILED_EVIDENCE}; failover refused: crash loop: 2 failover(s) in 20 s, each new primary \
                     failing within 30 s of its promotion, reached the limit of 2; an operator must act"
                ),
            }],
        },
        Case {
            name: "one failover long ago: no crash loop, failover",
            setup: |f| {
                f.recent = vec![wall() - time::Duration::seconds(100)];
                f.health = orphaned(healthy());
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 500, 3));
            },
            want: vec![StartFailover {
                evidence: FAILED_EVIDENCE.into(),
            }],
        },
        Case {
            name: "primary lost but the replicas still hear it: skipped with the reason",
            setup: |f| {
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 500, 1));
            },
            want: vec![Note {
                kind: "failover_skipped",
                key: "primary unreachable from Marina for 500 ms, but replica(s) nd_r1, nd_r2 still receive its \
                      events; not failing over"
                    .into(),
                msg: "primary unreachable from Marina for 500 ms, but replica(s) nd_r1, nd_r2 still receive its \
                      events; not failing over"
                    .into(),
            }],
        },
        Case {
            name: "replicas that heard the primary at their latest probe, a slow tick ago: still witnesses it alive",
            setup: |f| {
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 500, 1));
                // Their latest probes (2 s before this evaluation: a tick
                // held up by the primary's hanging probe) saw them hear it.
                for id in [R1, R2] {
                    let h = f.health.get_mut(id).unwrap();
                    h.probed_at = now() - Duration::from_secs(2);
                    h.last_heard = now() - Duration::from_secs(2);
                }
            },
            want: vec![Note {
                kind: "failover_skipped",
                key: "primary unreachable from Marina for 500 ms, but replica(s) nd_r1, nd_r2 still receive its \
                      events; not failing over"
                    .into(),
                msg: "primary unreachable from Marina for 500 ms, but replica(s) nd_r1, nd_r2 still receive its \
                      events; not failing over"
                    .into(),
            }],
        },
        Case {
            name: "primary lost within the window: suspect, statuses wait for a second lost probe",
            setup: |f| {
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 100, 1));
            },
            want: vec![Note {
                kind: "primary_suspect",
                key: "suspect".into(),
                msg: "primary nd_p is not answering probes (connection refused)".into(),
            }],
        },
        Case {
            name: "primary's process exited, replicas still connected: suspect, probe again soon",
            setup: |f| {
                f.exited = true;
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 10, 1));
            },
            want: vec![
                ProbeSoon,
                Note {
                    kind: "primary_suspect",
                    key: "suspect".into(),
                    msg: "primary nd_p is not answering probes (connection refused)".into(),
                },
            ],
        },
        Case {
            name: "primary's process exited and the replicas lost it: failover without a window",
            setup: |f| {
                f.exited = true;
                f.health = orphaned(healthy());
                f.health.get_mut(R1).unwrap().last_heard = now();
                let p = f.health.remove(P).unwrap();
                f.health.insert(P.into(), lost(p, 10, 1));
            },
            want: vec![StartFailover {
                evidence: "the primary's process exited; replicas agree: nd_r1, nd_r2 lost their connection".into(),
            }],
        },
        Case {
            name: "a writable replica is fenced (set read-only) and judged no further",
            setup: |f| f.health.get_mut(R1).unwrap().probe.as_mut().unwrap().read_only = false,
            want: vec![
                Fence {
                    node: R1.into(),
                    kill: false,
                },
                ClearDecision,
            ],
        },
        Case {
            name: "a writable old primary is killed",
            setup: |f| {
                f.nodes[1].rejoin_gtid = Some("0-1-10".into());
                f.health.insert(R1.into(), up(primary_probe(false)));
            },
            want: vec![
                Fence {
                    node: R1.into(),
                    kill: true,
                },
                ClearDecision,
            ],
        },
        Case {
            name: "a read-only primary (restarted) is made writable",
            setup: |f| {
                f.health.insert(P.into(), up(primary_probe(true)));
            },
            want: vec![
                ClearDecision,
                MakeWritable { node: P.into() },
                status(P, Primary, Active, Down, "not healthy in its role"),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "a primary the user holds read-only stays so, and active",
            setup: |f| {
                f.cluster.primary_read_only = true;
                f.health.insert(P.into(), up(primary_probe(true)));
            },
            want: vec![ClearDecision],
        },
        Case {
            name: "a node over 90% of its disk quota holds the primary read-only",
            setup: |f| f.disk = disk(91),
            want: vec![
                ClearDecision,
                DiskLimit {
                    reason: "node nd_r1 uses 91 MiB of its 100 MiB disk quota (91%): the cluster is read-only until space is \
                             freed (drop a database through the API) or it is resized to a larger size"
                        .into(),
                    fence: false,
                    hold: true,
                },
            ],
        },
        Case {
            name: "a node at its whole quota: the primary's sessions are ended too, and it is not made writable",
            setup: |f| {
                f.disk = disk(100);
                f.health.insert(P.into(), up(primary_probe(true)));
            },
            want: vec![
                ClearDecision,
                DiskLimit {
                    reason: "node nd_r1 uses 100 MiB of its 100 MiB disk quota (100%): the cluster is read-only until space is \
                             freed (drop a database through the API) or it is resized to a larger size"
                        .into(),
                    fence: true,
                    hold: false,
                },
            ],
        },
        Case {
            name: "a limited cluster below the release line is released",
            setup: |f| {
                f.disk = disk(80);
                f.disk_limited = true;
            },
            want: vec![ClearDecision, DiskRelease],
        },
        Case {
            name: "a replica with a stopped IO thread is restarted and down meanwhile",
            setup: |f| {
                f.health.insert(R1.into(), up(replica_probe("No", true)));
            },
            want: vec![
                ClearDecision,
                replica(R1, ReplicaAction::Restart),
                status(R1, Replica, Active, Down, "not healthy in its role"),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "a replica paused by a backup's copy is left alone and active",
            setup: |f| {
                f.paused.insert(R1.into());
                f.health.insert(R1.into(), up(replica_probe("Yes", false)));
            },
            want: vec![ClearDecision],
        },
        Case {
            name: "a replica with an SQL error is failed (no status write of its own)",
            setup: |f| {
                let mut p = replica_probe("Yes", false);
                let r = p.replica.as_mut().unwrap();
                r.last_sql_error = "boom".into();
                r.last_sql_errno = 1146;
                f.health.insert(R1.into(), up(p));
            },
            want: vec![
                ClearDecision,
                replica(
                    R1,
                    ReplicaAction::Fail {
                        reason: "replication SQL error: boom".into(),
                    },
                ),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "a replica with an unreadable relay log is repaired",
            setup: |f| {
                let mut p = replica_probe("Yes", false);
                let r = p.replica.as_mut().unwrap();
                r.last_sql_error = "relay log read failure".into();
                r.last_sql_errno = 1594;
                f.health.insert(R1.into(), up(p));
            },
            want: vec![
                ClearDecision,
                replica(
                    R1,
                    ReplicaAction::RepairRelayLog {
                        error: "relay log read failure".into(),
                    },
                ),
                status(R1, Replica, Active, Down, "not healthy in its role"),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "a replica of another source within the primary's history rejoins",
            setup: |f| {
                let mut p = replica_probe("Yes", true);
                p.gtid_binlog_pos = "0-1-9".into();
                p.replica.as_mut().unwrap().master_port = 4999;
                f.health.insert(R1.into(), up(p));
            },
            want: vec![
                ClearDecision,
                replica(
                    R1,
                    ReplicaAction::Rejoin {
                        mine: "0-1-9".into(),
                        limit: "0-1-10".into(),
                    },
                ),
                status(R1, Replica, Active, Down, "not healthy in its role"),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "a replica not following on a probe older than the cluster's last change: no rejoin (next tick)",
            setup: |f| {
                let mut p = replica_probe("Yes", true);
                p.gtid_binlog_pos = "0-2-30".into();
                p.replica.as_mut().unwrap().master_port = 4999;
                f.health.insert(R1.into(), up(p));
                f.cluster.updated_at = "2026-12-07T12:00:01.000Z".into();
                for h in f.health.values_mut() {
                    h.checked_at = "2026-12-07T12:00:00.900Z".into();
                }
            },
            want: vec![
                ClearDecision,
                status(R1, Replica, Active, Down, "not healthy in its role"),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "probes taken after the cluster last changed decide as usual",
            setup: |f| {
                let mut p = replica_probe("Yes", true);
                p.gtid_binlog_pos = "0-1-9".into();
                p.replica.as_mut().unwrap().master_port = 4999;
                f.health.insert(R1.into(), up(p));
                f.cluster.updated_at = "2026-12-07T12:00:01.000Z".into();
                for h in f.health.values_mut() {
                    h.checked_at = "2026-12-07T12:00:01.000Z".into();
                }
            },
            want: vec![
                ClearDecision,
                replica(
                    R1,
                    ReplicaAction::Rejoin {
                        mine: "0-1-9".into(),
                        limit: "0-1-10".into(),
                    },
                ),
                status(R1, Replica, Active, Down, "not healthy in its role"),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "a replica unreachable once is a blip",
            setup: |f| {
                let h = f.health.remove(R1).unwrap();
                f.health.insert(R1.into(), lost(h, 100, 1));
            },
            want: vec![ClearDecision],
        },
        Case {
            name: "a replica unreachable twice is down, the cluster degraded",
            setup: |f| {
                let h = f.health.remove(R1).unwrap();
                f.health.insert(R1.into(), lost(h, 300, 2));
            },
            want: vec![
                ClearDecision,
                status(R1, Replica, Active, Down, "connection refused"),
                becomes(ClusterStatus::Degraded),
            ],
        },
        Case {
            name: "a down replica healthy again is active, and so is the cluster",
            setup: |f| {
                f.nodes[1].status = Down;
                f.cluster.status = ClusterStatus::Degraded;
            },
            want: vec![
                ClearDecision,
                status(R1, Replica, Down, Active, "not healthy in its role"),
                becomes(ClusterStatus::Active),
            ],
        },
        Case {
            name: "a node in maintenance keeps its status and the cluster stays active",
            setup: |f| {
                f.nodes[2].status = NodeStatus::Maintenance;
                f.health.insert(R2.into(), up(replica_probe("No", false)));
            },
            want: vec![ClearDecision],
        },
        Case {
            name: "no primary row: nothing to decide",
            setup: |f| f.nodes.retain(|n| n.role != Primary),
            want: vec![],
        },
    ];
    let mut failures = Vec::new();
    for c in cases {
        let mut f = fixture();
        (c.setup)(&mut f);
        let got = run(&f);
        if got != c.want {
            failures.push(format!("{}:\n  want {:?}\n  got  {:?}", c.name, c.want, got));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The steady state's plan is carried out from the tick's records (no fresh
/// read); anything that writes the store or touches a node is not.
#[test]
fn only_memory_actions_skip_the_fresh_read() {
    let steady = run(&fixture());
    assert!(steady.iter().all(Action::in_memory), "{steady:?}");
    assert!(Action::ProbeSoon.in_memory());
    let mut f = fixture();
    f.cluster.status = ClusterStatus::Degraded;
    let got = run(&f);
    assert!(!got.iter().all(Action::in_memory), "{got:?}");
    for a in [
        Action::Fence {
            node: R1.into(),
            kill: false,
        },
        Action::StartFailover { evidence: "x".into() },
        Action::MakeWritable { node: P.into() },
        Action::DiskRelease,
        becomes(ClusterStatus::Active),
    ] {
        assert!(!a.in_memory(), "{a:?}");
    }
}

#[test]
fn an_unreadable_position_leaves_that_replica_alone_and_decides_the_rest() {
    let mut f = fixture();
    let mut p = replica_probe("Yes", true);
    p.gtid_binlog_pos = "garbage".into();
    p.replica.as_mut().unwrap().master_port = 4999;
    f.health.insert(R1.into(), up(p));
    f.health.insert(R2.into(), up(replica_probe("No", true)));
    let got = run(&f);
    assert!(
        matches!(&got[1], Action::Note { kind: "replica_unreadable", msg, .. } if msg.contains("nd_r1")),
        "{got:?}"
    );
    assert!(got.contains(&replica(R2, ReplicaAction::Restart)), "{got:?}");
    assert!(
        !got.iter()
            .any(|a| matches!(a, Action::Replica { node, .. } if node == R1)),
        "{got:?}"
    );
}

#[test]
fn reader_membership() {
    let n = node(R1, NodeRole::Replica, 4001);
    let lagging = |secs: u64| {
        let mut p = replica_probe("Yes", true);
        p.replica.as_mut().unwrap().seconds_behind = Some(secs);
        up(p)
    };
    let fenced = NodeRecord {
        fenced: true,
        ..n.clone()
    };
    let cases: Vec<(&str, &NodeRecord, Option<NodeHealth>, bool)> = vec![
        (
            "replicating, no lag figure",
            &n,
            Some(up(replica_probe("Yes", true))),
            true,
        ),
        ("within the lag limit", &n, Some(lagging(5)), true),
        ("past the lag limit", &n, Some(lagging(11)), false),
        ("IO thread stopped", &n, Some(up(replica_probe("No", true))), false),
        (
            "SQL thread stopped (a backup's copy)",
            &n,
            Some(up(replica_probe("Yes", false))),
            false,
        ),
        ("writable", &n, Some(up(primary_probe(false))), false),
        (
            "unreachable",
            &n,
            Some(lost(up(replica_probe("Yes", true)), 500, 3)),
            false,
        ),
        ("fenced", &fenced, Some(up(replica_probe("Yes", true))), false),
        ("never probed yet", &n, None, true),
    ];
    for (name, node, h, want) in cases {
        assert_eq!(reader_fit(node, h.as_ref(), 10.0), want, "{name}");
    }
}
