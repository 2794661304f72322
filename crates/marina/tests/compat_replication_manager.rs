//! replication-manager's health checks and cluster status (seed `003_…`)
//! against a real cluster: the seed's exact status codes and texts, by node
//! id, `host:port` and the host/port path form, following a switchover;
//! public without a token only when `public_health_checks` is on.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

async fn text(app: &TestApp, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", app.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_answer_as_replication_manager_does() {
    let app = TestApp::start_configured("kernel", "public_health_checks = true").await;
    let (c, _) = app.create_cluster("db", 2).await;
    let id = c["id"].as_str().unwrap().to_string();
    let p = primary(&c);
    let r = replicas(&c)[0].clone();
    let (pid, rid) = (p["id"].as_str().unwrap(), r["id"].as_str().unwrap());
    let (pport, rport) = (p["port"].as_u64().unwrap(), r["port"].as_u64().unwrap());
    let master = |server: &str| format!("/clusters/db/servers/{server}/master-status");
    let slave = |server: &str| format!("/clusters/db/servers/{server}/slave-status");

    eventually(Duration::from_secs(10), "checks answer", || async {
        (text(&app, &master(pid), None).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(text(&app, &master(pid), None).await, (200, "200 -Valid Master!".into()));
    assert_eq!(
        text(&app, &master(rid), None).await,
        (503, "503 -Not a Valid Master!".into())
    );
    eventually(Duration::from_secs(10), "replica check", || async {
        (text(&app, &slave(rid), None).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(text(&app, &slave(rid), None).await, (200, "200 -Valid Slave!".into()));
    assert_eq!(
        text(&app, &slave(pid), None).await,
        (503, "503 -Not a Valid Slave!".into())
    );
    // host:port, the host/port path form, is-master / is-slave, and the id.
    assert_eq!(text(&app, &master(&format!("127.0.0.1:{pport}")), None).await.0, 200);
    let by_port = format!("/clusters/db/servers/127.0.0.1/{rport}/is-slave");
    assert_eq!(text(&app, &by_port, None).await, (200, "200 -Valid Slave!".into()));
    let by_port = format!("/clusters/{id}/servers/127.0.0.1/{pport}/is-master");
    assert_eq!(text(&app, &by_port, None).await, (200, "200 -Valid Master!".into()));
    // Unknown clusters and servers.
    assert_eq!(
        text(&app, "/clusters/nope/servers/x/master-status", None).await,
        (500, "No cluster!".into())
    );
    assert_eq!(
        text(&app, &master("nd_unknown"), None).await,
        (500, "No cluster!".into())
    );

    // Cluster status.
    let (s, body) = text(&app, "/api/clusters/db/status", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"alive": "running"})
    );
    assert_eq!(
        text(&app, "/api/clusters/nope/status", None).await,
        (400, "No cluster found : nope".into())
    );

    // The checks follow a switchover.
    let (s, op) = app.post(&format!("/v1/clusters/{id}/switchover"), json!({})).await;
    assert_eq!(s, 202, "{op}");
    let op = app
        .wait_op(op["operation"]["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(op["status"], "succeeded");
    eventually(Duration::from_secs(10), "new master", || async {
        (text(&app, &master(rid), None).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(text(&app, &master(pid), None).await.0, 503);

    // A token still works, and is required when checks are not public.
    assert_eq!(text(&app, &master(rid), Some(&app.token)).await.0, 200);
    let private = TestApp::start().await;
    let (s, _) = text(&private, "/clusters/db/servers/x/master-status", None).await;
    assert_eq!(s, 401);
}

/// A real HAProxy whose writer backend lists both nodes and checks them with
/// replication-manager's `master-status` (one URL per server through
/// `%[srv_name]`): clients through it reach the primary, and the new one
/// after a failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_follows_a_failover_through_master_status() {
    use mysql_async::prelude::Queryable;
    let app = TestApp::start_configured("kernel", "public_health_checks = true").await;
    let (c, pw) = app.create_cluster("db", 2).await;
    let api_port = app.url.rsplit(':').next().unwrap().trim_end_matches('/').to_string();
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front = listen.local_addr().unwrap().port();
    drop(listen);
    let servers: String = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "  server {} 127.0.0.1:{} check port {api_port} addr 127.0.0.1 inter 200 fall 1 rise 1\n",
                n["id"].as_str().unwrap(),
                n["port"]
            )
        })
        .collect();
    let cfg = app.data_dir().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n\
             backend writer\n  option httpchk\n  \
             http-check send meth GET uri-lf /clusters/db/servers/%[srv_name]/master-status\n  \
             http-check expect status 200\n{servers}\
             frontend mysql\n  bind 127.0.0.1:{front}\n  default_backend writer\n"
        ),
    )
    .unwrap();
    let mut haproxy = tokio::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy (scripts/install-deps.sh --test installs it)");
    let through_haproxy = || {
        let pw = pw.clone();
        async move {
            let mut conn = mysql("127.0.0.1", front, "admin", &pw).await.ok()?;
            let port: Option<i64> = conn.query_first("SELECT @@port").await.ok()?;
            let ro: Option<i64> = conn.query_first("SELECT @@read_only").await.ok()?;
            (ro == Some(0)).then_some(port?)
        }
    };
    let old = primary(&c);
    let first = eventually(Duration::from_secs(15), "haproxy reaches the primary", through_haproxy).await;
    assert_eq!(first, old["port"].as_i64().unwrap());

    // Kill the primary: Marina fails over, HAProxy's checks follow.
    let pid = pid_of(&app, old["id"].as_str().unwrap());
    // SAFETY: kill(2) on a mariadbd this test's Marina started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let new_port = eventually(Duration::from_secs(30), "haproxy reaches the new primary", || async {
        through_haproxy().await.filter(|p| *p != first)
    })
    .await;
    let now = cluster(&app, c["id"].as_str().unwrap()).await;
    assert_eq!(new_port, primary(&now)["port"].as_i64().unwrap());
    haproxy.kill().await.ok();
}

/// GET with a bearer through curl (replication-manager's clients send their
/// actions as GET).
async fn rm(app: &TestApp, token: &str, path: &str) -> (u16, serde_json::Value) {
    curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{}{path}", app.url),
    ])
    .await
}

async fn op_done(app: &TestApp, op: &serde_json::Value) -> serde_json::Value {
    let done = app
        .wait_op(op["id"].as_str().expect("an operation"), Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_api_reads_the_cluster_and_runs_its_actions() {
    let app = TestApp::start().await;
    let (c, _) = app.create_cluster("db", 2).await;
    let id = c["id"].as_str().unwrap().to_string();
    wait_all_active(&app, &id).await;
    let (_, tok) = app
        .post("/v1/tokens", json!({"name": "repman", "scopes": ["write"]}))
        .await;
    // replication-manager's login: user and password → bearer.
    let login = json!({"username": tok["token"]["id"], "password": tok["secret"]}).to_string();
    let (s, t) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &login,
        &format!("{}/api/login", app.url),
    ])
    .await;
    assert_eq!(s, 200, "{t}");
    let token = t["token"].as_str().unwrap().to_string();
    let bad = json!({"username": "tok_someone", "password": tok["secret"]}).to_string();
    let (s, _) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &bad,
        &format!("{}/api/login", app.url),
    ])
    .await;
    assert_eq!(s, 401);

    // Monitor, cluster, settings.
    let (s, m) = rm(&app, &token, "/api/monitor").await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["clusters"], json!(["db"]));
    assert_eq!(m["backupPhysicalList"]["mariabackup"], true);
    assert_eq!(m["Confs"]["db"]["failover-mode"], "automatic");
    let cluster = eventually(Duration::from_secs(20), "all up", || async {
        let (s, v) = rm(&app, &token, "/api/clusters/db").await;
        assert_eq!(s, 200, "{v}");
        (v["isAllDbUp"] == true && v["SlavesConnected"] == 1).then_some(v)
    })
    .await;
    assert_eq!(cluster["name"], "db");
    assert_eq!(cluster["topology"], "master-slave");
    assert_eq!(cluster["isDown"], false);
    assert_eq!(cluster["isFailable"], true);
    assert_eq!(cluster["failoverCounter"], 0);
    assert_eq!(cluster["dbServers"].as_array().unwrap().len(), 2);
    assert_eq!(cluster["stateMachine"]["discovered"], true);
    assert!(cluster["log"]["len"].as_u64().unwrap() > 0, "{}", cluster["log"]);
    let (s, settings) = rm(&app, &token, "/api/clusters/db/settings").await;
    assert_eq!((s, &settings["failover-mode"]), (200, &json!("automatic")));

    // Topology.
    let p = primary(&c);
    let r = replicas(&c)[0].clone();
    let p_url = format!("{}:{}", p["host"].as_str().unwrap(), p["port"]);
    let r_url = format!("{}:{}", r["host"].as_str().unwrap(), r["port"]);
    let (_, servers) = rm(&app, &token, "/api/clusters/db/topology/servers").await;
    let states: Vec<(&str, &str)> = servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["url"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&(p_url.as_str(), "Master")) && states.contains(&(r_url.as_str(), "Slave")),
        "{servers}"
    );
    let (_, master) = rm(&app, &token, "/api/clusters/db/topology/master").await;
    assert_eq!(master["url"], p_url.as_str());
    assert_eq!(master["readOnly"], "OFF");
    let (_, slaves) = rm(&app, &token, "/api/clusters/db/topology/slaves").await;
    assert_eq!(slaves[0]["url"], r_url.as_str());
    assert_eq!(slaves[0]["ioThread"], "Yes");
    let (_, logs) = rm(&app, &token, "/api/clusters/db/topology/logs").await;
    assert!(logs.as_array().unwrap().iter().any(|l| l["level"] == "INFO"), "{logs}");
    let (_, alerts) = rm(&app, &token, "/api/clusters/db/topology/alerts").await;
    assert_eq!(alerts["errors"], json!([]), "{alerts}");

    // A server's live views (by host:port and by id).
    let (s, vars) = rm(&app, &token, &format!("/api/clusters/db/servers/{p_url}/variables")).await;
    assert_eq!(s, 200);
    assert!(vars.as_array().unwrap().iter().any(|v| {
        v["variableName"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("server_id"))
    }));
    let (s, status) = rm(
        &app,
        &token,
        &format!("/api/clusters/db/servers/{}/status", p["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, 200);
    assert!(status.as_array().unwrap().iter().any(|v| {
        v["variableName"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("uptime"))
    }));
    let (s, procs) = rm(&app, &token, &format!("/api/clusters/db/servers/{p_url}/processlist")).await;
    assert_eq!(s, 200);
    assert!(
        procs.as_array().unwrap().iter().all(|p| p.get("id").is_some()),
        "{procs}"
    );

    // Server actions on the replica: maintenance toggles, read-only is
    // refused on a replica (always read-only), stop/start, backups, reseed.
    let action = |a: &str| format!("/api/clusters/db/servers/{r_url}/actions/{a}");
    let (s, op) = rm(&app, &token, &action("maintenance")).await;
    assert_eq!(s, 200, "{op}");
    op_done(&app, &op).await;
    let (_, slaves) = rm(&app, &token, "/api/clusters/db/topology/slaves").await;
    assert_eq!(slaves[0]["state"], "Maintenance");
    let (s, op) = rm(&app, &token, &action("maintenance")).await;
    assert_eq!(s, 200, "{op}");
    op_done(&app, &op).await;
    let (s, refused) = rm(&app, &token, &action("toogle-read-only")).await;
    assert_eq!(s, 409, "{refused}");
    assert!(refused.as_str().unwrap().contains("always read-only"), "{refused}");
    let (s, op) = rm(&app, &token, &action("stop")).await;
    assert_eq!(s, 200, "{op}");
    op_done(&app, &op).await;
    let (_, slaves) = rm(&app, &token, "/api/clusters/db/topology/slaves").await;
    assert_eq!(slaves[0]["state"], "Failed");
    let (s, op) = rm(&app, &token, &action("start")).await;
    assert_eq!(s, 200, "{op}");
    op_done(&app, &op).await;
    let (s, op) = rm(&app, &token, &action("backup-logical")).await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op_done(&app, &op).await["type"], "backup");
    let (_, cl) = rm(&app, &token, "/api/clusters/db").await;
    assert_eq!(cl["isValidBackup"], true);
    let (s, op) = rm(&app, &token, &action("reseed/physicalmaster")).await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op_done(&app, &op).await["type"], "reseed_node");
    let (s, e) = rm(&app, &token, &action("reseed/snapshot")).await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = rm(&app, &token, &action("optimize")).await;
    assert_eq!(s, 400, "{e}");

    // Replication bootstrap: master-slave is what Marina runs.
    wait_all_active(&app, &id).await;
    let (s, b) = rm(
        &app,
        &token,
        "/api/clusters/db/actions/replication/bootstrap/master-slave",
    )
    .await;
    assert_eq!((s, &b["topology"]), (200, &json!("master-slave")), "{b}");
    let (s, b) = rm(
        &app,
        &token,
        "/api/clusters/db/actions/replication/bootstrap/multi-master",
    )
    .await;
    assert_eq!(s, 400);
    assert!(b.as_str().unwrap().contains("not supported"), "{b}");

    // Switchover, then failover: the masters change, natively visible.
    let (s, op) = rm(&app, &token, "/api/clusters/db/actions/switchover").await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op_done(&app, &op).await["type"], "switchover");
    let (_, master) = rm(&app, &token, "/api/clusters/db/topology/master").await;
    assert_eq!(master["url"], r_url.as_str(), "{master}");
    wait_all_active(&app, &id).await;
    let (s, op) = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{}/api/clusters/db/actions/failover", app.url),
    ])
    .await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op_done(&app, &op).await["type"], "failover");
    let (_, cl) = rm(&app, &token, "/api/clusters/db").await;
    assert_eq!(cl["failoverCounter"], 1);
    let (_, native) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(
        primary(&native)["host"]
            .as_str()
            .map(|h| format!("{h}:{}", primary(&native)["port"])),
        Some(p_url.clone())
    );

    // Refusals in replication-manager's texts.
    let (_, ro) = app
        .post("/v1/tokens", json!({"name": "rm-ro", "scopes": ["read"]}))
        .await;
    let ro = ro["secret"].as_str().unwrap();
    assert_eq!(
        rm(&app, ro, "/api/clusters/db/actions/switchover").await,
        (403, json!("No valid ACL"))
    );
    assert_eq!(rm(&app, ro, &action("stop")).await, (403, json!("No valid ACL")));
    assert_eq!(rm(&app, &token, "/api/clusters/nope").await, (500, json!("No Cluster")));
    let (s, _) = curl(&[&format!("{}/api/clusters/db", app.url)]).await;
    assert_eq!(s, 401);
}
