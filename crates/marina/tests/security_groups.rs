//! Security groups (issue #4): CRUD with validation, attaching to clusters at
//! create and by PATCH, deletion refused while in use, enforcement in both data
//! paths (with refusals counted in `/metrics` and logged with their source), and
//! node ports closed to everyone but Marina and the cluster's own nodes.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_group_crud_validation_and_attachment() {
    let app = TestApp::start().await;
    let (s, sg) = app
        .post(
            "/v1/security-groups",
            json!({"name": "office", "description": "the office"}),
        )
        .await;
    assert_eq!(s, 201, "{sg}");
    assert_eq!(sg["object"], "security_group");
    assert_eq!(sg["rules"], json!([]));
    let sg_id = sg["id"].as_str().unwrap().to_string();
    assert!(sg_id.starts_with("sg_"));
    let (s, e) = app.post("/v1/security-groups", json!({"name": "office"})).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("conflict")));

    // Rules: validated CIDRs (IPv4 and IPv6) and port ranges.
    let rules = format!("/v1/security-groups/{sg_id}/rules");
    let (s, r) = app
        .post(
            &rules,
            json!({"cidr": "127.0.0.2/32", "from_port": 3306, "to_port": 3306}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["object"], "security_group_rule");
    assert_eq!(r["security_group_id"], sg_id.as_str());
    assert!(r["id"].as_str().unwrap().starts_with("sgr_"));
    let (s, r6) = app
        .post(&rules, json!({"cidr": "fd00::/64", "from_port": 1, "to_port": 65535}))
        .await;
    assert_eq!(s, 201, "{r6}");
    for (body, hint) in [
        (
            json!({"cidr": "10.0.0.1/24", "from_port": 3306, "to_port": 3306}),
            "10.0.0.0/24",
        ),
        (
            json!({"cidr": "fd00::1/64", "from_port": 3306, "to_port": 3306}),
            "fd00::/64",
        ),
        (
            json!({"cidr": "banana", "from_port": 3306, "to_port": 3306}),
            "not a network",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": 0, "to_port": 3306}),
            "between 1 and 65535",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": 3306, "to_port": 70000}),
            "between 1 and 65535",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": 4000, "to_port": 3306}),
            "greater",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": -1, "to_port": 3306}),
            "from_port",
        ),
    ] {
        let (s, e) = app.post(&rules, body.clone()).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(hint), "{body}: {e}");
    }
    let (_, got) = app.get(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(got["rules"].as_array().unwrap().len(), 2);
    let (_, list) = app.get("/v1/security-groups").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Attach at create; the cluster shows it; the group cannot be deleted meanwhile.
    let (s, body) = app
        .post(
            "/v1/clusters",
            json!({"name": "guarded", "size_id": "xsmall", "security_group_ids": [sg_id]}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["cluster"]["security_group_ids"], json!([sg_id]));
    let id = body["cluster"]["id"].as_str().unwrap().to_string();
    app.wait_op(
        body["operation"]["id"].as_str().unwrap(),
        std::time::Duration::from_secs(60),
    )
    .await;
    let (s, e) = app.delete(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("conflict")));
    // Detach with PATCH; then it can go.
    let (s, c) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"security_group_ids": []})),
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["security_group_ids"], json!([]));
    let (s, c) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"security_group_ids": ["sg_nope"]})),
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 400, "{c}");
    let rule_id = r["id"].as_str().unwrap();
    let (s, _) = app
        .delete(&format!("/v1/security-groups/{sg_id}/rules/{rule_id}"))
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .delete(&format!("/v1/security-groups/{sg_id}/rules/{rule_id}"))
        .await;
    assert_eq!(s, 404);
    let (s, _) = app.delete(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(s, 204);
    let (s, _) = app.get(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(s, 404);
}

/// Whether a connection from `src` to `host:3306` gets MariaDB's greeting.
async fn greeted_from(src: &str, host: &str) -> bool {
    use tokio::io::AsyncReadExt;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
    let addr: std::net::SocketAddr = format!("{host}:3306").parse().unwrap();
    let Ok(Ok(mut s)) = tokio::time::timeout(std::time::Duration::from_secs(2), sock.connect(addr)).await else {
        return false;
    };
    let mut buf = [0u8; 5];
    matches!(tokio::time::timeout(std::time::Duration::from_secs(2), s.read_exact(&mut buf)).await, Ok(Ok(_)) if buf[4] == 10)
}

async fn rules_are_enforced_at_the_endpoints(mode: &str) {
    let app = TestApp::start_with(mode).await;
    let (_, sg) = app.post("/v1/security-groups", json!({"name": "office"})).await;
    let sg_id = sg["id"].as_str().unwrap().to_string();
    let rules = format!("/v1/security-groups/{sg_id}/rules");
    let (s, _) = app
        .post(
            &rules,
            json!({"cidr": "127.0.0.2/32", "from_port": 3306, "to_port": 3306}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, body) = app
        .post(
            "/v1/clusters",
            json!({"name": "fenced", "size_id": "xsmall", "nodes": 2, "security_group_ids": [sg_id]}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let id = body["cluster"]["id"].as_str().unwrap().to_string();
    let op = app
        .wait_op(
            body["operation"]["id"].as_str().unwrap(),
            std::time::Duration::from_secs(60),
        )
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let (_, c) = app.get(&format!("/v1/clusters/{id}")).await;
    let writer = c["endpoints"]["writer"]["host"].as_str().unwrap().to_string();
    let reader = c["endpoints"]["reader"]["host"].as_str().unwrap().to_string();
    for ep in [&writer, &reader] {
        assert!(
            greeted_from("127.0.0.2", ep).await,
            "{mode}: 127.0.0.2 is allowed on {ep}"
        );
        assert!(
            !greeted_from("127.0.0.3", ep).await,
            "{mode}: 127.0.0.3 is refused on {ep}"
        );
    }
    // Refusals are counted per cluster and endpoint, and logged with the source.
    let series = format!("marina_endpoint_connections_refused_total{{cluster_id=\"{id}\",endpoint=\"writer\"}} ");
    eventually(std::time::Duration::from_secs(5), "refusal counted", || async {
        let text = app.metrics().await;
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))?
            .parse()
            .ok()?;
        (n >= 1).then_some(())
    })
    .await;
    let log = app.log();
    assert!(
        log.lines()
            .any(|l| l.contains("refused by the cluster's security groups") && l.contains("source=127.0.0.3")),
        "{mode}: refusal logged with its source"
    );
    // A new rule takes effect for new connections within a second, no restart.
    let (s, r) = app
        .post(
            &rules,
            json!({"cidr": "127.0.0.3/32", "from_port": 3306, "to_port": 3306}),
        )
        .await;
    assert_eq!(s, 201);
    let added = std::time::Instant::now();
    eventually(std::time::Duration::from_secs(1), "rule applied", || async {
        greeted_from("127.0.0.3", &writer).await.then_some(())
    })
    .await;
    eprintln!("{mode}: rule applied after {:?}", added.elapsed());
    // A rule for another port does not open 3306; removing the rule closes it again.
    let (s, _) = app
        .post(
            &rules,
            json!({"cidr": "127.0.0.4/32", "from_port": 5000, "to_port": 6000}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app.delete(&format!("{rules}/{}", r["id"].as_str().unwrap())).await;
    assert_eq!(s, 204);
    eventually(std::time::Duration::from_secs(1), "rule removed", || async {
        (!greeted_from("127.0.0.3", &writer).await).then_some(())
    })
    .await;
    assert!(!greeted_from("127.0.0.4", &writer).await);
    // Detaching every group leaves loopback only: any 127.x source.
    let (s, _) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"security_group_ids": []})),
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 200);
    eventually(std::time::Duration::from_secs(1), "loopback admitted", || async {
        greeted_from("127.0.0.3", &writer).await.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_enforced_in_the_kernel_data_path() {
    rules_are_enforced_at_the_endpoints("kernel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_enforced_in_the_userspace_data_path() {
    rules_are_enforced_at_the_endpoints("userspace").await;
}

/// Exit status of a TCP connect to `addr` made by a process running as `uid`
/// (`true`: connected within two seconds).
fn connects_as(uid: u32, addr: &str) -> bool {
    let (host, port) = addr.rsplit_once(':').unwrap();
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "timeout",
            "2",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{host}/{port}"),
        ])
        .status()
        .unwrap()
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_admit_only_marina_and_the_clusters_own_nodes() {
    use std::os::unix::fs::MetadataExt;
    let app = TestApp::start_with("kernel").await;
    let (a, _) = app.create_cluster("alpha", 2).await;
    let (b, _) = app.create_cluster("beta", 1).await;
    let uid_of = |c: &serde_json::Value| {
        let node = c["nodes"][0]["id"].as_str().unwrap();
        std::fs::metadata(app.data_dir().join("nodes").join(node))
            .unwrap()
            .uid()
    };
    let (uid_a, uid_b) = (uid_of(&a), uid_of(&b));
    assert!(
        uid_a >= 1_500_000_000 && uid_b >= 1_500_000_000 && uid_a != uid_b,
        "{uid_a} {uid_b}"
    );
    let node_a = format!("{}:{}", a["nodes"][0]["host"].as_str().unwrap(), a["nodes"][0]["port"]);
    let writer_a = format!("{}:3306", a["endpoints"]["writer"]["host"].as_str().unwrap());
    // Another local user and another cluster's nodes cannot reach the node
    // port; the cluster's own nodes (replication) and Marina can.
    assert!(!connects_as(65534, &node_a), "nobody is dropped at the node port");
    assert!(!connects_as(uid_b, &node_a), "another cluster's nodes are dropped");
    assert!(connects_as(uid_a, &node_a), "the cluster's own nodes connect");
    assert!(connects_as(0, &node_a), "Marina (root) connects");
    // The endpoint stays the way in for everyone its security groups admit.
    assert!(connects_as(65534, &writer_a), "the endpoint admits loopback clients");
    // Replication between the cluster's nodes works under the guard.
    let (_, status) = app
        .get(&format!("/v1/clusters/{}/status", a["id"].as_str().unwrap()))
        .await;
    let replica = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "replica")
        .unwrap();
    assert_eq!(replica["probes"]["replication_io"], true, "{status}");
    // Drops are counted for the cluster.
    let series = format!(
        "marina_node_port_packets_dropped_total{{cluster_id=\"{}\"}} ",
        a["id"].as_str().unwrap()
    );
    eventually(std::time::Duration::from_secs(5), "drops counted", || async {
        let text = app.metrics().await;
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))?
            .parse()
            .ok()?;
        (n >= 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_admin_cannot_touch_marinas_accounts() {
    use mysql_async::prelude::Queryable;
    let app = TestApp::start_with("userspace").await;
    let (c, password) = app.create_cluster("owned", 1).await;
    let writer = c["endpoints"]["writer"]["host"].as_str().unwrap();
    let mut conn = mysql(writer, 3306, "admin", &password).await.unwrap();
    // The customer works with data and schemas...
    conn.query_drop("CREATE DATABASE app").await.unwrap();
    conn.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    // ...but cannot manage accounts, Marina's least of all.
    for stmt in [
        "DROP USER 'marina_mgmt'@'127.0.0.1'",
        "ALTER USER 'marina_repl'@'127.0.0.1' IDENTIFIED BY 'taken-over'",
        "SET PASSWORD FOR 'marina_mgmt'@'localhost' = PASSWORD('taken-over')",
        "RENAME USER 'marina_repl'@'127.0.0.1' TO 'x'@'%'",
        "CREATE USER 'intruder'@'%' IDENTIFIED BY 'pw'",
        "GRANT SELECT ON app.* TO 'marina_repl'@'127.0.0.1'",
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'marina_mgmt'@'127.0.0.1'",
        "UPDATE mysql.global_priv SET priv = '{}' WHERE User = 'marina_mgmt'",
        "SET GLOBAL read_only = OFF",
        "STOP SLAVE",
    ] {
        let err = conn.query_drop(stmt).await.expect_err(stmt);
        assert!(
            err.to_string().contains("denied") || err.to_string().contains("privilege"),
            "{stmt}: {err}"
        );
    }
    // It cannot see Marina's management sessions (no PROCESS: their text
    // can carry a password), nor kill one it learns the id of elsewhere.
    let node = c["nodes"][0]["id"].as_str().unwrap();
    let path = format!("/v1/clusters/{}/nodes/{node}/processlist", c["id"].as_str().unwrap());
    let mgmt: u64 = common::eventually(std::time::Duration::from_secs(5), "a management session", || async {
        let (_, pl) = app.get(&path).await;
        pl["data"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["user"] == "marina_mgmt"))
            .and_then(|r| {
                r["id"]
                    .as_u64()
                    .or_else(|| r["id"].as_str().and_then(|i| i.parse().ok()))
            })
    })
    .await;
    let seen: Vec<u64> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'marina_mgmt'")
        .await
        .unwrap();
    assert!(seen.is_empty(), "the customer sees Marina's sessions: {seen:?}");
    let err = conn.query_drop(format!("KILL {mgmt}")).await.expect_err("KILL");
    assert!(
        err.to_string().contains("not owner") || err.to_string().contains("Unknown thread"),
        "{err}"
    );
    let grants: Vec<String> = conn.query("SHOW GRANTS").await.unwrap();
    let all = grants.join("\n");
    assert!(
        !all.contains("SUPER")
            && !all.contains("GRANT OPTION")
            && !all.contains("CREATE USER")
            && !all.contains("PROCESS"),
        "{all}"
    );
    // Marina still manages the node: the cluster reports healthy probes.
    let status_path = format!("/v1/clusters/{}/status", c["id"].as_str().unwrap());
    common::eventually(std::time::Duration::from_secs(10), "a healthy probe", || async {
        let (_, status) = app.get(&status_path).await;
        (status["nodes"][0]["probes"]["reachable"] == true).then_some(())
    })
    .await;
}
