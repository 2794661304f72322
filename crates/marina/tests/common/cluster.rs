//! Helpers for tests that drive replicated clusters: a cluster with an `app.t`
//! table, its endpoints and nodes from the API view, pids, events, waiting for
//! operations and for every node to be active, and the no-lost-write check.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::Value;

use super::*;

/// The last lines of the MariaDB error log of each node that is not active,
/// so a failure says what the server itself saw.
fn error_logs_of_inactive_nodes(app: &TestApp, c: &Value) -> String {
    let mut out = String::new();
    for n in c["nodes"].as_array().into_iter().flatten() {
        if n["status"] == "active" {
            continue;
        }
        let id = n["id"].as_str().unwrap_or_default();
        let path = app.node_dir(id).join("error.log");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!("--- {id} ({})\n", path.display()));
        out.push_str(&lines[lines.len().saturating_sub(40)..].join("\n"));
        out.push('\n');
    }
    out
}

/// Creates a cluster with the `app.t` table; returns (cluster, password).
pub async fn setup(app: &TestApp, name: &str, nodes: u32) -> (Value, String) {
    setup_with(
        app,
        serde_json::json!({"name": name, "size_id": "xsmall", "nodes": nodes}),
    )
    .await
}

/// Takes a backup (`body`: `{"method": …}` or `{}`) and waits; returns it.
pub async fn take_backup(app: &TestApp, cluster_id: &str, body: Value) -> Value {
    let (s, created) = app.post(&format!("/v1/clusters/{cluster_id}/backups"), body).await;
    assert_eq!(s, 202, "{created}");
    assert_eq!(created["backup"]["object"], "backup");
    assert_eq!(created["backup"]["status"], "pending");
    let op = app
        .wait_op(created["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    let (_, b) = app
        .get(&format!("/v1/backups/{}", created["backup"]["id"].as_str().unwrap()))
        .await;
    b
}

/// A switchover to the replica Marina chooses, waited for.
pub async fn switch_over(app: &TestApp, id: &str) {
    let (s, sw) = app
        .post(&format!("/v1/clusters/{id}/switchover"), serde_json::json!({}))
        .await;
    assert_eq!(s, 202, "{sw}");
    let op = app
        .wait_op(sw["operation"]["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
}

/// Turns binlog archiving on (with a yearly schedule that never fires in a test).
pub async fn archive_binlogs(app: &TestApp, id: &str) {
    let policy = serde_json::json!({"backup_policy": {"schedule": "0 0 1 1 *", "binlog_archive": true}});
    let (s, body) = app.patch_cluster(id, policy).await;
    assert_eq!(s, 200, "{body}");
}

/// `setup` from a full create request (e.g. with `replication`).
pub async fn setup_with(app: &TestApp, request: Value) -> (Value, String) {
    let (c, pw) = app.create_cluster_with(request).await;
    let (h, p) = writer(&c);
    let mut conn = mysql(&h, p, "admin", &pw).await.unwrap();
    conn.query_drop("CREATE DATABASE app").await.unwrap();
    conn.query_drop("CREATE TABLE app.t (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    (c, pw)
}

/// Every node's `(host, port)`.
pub fn node_addrs(c: &Value) -> Vec<(String, u16)> {
    c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["host"].as_str().unwrap().to_string(),
                n["port"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

pub fn writer(c: &Value) -> (String, u16) {
    let e = &c["endpoints"]["writer"];
    (
        e["host"].as_str().unwrap().to_string(),
        e["port"].as_u64().unwrap() as u16,
    )
}

pub async fn cluster(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/clusters/{id}")).await.1
}

pub fn primary(c: &Value) -> Value {
    primary_id(c)
        .and_then(|id| c["nodes"].as_array()?.iter().find(|n| n["id"] == id.as_str()).cloned())
        .unwrap_or_else(|| panic!("no primary in {c}"))
}

/// The primary's id, if the cluster has one right now (none mid-failover).
pub fn primary_id(c: &Value) -> Option<String> {
    c["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["role"] == "primary")
        .and_then(|n| n["id"].as_str().map(String::from))
}

pub fn replicas(c: &Value) -> Vec<Value> {
    c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "replica")
        .cloned()
        .collect()
}

pub fn pid_of(app: &TestApp, node_id: &str) -> i32 {
    let p = app.node_dir(node_id).join("mariadbd.pid");
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a mariadbd this test's Marina started.
    unsafe {
        libc::kill(pid, sig);
    }
}

pub async fn ops_of_type(app: &TestApp, id: &str, t: &str) -> Vec<Value> {
    let (_, ops) = app.get(&format!("/v1/clusters/{id}/operations")).await;
    ops["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == t)
        .cloned()
        .collect()
}

pub async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let (_, e) = app.get(&format!("/v1/clusters/{id}/events?limit=500")).await;
    e["data"].as_array().unwrap().clone()
}

/// Waits for the n-th operation of type `t` to succeed; returns it.
pub async fn wait_op_count(app: &TestApp, id: &str, t: &str, n: usize, timeout: Duration) -> Value {
    let op = eventually(timeout, &format!("{t} #{n}"), || async {
        let ops = ops_of_type(app, id, t).await;
        (ops.len() >= n).then(|| ops[0].clone())
    })
    .await;
    let done = app.wait_op(op["id"].as_str().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", app.log());
    done
}

/// Waits until every node is active in its role and the cluster is active.
pub async fn wait_all_active(app: &TestApp, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let c = cluster(app, id).await;
        let all = c["nodes"].as_array().unwrap().iter().all(|n| n["status"] == "active");
        if c["status"] == "active" && all {
            return c;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let log = app.log();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let ev: Vec<String> = events(app, id).await.iter().map(|e| e["message"].to_string()).collect();
            panic!(
                "cluster not all active: {c}\nevents: {ev:#?}\nlog:\n{}\nnodes not active:\n{}",
                tail.join("\n"),
                error_logs_of_inactive_nodes(app, &c)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every acknowledged id is on every node, and all nodes have the same data.
pub async fn assert_no_lost_writes(c: &Value, pw: &str, acked: &[(u64, Instant)]) {
    assert!(!acked.is_empty(), "the load acknowledged nothing");
    let want: HashSet<u64> = acked.iter().map(|(id, _)| *id).collect();
    let mut sums = Vec::new();
    for n in c["nodes"].as_array().unwrap() {
        let port = n["port"].as_u64().unwrap() as u16;
        let ids: HashSet<u64> = eventually(Duration::from_secs(20), "node caught up", || {
            let want = want.clone();
            async move {
                let mut conn = mysql("127.0.0.1", port, "admin", pw).await.ok()?;
                let ids: Vec<u64> = conn.query("SELECT id FROM app.t").await.ok()?;
                let ids: HashSet<u64> = ids.into_iter().collect();
                want.is_subset(&ids).then_some(ids)
            }
        })
        .await;
        let mut conn = mysql("127.0.0.1", port, "admin", pw).await.unwrap();
        let sum: Option<(String, Option<u64>)> = conn.query_first("CHECKSUM TABLE app.t").await.unwrap();
        sums.push((port, ids.len(), sum.unwrap().1));
    }
    // Replicas converge on the primary's data.
    let first = sums[0].2;
    for _ in 0..100 {
        if sums.iter().all(|s| s.2 == first) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        sums.clear();
        for n in c["nodes"].as_array().unwrap() {
            let port = n["port"].as_u64().unwrap() as u16;
            let mut conn = mysql("127.0.0.1", port, "admin", pw).await.unwrap();
            let sum: Option<(String, Option<u64>)> = conn.query_first("CHECKSUM TABLE app.t").await.unwrap();
            let n: Option<u64> = conn.query_first("SELECT COUNT(*) FROM app.t").await.unwrap();
            sums.push((port, n.unwrap() as usize, sum.unwrap().1));
        }
    }
    assert!(sums.iter().all(|s| s.2 == sums[0].2), "replicas differ: {sums:?}");
}
