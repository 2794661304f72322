//! Backups and restores (issue #5): physical and logical backups taken from a
//! replica into the local blob store with checksum and manifest, restored into
//! new clusters (never over a running one) with exactly the data at backup
//! time, a corrupt backup refused before anything is built, a crash in the
//! middle of a backup leaving nothing that looks complete, and backups
//! outliving their cluster.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

async fn rows(host: &str, port: u16, password: &str) -> Option<i64> {
    let mut c = mysql(host, port, "admin", password).await.ok()?;
    c.query_first("SELECT COUNT(*) FROM shop.orders").await.ok()?
}

/// Creates `shop.orders` with `n` rows through the writer and waits until
/// every replica has them.
async fn seed(app: &TestApp, c: &Value, password: &str, from: i64, to: i64) {
    let writer = c["endpoints"]["writer"]["host"].as_str().unwrap();
    let mut conn = mysql(writer, 3306, "admin", password).await.unwrap();
    conn.query_drop("CREATE DATABASE IF NOT EXISTS shop").await.unwrap();
    conn.query_drop("CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, note VARCHAR(40))")
        .await
        .unwrap();
    for i in from..=to {
        conn.exec_drop("INSERT INTO shop.orders VALUES (?, ?)", (i, format!("order {i}")))
            .await
            .unwrap();
    }
    let (_, cluster) = app.get(&format!("/v1/clusters/{}", c["id"].as_str().unwrap())).await;
    for n in cluster["nodes"].as_array().unwrap() {
        let port = n["port"].as_u64().unwrap() as u16;
        eventually(Duration::from_secs(10), "replica caught up", || async {
            (rows("127.0.0.1", port, password).await == Some(to)).then_some(())
        })
        .await;
    }
}

async fn restore(app: &TestApp, name: &str, nodes: u32, backup_id: &str) -> (Value, Value, String) {
    let (s, body) = app
        .post(
            "/v1/clusters",
            json!({"name": name, "size_id": "xsmall", "nodes": nodes, "restore": {"backup_id": backup_id}}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["cluster"]["restore"]["backup_id"], backup_id);
    assert_eq!(body["operation"]["type"], "restore_cluster");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    let (_, c) = app
        .get(&format!("/v1/clusters/{}", body["cluster"]["id"].as_str().unwrap()))
        .await;
    (op, c, body["credentials"]["password"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_restore_into_new_clusters_with_the_data_of_their_time() {
    let app = TestApp::start_with("userspace").await;
    let (src, password) = app.create_cluster("source", 2).await;
    let src_id = src["id"].as_str().unwrap().to_string();
    seed(&app, &src, &password, 1, 100).await;
    let replica_id = src["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "replica")
        .unwrap()["id"]
        .clone();

    let physical = take_backup(&app, &src_id, json!({})).await;
    assert_eq!(physical["status"], "completed", "{physical}");
    assert_eq!(physical["method"], "physical");
    assert_eq!(physical["source_node_id"], replica_id, "taken from the replica");
    assert!(physical["size_bytes"].as_u64().unwrap() > 0);
    assert!(physical["checksum"].as_str().unwrap().starts_with("sha256:"));
    assert!(!physical["gtid_position"].as_str().unwrap().is_empty(), "{physical}");
    assert!(physical["finished_at"].as_str().is_some());
    let logical = take_backup(&app, &src_id, json!({"method": "logical"})).await;
    assert_eq!(logical["status"], "completed", "{logical}");
    assert_eq!(logical["method"], "logical");
    assert_eq!(
        logical["gtid_position"], physical["gtid_position"],
        "no write in between"
    );
    let (_, list) = app.get(&format!("/v1/clusters/{src_id}/backups")).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [logical["id"].as_str().unwrap(), physical["id"].as_str().unwrap()],
        "newest first"
    );

    // The store holds the object and a manifest that describes it.
    let (_, tenant) = app.get("/v1/tenants/current").await;
    let dir = app
        .data_dir()
        .join("backups")
        .join(tenant["id"].as_str().unwrap())
        .join(&src_id)
        .join(physical["id"].as_str().unwrap());
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["checksum"], physical["checksum"]);
    assert_eq!(manifest["gtid_position"], physical["gtid_position"]);
    assert_eq!(manifest["format"], "mbstream+zstd");
    assert_eq!(
        std::fs::metadata(dir.join("data.mbstream.zst")).unwrap().len(),
        physical["size_bytes"].as_u64().unwrap()
    );

    // Writes after the backups are not in the restores.
    seed(&app, &src, &password, 101, 110).await;
    let (op, phys, pw) = restore(&app, "from-physical", 2, physical["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    assert_eq!(phys["status"], "active");
    let writer = phys["endpoints"]["writer"]["host"].as_str().unwrap().to_string();
    assert_eq!(
        rows(&writer, 3306, &pw).await,
        Some(100),
        "the data of the backup's time"
    );
    assert_eq!(
        rows(&writer, 3306, &password).await,
        None,
        "the new cluster has its own password"
    );
    // It is a normal replicated cluster: a write reaches its replica.
    seed(&app, &phys, &pw, 101, 105).await;
    let (op, logi, pw) = restore(&app, "from-logical", 1, logical["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    let writer = logi["endpoints"]["writer"]["host"].as_str().unwrap().to_string();
    assert_eq!(rows(&writer, 3306, &pw).await, Some(100));
    // The source was never touched.
    let src_writer = src["endpoints"]["writer"]["host"].as_str().unwrap();
    assert_eq!(rows(src_writer, 3306, &password).await, Some(110));

    // A corrupt backup is refused before anything is built.
    let object = dir.join("data.mbstream.zst");
    let mut bytes = std::fs::read(&object).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    let (op, bad, _) = restore(&app, "from-corrupt", 1, physical["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "failed");
    assert_eq!(op["steps"][0]["name"], "verify_backup");
    assert_eq!(op["steps"][0]["status"], "failed");
    assert!(op["error"]["message"].as_str().unwrap().contains("checksum"), "{op}");
    assert_eq!(bad["status"], "failed");

    // Bad requests.
    for (body, status) in [
        (
            json!({"name": "x1", "size_id": "xsmall", "restore": {"backup_id": "bk_nope"}}),
            400,
        ),
        (json!({"name": "x2", "size_id": "xsmall", "restore": {}}), 400),
        (
            json!({"name": "x3", "size_id": "xsmall", "restore": {"cluster_id": src_id, "point_in_time": "2026-01-01T00:00:00Z"}}),
            409,
        ),
    ] {
        let (s, e) = app.post("/v1/clusters", body.clone()).await;
        assert_eq!(s, status, "{body}: {e}");
    }
    let (s, e) = app.get(&format!("/v1/clusters/{src_id}/restore-window")).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("conflict")), "{e}");
    let (s, e) = app
        .post(&format!("/v1/clusters/{src_id}/backups"), json!({"method": "tape"}))
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = app.post("/v1/clusters/cl_nope/backups", json!({})).await;
    assert_eq!(s, 404);

    // Deleting a backup removes its data; backups outlive their cluster.
    let (s, _) = app
        .delete(&format!("/v1/backups/{}", physical["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 204);
    assert!(!dir.exists());
    let (s, _) = app
        .get(&format!("/v1/backups/{}", physical["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 404);
    let done = app.delete_cluster(&src_id).await;
    assert_eq!(done["status"], "succeeded");
    let (s, kept) = app
        .get(&format!("/v1/backups/{}", logical["id"].as_str().unwrap()))
        .await;
    assert_eq!((s, kept["status"].clone()), (200, json!("completed")));
    let (s, _) = app.get(&format!("/v1/clusters/{src_id}/backups")).await;
    assert_eq!(s, 404, "the cluster is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_backup_leaves_nothing_that_looks_complete() {
    let mut app = TestApp::start_with("userspace").await;
    let (src, password) = app.create_cluster("crashy", 1).await;
    let id = src["id"].as_str().unwrap().to_string();
    seed(&app, &src, &password, 1, 20).await;
    app.crash_during(
        "backup:take_backup:written",
        reqwest::Method::POST,
        &format!("/v1/clusters/{id}/backups"),
        Some(json!({})),
    )
    .await;
    // Resumed after the restart: the step starts over and completes.
    let (_, list) = app.get(&format!("/v1/clusters/{id}/backups")).await;
    let b = list["data"][0].clone();
    let op = app
        .wait_op(
            // The backup's operation is the cluster's newest.
            app.get(&format!("/v1/clusters/{id}/operations")).await.1["data"][0]["id"]
                .as_str()
                .unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    let (_, b) = app.get(&format!("/v1/backups/{}", b["id"].as_str().unwrap())).await;
    assert_eq!(b["status"], "completed", "{b}");
    let leftovers: Vec<String> = walk(&app.data_dir().join("backups"))
        .into_iter()
        .filter(|p| p.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        !app.data_dir().join("tmp").join(b["id"].as_str().unwrap()).exists(),
        "no scratch directory left"
    );
    let (op, restored, pw) = restore(&app, "after-crash", 1, b["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let writer = restored["endpoints"]["writer"]["host"].as_str().unwrap().to_string();
    assert_eq!(rows(&writer, 3306, &pw).await, Some(20));

    // The same through the CLI.
    let json_of = |out: std::process::Output| -> Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let taken = json_of(app.cli(&[
        "backup", "create", "crashy", "--method", "logical", "--wait", "-o", "json",
    ]));
    assert_eq!(taken["status"], "completed", "{taken}");
    let listed = json_of(app.cli(&["backup", "list", "crashy", "-o", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let shown = json_of(app.cli(&["backup", "show", taken["id"].as_str().unwrap(), "-o", "json"]));
    assert_eq!(shown["method"], "logical");
    let created = json_of(app.cli(&[
        "cluster",
        "create",
        "from-cli",
        "--size",
        "xsmall",
        "--nodes",
        "1",
        "--from-backup",
        taken["id"].as_str().unwrap(),
        "--wait",
        "-o",
        "json",
    ]));
    assert_eq!(created["cluster"]["status"], "active", "{created}");
    assert_eq!(created["cluster"]["restore"]["backup_id"], taken["id"]);
    let out = app.cli(&["backup", "delete", taken["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (s, _) = app.get(&format!("/v1/backups/{}", taken["id"].as_str().unwrap())).await;
    assert_eq!(s, 404);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_run_survive_restarts_and_are_pruned() {
    let mut app = TestApp::start_with("userspace").await;
    let (c, password) = app.create_cluster("scheduled", 1).await;
    let id = c["id"].as_str().unwrap().to_string();
    seed(&app, &c, &password, 1, 5).await;
    let manual = take_backup(&app, &id, json!({"method": "logical"})).await;
    let policy = json!({"schedule": "*/2 * * * * *", "method": "logical", "retain_count": 2});
    let (s, shown) = app.patch_cluster(&id, json!({"backup_policy": policy})).await;
    assert_eq!(s, 200, "{shown}");
    assert_eq!(shown["backup_policy"]["schedule"], "*/2 * * * * *");
    // Bad policies are refused whole, and change nothing.
    for bad in [
        json!({"schedule": "every day"}),
        json!({"schedule": "* * * * *", "retain_count": 0}),
        json!({"schedule": "* * * * *", "colour": "blue"}),
        json!({"schedule": "* * * * *", "method": "tape"}),
    ] {
        let (s, e) = app
            .patch_cluster(&id, json!({"backup_policy": bad, "failover": {"mode": "manual"}}))
            .await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    let (_, now) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(now["backup_policy"], shown["backup_policy"]);
    assert_eq!(now["failover"]["mode"], "automatic", "a refused patch changes nothing");

    let scheduled = |list: &Value| -> Vec<Value> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["trigger"] == "schedule")
            .cloned()
            .collect()
    };
    // Backups are taken on schedule; retention keeps the newest two.
    eventually(Duration::from_secs(30), "three scheduled backups", || async {
        (requested(&app, &id).await >= 3).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "retention applied", || async {
        let (_, list) = app.get(&format!("/v1/clusters/{id}/backups")).await;
        let s = scheduled(&list);
        let completed = s.iter().filter(|b| b["status"] == "completed").count();
        (completed <= 2 && s.len() <= 3).then_some(())
    })
    .await;
    // The schedule survives a restart of the control plane.
    let before = requested(&app, &id).await;
    app.kill_server();
    app.spawn_server(None);
    eventually(Duration::from_secs(30), "a backup after the restart", || async {
        (requested(&app, &id).await > before).then_some(())
    })
    .await;
    // Manual backups are never pruned; removing the policy stops the schedule.
    let (s, _) = app.patch_cluster(&id, json!({"backup_policy": null})).await;
    assert_eq!(s, 200);
    let (s, kept) = app
        .get(&format!("/v1/backups/{}", manual["id"].as_str().unwrap()))
        .await;
    assert_eq!((s, kept["status"].clone()), (200, json!("completed")));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = requested(&app, &id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        requested(&app, &id).await,
        settled,
        "no backup after the policy is removed"
    );
    let (_, c) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(c["backup_policy"], Value::Null);
}

/// How many scheduled backups the cluster's events say were requested.
async fn requested(app: &TestApp, id: &str) -> usize {
    let (_, ev) = app.get(&format!("/v1/clusters/{id}/events?limit=500")).await;
    ev["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "backup_requested" && e["message"].as_str().unwrap().contains("(schedule)"))
        .count()
}

/// Runs SQL as root over a node's unix socket (the host's root is trusted).
fn as_root(app: &TestApp, node_id: &str, sql: &str) -> String {
    let out = std::process::Command::new("mariadb")
        .arg(format!(
            "--socket={}",
            app.data_dir()
                .join("nodes")
                .join(node_id)
                .join("mariadbd.sock")
                .display()
        ))
        .args(["-uroot", "-N", "-e", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_reseeded_from_the_primary_or_a_backup() {
    let app = TestApp::start_with("userspace").await;
    let (c, password) = app.create_cluster("reseedy", 2).await;
    let id = c["id"].as_str().unwrap().to_string();
    seed(&app, &c, &password, 1, 50).await;
    let node = |role: &str| {
        c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["role"] == role)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (primary, replica) = (node("primary"), node("replica"));
    let reseed = |node: String, body: Value| {
        let app = &app;
        let id = id.clone();
        async move { app.post(&format!("/v1/clusters/{id}/nodes/{node}/reseed"), body).await }
    };
    // Refused: the primary, and a backup that does not exist yet.
    let (s, e) = reseed(primary.clone(), json!({})).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("conflict")), "{e}");
    let (s, e) = reseed(replica.clone(), json!({"from": "backup"})).await;
    assert_eq!(s, 409, "{e}");
    let (s, _) = reseed("nd_nope".into(), json!({})).await;
    assert_eq!(s, 404);

    // The replica picks up a row the cluster never had; a reseed from the
    // primary replaces its data and it replicates again.
    as_root(
        &app,
        &replica,
        "SET GLOBAL read_only = 0; INSERT INTO shop.orders VALUES (999, 'stray'); SET GLOBAL read_only = 1",
    );
    let (s, body) = reseed(replica.clone(), json!({"from": "primary"})).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["operation"]["type"], "reseed_node");
    assert_eq!(body["operation"]["node_id"], replica.as_str());
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    assert_eq!(
        as_root(&app, &replica, "SELECT COUNT(*) FROM shop.orders WHERE id = 999"),
        "0"
    );
    seed(&app, &c, &password, 51, 55).await;

    // From a backup: rows written after it arrive by replication.
    let backup = take_backup(&app, &id, json!({})).await;
    assert_eq!(backup["status"], "completed");
    seed(&app, &c, &password, 56, 60).await;
    let (s, body) = reseed(replica.clone(), json!({"from": "backup"})).await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    eventually(
        Duration::from_secs(20),
        "replica caught up after the backup's GTID",
        || async { (as_root(&app, &replica, "SELECT COUNT(*) FROM shop.orders") == "60").then_some(()) },
    )
    .await;
    seed(&app, &c, &password, 61, 62).await;
    // And through the CLI.
    let out = app.cli(&["node", "reseed", "reseedy", &replica, "--from", "primary", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, cl) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(cl["status"], "active", "{cl}");
    let (_, ev) = app.get(&format!("/v1/clusters/{id}/events?limit=500")).await;
    let reseeded = ev["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "node_reseeded")
        .count();
    assert_eq!(reseeded, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_recovery_across_a_switchover() {
    let app = TestApp::start_configured("userspace", "[backups]\nbinlog_flush_secs = 1\n").await;
    let (c, password) = app.create_cluster("history", 2).await;
    let id = c["id"].as_str().unwrap().to_string();
    archive_binlogs(&app, &id).await;
    let (s, e) = app.get(&format!("/v1/clusters/{id}/restore-window")).await;
    assert_eq!(s, 409, "no backup yet: {e}");
    seed(&app, &c, &password, 1, 20).await;
    let backup = take_backup(&app, &id, json!({})).await;
    assert_eq!(backup["status"], "completed");
    seed(&app, &c, &password, 21, 25).await;
    // The archive follows the primary through a switchover.
    switch_over(&app, &id).await;
    seed(&app, &c, &password, 26, 30).await;
    // T: a whole second (the resolution a restore reaches exactly), with
    // more than a second of quiet on each side.
    let now = time::OffsetDateTime::now_utc();
    let t_at = now.replace_nanosecond(0).unwrap() + time::Duration::seconds(2);
    let t = marina_common::time_fmt::format_rfc3339(t_at);
    tokio::time::sleep((t_at - now).unsigned_abs() + Duration::from_millis(1200)).await;
    seed(&app, &c, &password, 31, 40).await;
    let writer = c["endpoints"]["writer"]["host"].as_str().unwrap();
    let mut conn = mysql(writer, 3306, "admin", &password).await.unwrap();
    conn.query_drop("DROP TABLE shop.orders").await.unwrap();
    drop(conn);
    let window = eventually(Duration::from_secs(20), "the archive passes T", || async {
        let (s, w) = app.get(&format!("/v1/clusters/{id}/restore-window")).await;
        (s == 200 && w["latest"].as_str().unwrap() > t.as_str()).then_some(w)
    })
    .await;
    assert!(window["earliest"].as_str().unwrap() < t.as_str(), "{window}");
    let (s, e) = app
        .post(
            "/v1/clusters",
            json!({"name": "too-early", "size_id": "xsmall", "restore": {"cluster_id": id, "point_in_time": "2020-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, body) = app
        .post(
            "/v1/clusters",
            json!({"name": "as-of-t", "size_id": "xsmall", "nodes": 2, "restore": {"cluster_id": id, "point_in_time": t}}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["cluster"]["restore"]["backup_id"], backup["id"]);
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    let pw = body["credentials"]["password"].as_str().unwrap();
    let (_, restored) = app
        .get(&format!("/v1/clusters/{}", body["cluster"]["id"].as_str().unwrap()))
        .await;
    let rw = restored["endpoints"]["writer"]["host"].as_str().unwrap();
    let mut conn = mysql(rw, 3306, "admin", pw).await.unwrap();
    let ids: Vec<i64> = conn.query("SELECT id FROM shop.orders ORDER BY id").await.unwrap();
    assert_eq!(ids, (1..=30).collect::<Vec<i64>>(), "exactly the rows written before T");
    // Its replica has them too.
    for n in restored["nodes"].as_array().unwrap() {
        let port = n["port"].as_u64().unwrap() as u16;
        eventually(Duration::from_secs(10), "replica has the replayed rows", || async {
            (rows("127.0.0.1", port, pw).await == Some(30)).then_some(())
        })
        .await;
    }
    // Archived binlogs older than the oldest kept backup are pruned.
    let (_, tenant) = app.get("/v1/tenants/current").await;
    let archive = app
        .data_dir()
        .join("backups")
        .join(tenant["id"].as_str().unwrap())
        .join(&id)
        .join("binlogs");
    let before: std::collections::HashSet<String> =
        eventually(Duration::from_secs(10), "three archived files", || async {
            let files = walk(&archive);
            (files.len() >= 3).then(|| files.into_iter().collect())
        })
        .await;
    let (s, _) = app
        .delete(&format!("/v1/backups/{}", backup["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 204);
    let newer = take_backup(&app, &id, json!({"method": "logical"})).await;
    assert_eq!(newer["status"], "completed");
    // Files that were there before the newer backup go (the archiver keeps
    // adding new ones meanwhile, so counting would race it).
    eventually(Duration::from_secs(20), "old binlogs pruned", || async {
        let now: std::collections::HashSet<String> = walk(&archive).into_iter().collect();
        (before.iter().any(|f| !now.contains(f))).then_some(())
    })
    .await;
    // The window now starts at the newer backup.
    let w = eventually(Duration::from_secs(10), "window after the newer backup", || async {
        let (s, w) = app.get(&format!("/v1/clusters/{id}/restore-window")).await;
        (s == 200).then_some(w)
    })
    .await;
    assert!(
        w["earliest"].as_str().unwrap() >= newer["finished_at"].as_str().unwrap(),
        "{w}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_to_an_s3_compatible_store() {
    let s3 = S3Server::start("marina-backups").await;
    let app = TestApp::start_configured(
        "userspace",
        &format!(
            "[backups.s3]\nbucket = \"marina-backups\"\nendpoint = \"{}\"\nprefix = \"site-a\"\naccess_key_id = \"test\"\nsecret_access_key = \"test-secret-key\"\n",
            s3.endpoint
        ),
    )
    .await;
    let (c, password) = app.create_cluster("clouded", 1).await;
    let id = c["id"].as_str().unwrap().to_string();
    seed(&app, &c, &password, 1, 12).await;
    let b = take_backup(&app, &id, json!({})).await;
    assert_eq!(b["status"], "completed", "{b}");
    let keys = s3.keys("marina-backups").await;
    let bid = b["id"].as_str().unwrap();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("site-a/") && k.ends_with(&format!("{bid}/manifest.json"))),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.ends_with(&format!("{bid}/data.mbstream.zst"))),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.ends_with(".partial")), "{keys:?}");
    assert!(!app.data_dir().join("backups").exists(), "nothing stored locally");
    assert!(!app.log().contains("test-secret-key"), "the S3 secret is never logged");
    let (op, restored, pw) = restore(&app, "from-s3", 1, bid).await;
    assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
    let writer = restored["endpoints"]["writer"]["host"].as_str().unwrap().to_string();
    assert_eq!(rows(&writer, 3306, &pw).await, Some(12));
    let (s, _) = app.delete(&format!("/v1/backups/{bid}")).await;
    assert_eq!(s, 204);
    assert!(!s3.keys("marina-backups").await.iter().any(|k| k.contains(bid)));
}
