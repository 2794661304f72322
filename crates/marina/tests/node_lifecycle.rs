//! Node lifecycle on real servers with a write load through the writer
//! endpoint: adding replicas (cloned, not replayed), stop/start, maintenance,
//! read-only, reboot, removing nodes (the primary after a switchover), one
//! operation at a time per cluster — and no acknowledged write lost.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

const OP_TIMEOUT: Duration = Duration::from_secs(120);

fn node_path(c: &Value, node: &str) -> String {
    format!("/v1/clusters/{}/nodes/{node}", c["id"].as_str().unwrap())
}

fn step_names(op: &Value) -> Vec<String> {
    op["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Posts `path` with `body`, expects 202 and waits for the operation to succeed.
async fn run_op(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, resp) = app.post(path, body).await;
    assert_eq!(status, 202, "{path}: {resp}");
    let op = app.wait_op(resp["operation"]["id"].as_str().unwrap(), OP_TIMEOUT).await;
    assert_eq!(op["status"], "succeeded", "{path}: {op}\n{}", app.log());
    op
}

async fn node_view(app: &TestApp, c: &Value, node: &str) -> Value {
    app.get(&node_path(c, node)).await.1
}

async fn global(port: u16, pw: &str, var: &str) -> i64 {
    let mut conn = mysql("127.0.0.1", port, "admin", pw).await.unwrap();
    let v: Option<i64> = conn.query_first(format!("SELECT @@{var}")).await.unwrap();
    v.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_added_stopped_rebooted_and_removed_online_without_losing_writes() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "life", 1).await;
    let id = c["id"].as_str().unwrap().to_string();
    let (wh, wp) = writer(&c);
    let first = primary(&c);
    let first_id = first["id"].as_str().unwrap().to_string();
    let load = WriteLoad::start(&wh, wp, &pw);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Add a replica to the 1-node cluster: it is cloned from the primary and
    // semi-sync is switched on.
    let (status, added) = app.post(&format!("/v1/clusters/{id}/nodes"), json!({})).await;
    assert_eq!(status, 202, "{added}");
    assert_eq!(added["node"]["status"], "creating");
    assert_eq!(added["node"]["role"], "replica");
    let a = added["node"]["id"].as_str().unwrap().to_string();
    // One operation at a time: a second request names the running one.
    let (status, busy) = app.post(&format!("/v1/clusters/{id}/nodes"), json!({})).await;
    assert_eq!(status, 409, "{busy}");
    assert_eq!(busy["error"]["code"], "conflict");
    let running = added["operation"]["id"].as_str().unwrap();
    assert!(busy["error"]["message"].as_str().unwrap().contains(running), "{busy}");
    let op = app.wait_op(running, OP_TIMEOUT).await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    assert_eq!(step_names(&op), ["copy_data", "start_node", "attach", "finish"]);
    let c2 = wait_all_active(&app, &id).await;
    assert_eq!(c2["nodes"].as_array().unwrap().len(), 2);
    let first_port = first["port"].as_u64().unwrap() as u16;
    assert_eq!(global(first_port, &pw, "rpl_semi_sync_master_enabled").await, 1);

    // A second replica is cloned from the first one (a replica, not the primary).
    let op = run_op(&app, &format!("/v1/clusters/{id}/nodes"), json!({"size_id": "xsmall"})).await;
    let b = op["node_id"].as_str().unwrap().to_string();
    let c3 = wait_all_active(&app, &id).await;
    assert_eq!(c3["nodes"].as_array().unwrap().len(), 3);
    let cloned = events(&app, &id)
        .await
        .into_iter()
        .find(|e| e["type"] == "node_cloned" && e["node_id"] == b.as_str())
        .expect("node_cloned event");
    assert!(cloned["message"].as_str().unwrap().contains(&a), "{cloned}");

    // Stop B: its process stops and stays stopped; the cluster stays active.
    let b_view = node_view(&app, &c3, &b).await;
    let b_port = b_view["port"].as_u64().unwrap() as u16;
    run_op(&app, &format!("{}/stop", node_path(&c3, &b)), json!({})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(node_view(&app, &c3, &b).await["status"], "stopped");
    assert!(!port_open(b_port), "a stopped node must not be restarted");
    assert_eq!(cluster(&app, &id).await["status"], "active");
    // A stopped node is no switchover target.
    let (status, refused) = app
        .post(&format!("/v1/clusters/{id}/switchover"), json!({"target_node_id": b}))
        .await;
    assert_eq!(status, 409, "{refused}");
    run_op(&app, &format!("{}/start", node_path(&c3, &b)), json!({})).await;
    assert_eq!(node_view(&app, &c3, &b).await["status"], "active");

    // Maintenance: out of the candidates, still replicating.
    run_op(
        &app,
        &format!("{}/maintenance", node_path(&c3, &a)),
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(node_view(&app, &c3, &a).await["status"], "maintenance");
    // The reader endpoint never leads to A now (to B, or to the primary
    // while B's lag is not known yet).
    let a_port = node_view(&app, &c3, &a).await["port"].as_u64().unwrap() as i64;
    let rh = c3["endpoints"]["reader"]["host"].as_str().unwrap();
    let rp = c3["endpoints"]["reader"]["port"].as_u64().unwrap() as u16;
    for _ in 0..12 {
        let mut r = mysql(rh, rp, "admin", &pw).await.unwrap();
        let port: Option<i64> = r.query_first("SELECT @@port").await.unwrap();
        assert_ne!(
            port,
            Some(a_port),
            "the reader endpoint reached A, which is in maintenance"
        );
    }
    let (status, _) = app
        .post(&format!("/v1/clusters/{id}/switchover"), json!({"target_node_id": a}))
        .await;
    assert_eq!(status, 409);
    run_op(
        &app,
        &format!("{}/maintenance", node_path(&c3, &a)),
        json!({"enabled": false}),
    )
    .await;

    // Read-only: refused on the primary in automatic mode and for replicas.
    let (status, body) = app
        .post(
            &format!("{}/read-only", node_path(&c3, &first_id)),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("manual"), "{body}");
    let (status, _) = app
        .post(&format!("{}/read-only", node_path(&c3, &a)), json!({"enabled": false}))
        .await;
    assert_eq!(status, 409);
    let (status, body) = app
        .post(
            &format!("{}/maintenance", node_path(&c3, &a)),
            json!({"enabled": "yes"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Reboot a replica: a new process, replicating again.
    let a_pid = pid_of(&app, &a);
    run_op(&app, &format!("{}/reboot", node_path(&c3, &a)), json!({})).await;
    assert_ne!(pid_of(&app, &a), a_pid);
    wait_all_active(&app, &id).await;

    // Reboot the primary: a switchover first, then the restart.
    let op = run_op(&app, &format!("{}/reboot", node_path(&c3, &first_id)), json!({})).await;
    let steps = step_names(&op);
    assert_eq!(steps[0], "switchover:check", "{steps:?}");
    assert_eq!(steps.last().unwrap(), "finish");
    let c4 = wait_all_active(&app, &id).await;
    assert_ne!(primary(&c4)["id"], first_id.as_str());

    // Remove the current primary: switched over first, then removed.
    let p = primary(&c4)["id"].as_str().unwrap().to_string();
    let (status, resp) = app.delete(&node_path(&c4, &p)).await;
    assert_eq!(status, 202, "{resp}");
    let op = app.wait_op(resp["operation"]["id"].as_str().unwrap(), OP_TIMEOUT).await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    assert!(step_names(&op).starts_with(&["switchover:check".to_string()]));
    assert!(!app.data_dir().join("nodes").join(&p).exists());
    let c5 = wait_all_active(&app, &id).await;
    assert_eq!(c5["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(c5["node_count"], 2, "{c5}");
    assert_eq!(app.get(&node_path(&c5, &p)).await.0, 404);

    // Remove a replica, then the last node is refused.
    let r = replicas(&c5)[0]["id"].as_str().unwrap().to_string();
    let (status, resp) = app.delete(&node_path(&c5, &r)).await;
    assert_eq!(status, 202, "{resp}");
    let op = app.wait_op(resp["operation"]["id"].as_str().unwrap(), OP_TIMEOUT).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(step_names(&op), ["drain", "stop_node", "delete_node", "finish"]);
    let c6 = wait_all_active(&app, &id).await;
    let last = primary(&c6);
    let (status, body) = app.delete(&node_path(&c6, last["id"].as_str().unwrap())).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delete the cluster")
    );
    // Alone again, the primary no longer waits for acknowledgements.
    let last_port = last["port"].as_u64().unwrap() as u16;
    assert_eq!(global(last_port, &pw, "rpl_semi_sync_master_enabled").await, 0);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked = load.stop().await;
    assert_no_lost_writes(&c6, &pw, &acked).await;
    assert!(app.mariadbd_pids().len() == 1, "{:?}", app.mariadbd_pids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_is_held_read_only_in_manual_mode() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "ro", 1).await;
    let id = c["id"].as_str().unwrap().to_string();
    let p = primary(&c);
    let p_id = p["id"].as_str().unwrap();
    let port = p["port"].as_u64().unwrap() as u16;
    let (status, _) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"failover": {"mode": "manual"}})),
            Some(&app.token),
        )
        .await;
    assert_eq!(status, 200);
    run_op(
        &app,
        &format!("{}/read-only", node_path(&c, p_id)),
        json!({"enabled": true}),
    )
    .await;
    // The monitor leaves it read-only, and the node counts as healthy.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(global(port, &pw, "read_only").await, 1);
    let (wh, wp) = writer(&c);
    let mut conn = mysql(&wh, wp, "admin", &pw).await.unwrap();
    let err = conn.query_drop("INSERT INTO app.t VALUES (1)").await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    drop(conn);
    assert_eq!(cluster(&app, &id).await["status"], "active");
    run_op(
        &app,
        &format!("{}/read-only", node_path(&c, p_id)),
        json!({"enabled": false}),
    )
    .await;
    let mut conn = mysql(&wh, wp, "admin", &pw).await.unwrap();
    conn.query_drop("INSERT INTO app.t VALUES (2)").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_resized_rolling_with_one_switchover_and_limits_follow() {
    let app = TestApp::start_configured("kernel", "[capacity]\nhost_memory_gib = 8.0\n").await;
    let (c, pw) = setup(&app, "rs", 3).await;
    let id = c["id"].as_str().unwrap().to_string();
    let (wh, wp) = writer(&c);
    let old_primary = primary(&c)["id"].as_str().unwrap().to_string();
    let load = WriteLoad::start(&wh, wp, &pw);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, resp) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"size_id": "small"})),
            Some(&app.token),
        )
        .await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp["cluster"]["status"], "updating");
    let op = app.wait_op(resp["operation"]["id"].as_str().unwrap(), OP_TIMEOUT).await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    // One step per node: the replicas, a switchover, then the old primary.
    let steps = step_names(&op);
    let reps: Vec<String> = replicas(&c)
        .iter()
        .map(|r| format!("resize:{}", r["id"].as_str().unwrap()))
        .collect();
    assert!(reps.contains(&steps[0]) && reps.contains(&steps[1]), "{steps:?}");
    assert_eq!(steps[2], "switchover:check", "{steps:?}");
    assert_eq!(steps[steps.len() - 2], format!("resize:{old_primary}"), "{steps:?}");
    assert_eq!(steps.last().unwrap(), "finish");
    let c2 = wait_all_active(&app, &id).await;
    assert_eq!(c2["size_id"], "small");
    assert_ne!(primary(&c2)["id"], old_primary.as_str());
    let small_pool = 1024 * 1024 * 1024;
    for n in c2["nodes"].as_array().unwrap() {
        assert_eq!(n["size_id"], "small", "{n}");
        let port = n["port"].as_u64().unwrap() as u16;
        assert_eq!(global(port, &pw, "innodb_buffer_pool_size").await, small_pool, "{n}");
        assert_eq!(global(port, &pw, "max_connections").await, 300, "{n}");
        // The runtime's limits follow (this host has cgroup v1 controllers).
        let node_id = n["id"].as_str().unwrap();
        if std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            let read = |ctl: &str, file: &str| {
                let p = format!("/sys/fs/cgroup/{ctl}/{}/{node_id}/{file}", app.nft_table);
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
            };
            assert_eq!(read("memory", "memory.limit_in_bytes").trim(), (2u64 << 30).to_string());
            assert_eq!(read("cpu", "cpu.cfs_quota_us").trim(), "200000");
            let pid = pid_of(&app, node_id).to_string();
            assert!(
                read("memory", "cgroup.procs").lines().any(|l| l == pid),
                "{node_id} not in its group"
            );
        }
    }

    // One replica back to xsmall: just that node.
    let r = replicas(&c2)[0]["id"].as_str().unwrap().to_string();
    let (status, resp) = app
        .request(
            reqwest::Method::PATCH,
            &node_path(&c2, &r),
            Some(json!({"size_id": "xsmall"})),
            Some(&app.token),
        )
        .await;
    assert_eq!(status, 202, "{resp}");
    let op = app.wait_op(resp["operation"]["id"].as_str().unwrap(), OP_TIMEOUT).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(step_names(&op), [format!("resize:{r}"), "finish".to_string()]);
    assert_eq!(node_view(&app, &c2, &r).await["size_id"], "xsmall");

    // What the host cannot hold is refused before anything changes; so are
    // unknown sizes and no-op resizes.
    for (body, want, code) in [
        (json!({"size_id": "large"}), 409, "capacity_exceeded"),
        (json!({"size_id": "huge"}), 400, "invalid_request"),
    ] {
        let (status, resp) = app
            .request(
                reqwest::Method::PATCH,
                &format!("/v1/clusters/{id}"),
                Some(body),
                Some(&app.token),
            )
            .await;
        assert_eq!(status, want, "{resp}");
        assert_eq!(resp["error"]["code"], code, "{resp}");
    }
    let (status, _) = app
        .request(
            reqwest::Method::PATCH,
            &node_path(&c2, &r),
            Some(json!({"size_id": "xsmall"})),
            Some(&app.token),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(cluster(&app, &id).await["size_id"], "small");

    // A rolling reboot: every process replaced, replicas first, one switchover.
    let c3 = wait_all_active(&app, &id).await;
    let pids: Vec<(String, i32)> = c3["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let nid = n["id"].as_str().unwrap().to_string();
            let pid = pid_of(&app, &nid);
            (nid, pid)
        })
        .collect();
    let p3 = primary(&c3)["id"].as_str().unwrap().to_string();
    let op = run_op(&app, &format!("/v1/clusters/{id}/reboot"), json!({})).await;
    let steps = step_names(&op);
    assert!(
        steps[0].starts_with("reboot:") && steps[1].starts_with("reboot:"),
        "{steps:?}"
    );
    assert_eq!(steps[2], "switchover:check", "{steps:?}");
    assert_eq!(steps[steps.len() - 2], format!("reboot:{p3}"), "{steps:?}");
    for (nid, pid) in &pids {
        assert_ne!(pid_of(&app, nid), *pid, "{nid} was not restarted");
    }
    wait_all_active(&app, &id).await;

    // A forced reboot restarts the primary in place: no switchover.
    let c4 = wait_all_active(&app, &id).await;
    let p4 = primary(&c4)["id"].as_str().unwrap().to_string();
    let p4_pid = pid_of(&app, &p4);
    let op = run_op(&app, &format!("{}/reboot", node_path(&c4, &p4)), json!({"force": true})).await;
    assert_eq!(step_names(&op), ["restart", "finish"]);
    assert_ne!(pid_of(&app, &p4), p4_pid);
    let c5 = wait_all_active(&app, &id).await;
    assert_eq!(primary(&c5)["id"], p4.as_str());

    let stopped = Instant::now();
    let acked = load.stop().await;
    assert_no_lost_writes(&cluster(&app, &id).await, &pw, &acked).await;
    let pause = longest_pause(&acked, stopped);
    assert!(pause < Duration::from_secs(5), "writes paused {pause:?}");
}
