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
