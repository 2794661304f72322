//! End to end with real mariadbd: a 3-node semisync cluster serves writes through
//! its writer endpoint, replicates to both replicas, refuses writes on replicas,
//! and leaves nothing behind when deleted. Also a 1-node cluster and two
//! clusters created at once.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

fn endpoint(c: &Value, which: &str) -> (String, u16) {
    let e = &c["endpoints"][which];
    (
        e["host"].as_str().unwrap().to_string(),
        e["port"].as_u64().unwrap() as u16,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_cluster_kernel_endpoints() {
    three_node_cluster_replicates_and_deletes_cleanly("kernel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_cluster_userspace_endpoints() {
    three_node_cluster_replicates_and_deletes_cleanly("userspace").await;
}

async fn three_node_cluster_replicates_and_deletes_cleanly(mode: &str) {
    let app = TestApp::start_with(mode).await;
    let (cluster, password) = app.create_cluster("orders", 3).await;
    assert_eq!(cluster["status"], "active", "{cluster}");
    assert_eq!(cluster["replication"], "semisync");
    let nodes = cluster["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes.iter().filter(|n| n["role"] == "primary").count(), 1);
    assert!(nodes.iter().all(|n| n["status"] == "active"), "{cluster}");
    assert_eq!(app.mariadbd_pids().len(), 3);

    // The customer's credentials work through the writer endpoint (port 3306).
    let (wh, wp) = endpoint(&cluster, "writer");
    assert_eq!(wp, 3306);
    let mut w = mysql(&wh, wp, "admin", &password)
        .await
        .expect("admin through writer endpoint");
    let read_only: i64 = w.query_first("SELECT @@read_only").await.unwrap().unwrap();
    assert_eq!(read_only, 0, "writer endpoint must lead to the writable primary");
    w.query_drop("CREATE DATABASE app").await.unwrap();
    w.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    w.query_drop("INSERT INTO app.t VALUES (1, 'hello')").await.unwrap();
    // Semi-sync is really on: the primary waits for a replica's acknowledgement.
    let row: Option<(String, String)> = w
        .query_first("SHOW STATUS LIKE 'Rpl_semi_sync_master_status'")
        .await
        .unwrap();
    assert_eq!(row.unwrap().1, "ON");
    let gtid_strict: i64 = w.query_first("SELECT @@gtid_strict_mode").await.unwrap().unwrap();
    assert_eq!(gtid_strict, 1);
    w.disconnect().await.unwrap();
    if mode == "kernel" {
        // A closed connection through the endpoint leaves conntrack's
        // TIME_WAIT after 10 s, not the host's 120 (a connection-per-query
        // load would fill the table).
        let tuple = format!("dst={wh} sport=");
        let line = eventually(Duration::from_secs(5), "endpoint connection in TIME_WAIT", || {
            let tuple = tuple.clone();
            async move {
                let table = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap_or_default();
                table
                    .lines()
                    .find(|l| l.contains(" TIME_WAIT ") && l.contains(&tuple) && l.contains("dport=3306 "))
                    .map(str::to_string)
            }
        })
        .await;
        let secs: u32 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
        assert!(secs <= 10, "{line}");
    }

    // Neither the admin password nor the API token is stored in clear.
    for f in ["marina.db", "marina.db-wal"] {
        let bytes = std::fs::read(app.data_dir().join(f)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&password), "admin password in {f}");
        assert!(!text.contains(&app.token), "token secret in {f}");
    }

    // The row appears on both replicas; replicas refuse the customer's writes.
    for n in nodes.iter().filter(|n| n["role"] == "replica") {
        let port = n["port"].as_u64().unwrap() as u16;
        let pw = password.clone();
        let v: String = eventually(Duration::from_secs(10), "row on replica", || {
            let pw = pw.clone();
            async move {
                let mut conn = mysql("127.0.0.1", port, "admin", &pw).await.ok()?;
                conn.query_first("SELECT v FROM app.t WHERE id = 1")
                    .await
                    .ok()
                    .flatten()
            }
        })
        .await;
        let mut r = mysql("127.0.0.1", port, "admin", &password).await.unwrap();
        assert_eq!(v, "hello");
        let using_gtid: Option<mysql_async::Row> = r.query_first("SHOW SLAVE STATUS").await.unwrap();
        let using_gtid: String = using_gtid.unwrap().get("Using_Gtid").unwrap();
        assert_eq!(using_gtid, "Slave_Pos");
        let err = r.query_drop("INSERT INTO app.t VALUES (2, 'nope')").await.unwrap_err();
        assert!(
            err.to_string().contains("read-only") || err.to_string().contains("read only"),
            "{err}"
        );
    }

    // The reader endpoint leads to a replica.
    let (rh, rp) = endpoint(&cluster, "reader");
    let mut r = mysql(&rh, rp, "admin", &password)
        .await
        .expect("admin through reader endpoint");
    let ro: i64 = r.query_first("SELECT @@read_only").await.unwrap().unwrap();
    assert_eq!(ro, 1);
    drop(r);

    // Lists, operations and events are there.
    let id = cluster["id"].as_str().unwrap();
    let (_, ops) = app.get(&format!("/v1/clusters/{id}/operations")).await;
    assert_eq!(ops["object"], "list");
    assert_eq!(ops["data"][0]["type"], "create_cluster");
    let steps: Vec<&str> = ops["data"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "prepare_nodes",
            "start_nodes",
            "configure_replication",
            "create_catalog",
            "activate"
        ]
    );
    let (_, events) = app.get(&format!("/v1/clusters/{id}/events")).await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "cluster_active"),
        "{events}"
    );
    let (_, node_list) = app.get(&format!("/v1/clusters/{id}/nodes")).await;
    assert_eq!(node_list["data"].as_array().unwrap().len(), 3);

    // Delete: no process, port, endpoint or file remains.
    let ports: Vec<u16> = nodes.iter().map(|n| n["port"].as_u64().unwrap() as u16).collect();
    let op = app.delete_cluster(id).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert!(app.mariadbd_pids().is_empty());
    for p in ports {
        assert!(!port_open(p), "port {p} still open");
    }
    assert!(
        mysql(&wh, wp, "admin", &password).await.is_err(),
        "writer endpoint still leads somewhere"
    );
    let left: Vec<_> = std::fs::read_dir(app.data_dir().join("nodes")).unwrap().collect();
    assert!(left.is_empty(), "node dirs left: {left:?}");
    let (status, _) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(status, 404);
    // The name is free again.
    let (status, body) = app.get("/v1/clusters").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_and_two_clusters_at_once() {
    let app = TestApp::start().await;
    let (one, password) = app.create_cluster("solo", 1).await;
    assert_eq!(one["nodes"].as_array().unwrap().len(), 1);
    // With one node the reader leads to the primary.
    let (rh, rp) = endpoint(&one, "reader");
    let mut r = mysql(&rh, rp, "admin", &password).await.unwrap();
    let ro: i64 = r.query_first("SELECT @@read_only").await.unwrap().unwrap();
    assert_eq!(ro, 0);
    drop(r);

    // Two clusters at once: both become active, with distinct endpoints and ports.
    let (a, b) = tokio::join!(app.create_cluster("alpha", 2), app.create_cluster("beta", 2));
    assert_ne!(endpoint(&a.0, "writer"), endpoint(&b.0, "writer"));
    for (c, pw) in [(&a.0, &a.1), (&b.0, &b.1)] {
        let (h, p) = endpoint(c, "writer");
        let mut conn = mysql(&h, p, "admin", pw).await.unwrap();
        let name: String = conn.query_first("SELECT 'ok'").await.unwrap().unwrap();
        assert_eq!(name, "ok");
    }
    // Each password only works on its own cluster.
    let (h, p) = endpoint(&a.0, "writer");
    assert!(mysql(&h, p, "admin", &b.1).await.is_err());
    assert_eq!(app.mariadbd_pids().len(), 5);
    for c in [&one, &a.0, &b.0] {
        let op = app.delete_cluster(c["id"].as_str().unwrap()).await;
        assert_eq!(op["status"], "succeeded");
    }
    assert!(app.mariadbd_pids().is_empty());
}
