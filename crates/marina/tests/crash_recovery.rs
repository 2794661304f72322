//! Crash safety with real processes: the control plane is SIGKILLed during every
//! step of create, delete and the node operations (failpoints), restarted, and must finish the
//! operation with no orphan process, port, endpoint rule or datadir; running
//! nodes are adopted, not duplicated; dead nodes are restarted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

const CREATE_POINTS: &[&str] = &[
    "create_cluster:prepare_nodes:after",
    "create_cluster:start_nodes:after",
    "create_cluster:configure_replication:before",
    "create_cluster:configure_replication:after",
    "create_cluster:create_catalog:before",
    "create_cluster:create_catalog:after",
    "create_cluster:activate:after",
];

const DELETE_POINTS: &[&str] = &[
    "delete_cluster:remove_endpoints:after",
    "delete_cluster:stop_nodes:after",
    "delete_cluster:remove_files:before",
    "delete_cluster:remove_files:after",
    "delete_cluster:release_resources:before",
];

/// Finds the cluster named `name` and its newest operation.
async fn cluster_and_op(app: &TestApp, name: &str) -> (Value, Value) {
    let (_, list) = app.get("/v1/clusters").await;
    let c = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .expect("cluster recorded");
    let (_, ops) = app
        .get(&format!("/v1/clusters/{}/operations", c["id"].as_str().unwrap()))
        .await;
    (c, ops["data"][0].clone())
}

fn nft_rules(app: &TestApp) -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", &app.nft_table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_resumes_after_a_crash_in_any_step() {
    let mut app = TestApp::start().await;
    for (i, point) in CREATE_POINTS.iter().enumerate() {
        let name = format!("crash{i}");
        let body = json!({"name": name, "size_id": "xsmall", "nodes": 2});
        app.crash_during(point, reqwest::Method::POST, "/v1/clusters", Some(body))
            .await;
        let (_, op) = cluster_and_op(&app, &name).await;
        let op = app.wait_op(op["id"].as_str().unwrap(), Duration::from_secs(60)).await;
        assert_eq!(op["status"], "succeeded", "after crash at {point}: {op}");
        let (c, _) = cluster_and_op(&app, &name).await;
        assert_eq!(c["status"], "active", "after crash at {point}: {c}");
        // Exactly the cluster's processes run: nothing was started twice.
        assert_eq!(app.mariadbd_pids().len(), 2 * (i + 1), "after crash at {point}");
    }
    // Every cluster works and deletes cleanly.
    let (_, list) = app.get("/v1/clusters").await;
    for c in list["data"].as_array().unwrap() {
        let op = app.delete_cluster(c["id"].as_str().unwrap()).await;
        assert_eq!(op["status"], "succeeded", "{op}");
    }
    assert!(app.mariadbd_pids().is_empty());
    assert_eq!(std::fs::read_dir(app.data_dir().join("nodes")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_resumes_after_a_crash_in_any_step() {
    let mut app = TestApp::start().await;
    for point in DELETE_POINTS {
        let (c, _) = app.create_cluster("doomed", 2).await;
        let id = c["id"].as_str().unwrap().to_string();
        let ports: Vec<u16> = c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["port"].as_u64().unwrap() as u16)
            .collect();
        let writer = c["endpoints"]["writer"]["host"].as_str().unwrap().to_string();
        app.crash_during(point, reqwest::Method::DELETE, &format!("/v1/clusters/{id}"), None)
            .await;
        let (_, ops) = app.get(&format!("/v1/clusters/{id}/operations")).await;
        let op_id = ops["data"][0]["id"].as_str().map(String::from);
        if let Some(op_id) = op_id {
            let op = app.wait_op(&op_id, Duration::from_secs(60)).await;
            assert_eq!(op["type"], "delete_cluster");
            assert_eq!(op["status"], "succeeded", "after crash at {point}: {op}");
        }
        eventually(Duration::from_secs(10), "cluster gone", || async {
            let (s, _) = app.get(&format!("/v1/clusters/{id}")).await;
            (s == 404).then_some(())
        })
        .await;
        assert!(app.mariadbd_pids().is_empty(), "after crash at {point}");
        for p in &ports {
            assert!(!port_open(*p), "port {p} open after crash at {point}");
        }
        assert_eq!(
            std::fs::read_dir(app.data_dir().join("nodes")).unwrap().count(),
            0,
            "after crash at {point}"
        );
        assert!(
            !nft_rules(&app).contains(&format!("{writer} ")),
            "endpoint rule left after crash at {point}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_adopts_nodes_and_supervisor_restarts_dead_ones() {
    // Userspace endpoints: they die with the control plane and must come back.
    let mut app = TestApp::start_with("userspace").await;
    let (c, password) = app.create_cluster("keep", 2).await;
    let id = c["id"].as_str().unwrap().to_string();
    let (wh, wp) = (c["endpoints"]["writer"]["host"].as_str().unwrap().to_string(), 3306);
    let before = app.mariadbd_pids();
    assert_eq!(before.len(), 2);

    app.kill_server();
    // Nodes outlive the control plane.
    assert_eq!(app.mariadbd_pids(), before);
    // An orphan directory (no node record) is cleaned up at the next start.
    std::fs::create_dir_all(app.data_dir().join("nodes/nd_orphan0000000000")).unwrap();
    app.spawn_server(None);
    let mut conn = eventually(Duration::from_secs(10), "writer endpoint back", || async {
        mysql(&wh, wp, "admin", &password).await.ok()
    })
    .await;
    conn.query_drop("CREATE DATABASE survived").await.unwrap();
    drop(conn);
    assert_eq!(app.mariadbd_pids(), before, "restart must adopt, not start duplicates");
    eventually(Duration::from_secs(10), "orphan removed", || async {
        (!app.data_dir().join("nodes/nd_orphan0000000000").exists()).then_some(())
    })
    .await;

    // A replica that dies is restarted and catches up.
    let replica = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "replica")
        .unwrap()
        .clone();
    let rport = replica["port"].as_u64().unwrap() as u16;
    let mut victim = None;
    for pid in &before {
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd.contains(replica["id"].as_str().unwrap()) {
            victim = Some(*pid);
        }
    }
    let victim = victim.expect("replica pid");
    // SAFETY: kill(2) on the replica's pid found above.
    unsafe {
        libc::kill(victim as i32, libc::SIGKILL);
    }
    let after = eventually(Duration::from_secs(30), "replica restarted", || async {
        let pids = app.mariadbd_pids();
        (pids.len() == 2 && !pids.contains(&victim)).then_some(pids)
    })
    .await;
    assert_eq!(after.len(), 2);
    let db: String = eventually(Duration::from_secs(20), "replica replicating again", || {
        let pw = password.clone();
        async move {
            let mut r = mysql("127.0.0.1", rport, "admin", &pw).await.ok()?;
            r.query_first("SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'survived'")
                .await
                .ok()
                .flatten()
        }
    })
    .await;
    assert_eq!(db, "survived");
    // The restart is recorded (the event is written right after the node is
    // ready, so it may trail the data by a moment).
    eventually(Duration::from_secs(10), "node_restarted event", || async {
        let (_, events) = app.get(&format!("/v1/clusters/{id}/events")).await;
        events["data"]
            .as_array()?
            .iter()
            .any(|e| e["type"] == "node_restarted")
            .then_some(())
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, c) = app.get(&format!("/v1/clusters/{id}")).await;
        if c["status"] == "active" {
            break;
        }
        if Instant::now() > deadline {
            let (_, events) = app.get(&format!("/v1/clusters/{id}/events")).await;
            let (_, nodes) = app.get(&format!("/v1/clusters/{id}/nodes")).await;
            panic!(
                "cluster not active again after 20 s: {c}\nnodes: {nodes}\nevents: {events}\n{}",
                app.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Delete works even when the processes are already gone.
    for pid in app.mariadbd_pids() {
        // SAFETY: kill(2) on this test's own mariadbd pids.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    let op = app.delete_cluster(&id).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert!(app.mariadbd_pids().is_empty());
    assert_eq!(std::fs::read_dir(app.data_dir().join("nodes")).unwrap().count(), 0);
}

const ADD_POINTS: &[&str] = &[
    "add_node:copy_data:after",
    "add_node:start_node:after",
    "add_node:attach:before",
    "add_node:finish:before",
];

const REMOVE_POINTS: &[&str] = &[
    "remove_node:drain:after",
    "remove_node:stop_node:after",
    "remove_node:delete_node:before",
    "remove_node:delete_node:after",
];

/// The newest operation of a cluster, waited for; it must have succeeded.
async fn newest_op_succeeds(app: &TestApp, id: &str, t: &str, point: &str) {
    let (_, ops) = app.get(&format!("/v1/clusters/{id}/operations")).await;
    let op = &ops["data"][0];
    assert_eq!(op["type"], t, "after crash at {point}: {ops}");
    let op = app.wait_op(op["id"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(op["status"], "succeeded", "after crash at {point}: {op}\n{}", app.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_operations_resume_after_a_crash_in_any_step() {
    let mut app = TestApp::start().await;
    let (c, _) = app.create_cluster("grow", 1).await;
    let id = c["id"].as_str().unwrap().to_string();
    let nodes_path = format!("/v1/clusters/{id}/nodes");
    for (i, point) in ADD_POINTS.iter().enumerate() {
        app.crash_during(point, reqwest::Method::POST, &nodes_path, Some(json!({})))
            .await;
        newest_op_succeeds(&app, &id, "add_node", point).await;
        let c = wait_all_active(&app, &id).await;
        assert_eq!(c["nodes"].as_array().unwrap().len(), i + 2, "after crash at {point}");
        assert_eq!(app.mariadbd_pids().len(), i + 2, "after crash at {point}");
    }
    let c = cluster(&app, &id).await;
    let r = replicas(&c)[0]["id"].as_str().unwrap().to_string();
    app.crash_during(
        "stop_node:stop:after",
        reqwest::Method::POST,
        &format!("{nodes_path}/{r}/stop"),
        Some(json!({})),
    )
    .await;
    newest_op_succeeds(&app, &id, "stop_node", "stop_node:stop:after").await;
    app.crash_during(
        "start_node:attach:before",
        reqwest::Method::POST,
        &format!("{nodes_path}/{r}/start"),
        Some(json!({})),
    )
    .await;
    newest_op_succeeds(&app, &id, "start_node", "start_node:attach:before").await;
    wait_all_active(&app, &id).await;
    // Rolling operations, killed right after the embedded switchover promoted.
    let cluster_path = format!("/v1/clusters/{id}");
    app.crash_during(
        "resize_cluster:switchover:promote:after",
        reqwest::Method::PATCH,
        &cluster_path,
        Some(json!({"size_id": "small"})),
    )
    .await;
    newest_op_succeeds(&app, &id, "resize_cluster", "resize_cluster:switchover:promote:after").await;
    let c = wait_all_active(&app, &id).await;
    assert_eq!(c["size_id"], "small");
    assert!(
        c["nodes"].as_array().unwrap().iter().all(|n| n["size_id"] == "small"),
        "{c}"
    );
    app.crash_during(
        "reboot_cluster:switchover:move_endpoints:before",
        reqwest::Method::POST,
        &format!("{cluster_path}/reboot"),
        Some(json!({})),
    )
    .await;
    newest_op_succeeds(
        &app,
        &id,
        "reboot_cluster",
        "reboot_cluster:switchover:move_endpoints:before",
    )
    .await;
    let c = wait_all_active(&app, &id).await;
    assert_eq!(app.mariadbd_pids().len(), c["nodes"].as_array().unwrap().len());
    for point in REMOVE_POINTS {
        let c = cluster(&app, &id).await;
        let victim = replicas(&c)[0].clone();
        let victim_id = victim["id"].as_str().unwrap();
        let before = c["nodes"].as_array().unwrap().len();
        app.crash_during(
            point,
            reqwest::Method::DELETE,
            &format!("{nodes_path}/{victim_id}"),
            None,
        )
        .await;
        newest_op_succeeds(&app, &id, "remove_node", point).await;
        let c = wait_all_active(&app, &id).await;
        assert_eq!(
            c["nodes"].as_array().unwrap().len(),
            before - 1,
            "after crash at {point}"
        );
        assert_eq!(app.mariadbd_pids().len(), before - 1, "after crash at {point}");
        assert!(
            !port_open(victim["port"].as_u64().unwrap() as u16),
            "after crash at {point}"
        );
        assert!(
            !app.data_dir().join("nodes").join(victim_id).exists(),
            "after crash at {point}"
        );
    }
}
