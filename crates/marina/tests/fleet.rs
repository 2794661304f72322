//! A fleet in network namespaces (issue 23, `common::netns`): the control
//! plane, a client and three hosts (zones a, b, c) are namespaces on one bridge
//! (198.51.100.0/24). Agents join the control plane over the network and
//! are heard over mutual TLS; a cluster spreads one node per zone, nodes
//! listen on their host's address, the control plane manages them and
//! replication crosses the network; when every process of the primary's
//! host is killed, a replica on another host is promoted and takes writes
//! with every row (the time from the kill to the first acknowledged write
//! is printed), and the dead host is marked down.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TEMPLATE_CACHE;
use common::netns::Rig;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

const CP: &str = "198.51.100.2:7300";

fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// The control plane's self-signed certificate (the rig's API is HTTPS).
fn cert_path(data: &Path) -> std::path::PathBuf {
    data.join("tls").join("marina.crt")
}

/// One API call from the client's namespace.
fn api(rig: &Rig, data: &Path, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let (token, url) = (token.to_string(), format!("https://{CP}{path}"));
    let cert = cert_path(data);
    rig.in_ns("client", move || async move {
        let http = marina_cli::client::http_builder_trusting(Some(&cert))
            .unwrap()
            .build()
            .unwrap();
        let mut req = http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.timeout(Duration::from_secs(10)).send().await {
            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
            Err(e) => (0, Value::String(e.to_string())),
        }
    })
}

/// A MariaDB connection as the cluster's admin.
async fn connect(at: (String, u16), pw: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(at.0)
        .tcp_port(at.1)
        .user(Some("admin"))
        .pass(Some(pw.to_string()));
    tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts))
        .await
        .unwrap_or_else(|_| Err(mysql_async::Error::Other("connect timed out".into())))
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn host_status(rig: &Rig, data: &Path, token: &str, address: &str) -> Option<String> {
    let (_, list) = api(rig, data, token, reqwest::Method::GET, "/v1/hosts", None);
    list["data"]
        .as_array()?
        .iter()
        .find(|h| h["address"] == address)
        .and_then(|h| h["status"].as_str().map(String::from))
}

/// A running fleet: the control plane, three agents (zones a, b, c) and a
/// 3-node cluster with one node on each host.
struct Fleet {
    rig: Rig,
    tmp: tempfile::TempDir,
    data: std::path::PathBuf,
    token: String,
    children: Vec<std::process::Child>,
    cid: String,
    pw: String,
    /// The cluster as created.
    c: Value,
}

impl Fleet {
    fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        api(&self.rig, &self.data, &self.token, method, path, body)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.path().join(name)).unwrap_or_default()
    }

    /// The cluster's primary as created, with its `(address, port)`.
    fn primary(&self) -> (Value, (String, u16)) {
        let p = self.c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["role"] == "primary")
            .cloned()
            .unwrap();
        let at = (
            p["host"].as_str().unwrap().to_string(),
            p["port"].as_u64().unwrap() as u16,
        );
        (p, at)
    }

    /// Creates `app.t` through `at`, from the client's namespace.
    fn create_table(&self, at: (String, u16)) {
        let pw = self.pw.clone();
        self.rig.in_ns("client", move || async move {
            let mut w = connect(at, &pw).await.unwrap();
            w.query_drop("CREATE DATABASE app").await.unwrap();
            w.query_drop("CREATE TABLE app.t (id BIGINT PRIMARY KEY)")
                .await
                .unwrap();
        });
    }

    /// The member (`h1`…) whose address is `address`.
    fn host_at(&self, address: &str) -> &'static str {
        ["h1", "h2", "h3"]
            .into_iter()
            .find(|h| self.rig.member(h).address.to_string() == address)
            .unwrap()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_fleet() -> Fleet {
    let rig = Rig::new(3);
    let tmp = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let data = tmp.path().join("cp");
    let config = tmp.path().join("marina.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[endpoints]\nwriter_pool = \"203.0.113.0/28\"\nreader_pool = \"203.0.113.16/28\"\n\
             nft_table = \"marina_fleet\"\n[nodes]\nport_min = 21000\nport_max = 21099\nreconcile_interval_ms = 300\n\
             cgroup_parent = \"\"\ntemplate_cache = \"{TEMPLATE_CACHE}\"\n\
             [hosts]\nheartbeat_ms = 200\ndown_after_ms = 1500\nnetwork = \"198.51.100.0/24\"\n\
             [limits]\nrequests_per_second = 10000.0\nburst = 10000.0\n[capacity]\nhost_memory_gib = 64.0\n",
            data.display()
        ),
    )
    .unwrap();
    let marina = env!("CARGO_BIN_EXE_marina");
    let mut children = Vec::new();
    let cp = rig
        .command("cp", marina)
        .args([
            "serve",
            "--listen",
            CP,
            "--tls-self-signed",
            "--endpoints",
            "kernel",
            "--config",
        ])
        .arg(&config)
        .stdout(log_file(&tmp.path().join("cp.out")))
        .stderr(log_file(&tmp.path().join("cp.log")))
        .spawn()
        .unwrap();
    children.push(cp);
    let logs = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
    let started = Instant::now();
    let token = wait_for("the control plane", Duration::from_secs(30), || {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the control plane did not answer: {}\n{}\nlast answer: {:?}",
            logs("cp.out"),
            logs("cp.log"),
            std::fs::read_to_string(data.join("admin-token")).map(|t| api(
                &rig,
                &data,
                t.trim(),
                reqwest::Method::GET,
                "/v1/hosts",
                None
            ))
        );
        let t = std::fs::read_to_string(data.join("admin-token")).ok()?;
        let t = t.trim().to_string();
        (api(&rig, &data, &t, reqwest::Method::GET, "/v1/hosts", None).0 == 200).then_some(t)
    });
    let cp_log = || std::fs::read_to_string(tmp.path().join("cp.log")).unwrap_or_default();

    // The control plane's own machine takes no node here.
    let (_, hosts) = api(&rig, &data, &token, reqwest::Method::GET, "/v1/hosts", None);
    let local = hosts["data"][0]["id"].as_str().unwrap().to_string();
    let (s, h) = api(
        &rig,
        &data,
        &token,
        reqwest::Method::POST,
        &format!("/v1/hosts/{local}/cordon"),
        Some(json!({})),
    );
    assert_eq!(s, 200, "{h}");

    // Three agents, zones a, b and c, each on its own host.
    for (host, zone) in [("h1", "a"), ("h2", "b"), ("h3", "c")] {
        let (s, t) = api(
            &rig,
            &data,
            &token,
            reqwest::Method::POST,
            "/v1/hosts/join-tokens",
            Some(json!({"zone": zone})),
        );
        assert_eq!(s, 201, "{t}");
        let address = rig.member(host).address.to_string();
        let child = rig
            .command(host, marina)
            .args([
                "agent",
                "--join",
                &format!("https://{CP}"),
                "--address",
                &address,
                "--ca-cert",
            ])
            .arg(cert_path(&data))
            .args([
                "--listen",
                &format!("{address}:7301"),
                "--template-cache",
                TEMPLATE_CACHE,
            ])
            .args(["--cgroup-parent", "", "--dir"])
            .arg(tmp.path().join(host))
            .env("MARINA_JOIN_TOKEN", t["secret"].as_str().unwrap())
            .stdout(log_file(&tmp.path().join(format!("{host}.out"))))
            .stderr(log_file(&tmp.path().join(format!("{host}.log"))))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        children.push(child);
    }
    for host in ["h1", "h2", "h3"] {
        let address = rig.member(host).address.to_string();
        let began = Instant::now();
        wait_for(&format!("{host} active"), Duration::from_secs(20), || {
            assert!(
                began.elapsed() < Duration::from_secs(15),
                "{host} not active: {}\n{}\n{}",
                logs(&format!("{host}.out")),
                logs(&format!("{host}.log")),
                logs("cp.log").lines().rev().take(20).collect::<Vec<_>>().join("\n")
            );
            (host_status(&rig, &data, &token, &address).as_deref() == Some("active")).then_some(())
        });
    }

    // Clients of the fleet network may use the cluster's endpoints.
    let (s, g) = api(
        &rig,
        &data,
        &token,
        reqwest::Method::POST,
        "/v1/security-groups",
        Some(json!({"name": "fleet"})),
    );
    assert_eq!(s, 201, "{g}");
    let sg = g["id"].as_str().unwrap().to_string();
    let (s, r) = api(
        &rig,
        &data,
        &token,
        reqwest::Method::POST,
        &format!("/v1/security-groups/{sg}/rules"),
        Some(json!({"cidr": "198.51.100.0/24", "from_port": 3306, "to_port": 3306})),
    );
    assert_eq!(s, 201, "{r}");

    // One node per zone, each listening on its host's address.
    let (s, created) = api(
        &rig,
        &data,
        &token,
        reqwest::Method::POST,
        "/v1/clusters",
        Some(json!({"name": "across", "size_id": "xsmall", "nodes": 3, "security_group_ids": [sg]})),
    );
    assert_eq!(s, 202, "{created}");
    let op = created["operation"]["id"].as_str().unwrap().to_string();
    let done = wait_for("the create", Duration::from_secs(90), || {
        let (_, o) = api(
            &rig,
            &data,
            &token,
            reqwest::Method::GET,
            &format!("/v1/operations/{op}"),
            None,
        );
        matches!(o["status"].as_str(), Some("succeeded" | "failed")).then_some(o)
    });
    assert_eq!(done["status"], "succeeded", "{done}\n{}", cp_log());
    let pw = created["credentials"]["password"].as_str().unwrap().to_string();
    let cid = created["cluster"]["id"].as_str().unwrap().to_string();
    let (_, c) = api(
        &rig,
        &data,
        &token,
        reqwest::Method::GET,
        &format!("/v1/clusters/{cid}"),
        None,
    );
    let mut zones: Vec<(String, String)> = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["zone"].as_str().unwrap().into(), n["host"].as_str().unwrap().into()))
        .collect();
    zones.sort();
    assert_eq!(
        zones,
        vec![
            ("a".to_string(), "198.51.100.11".to_string()),
            ("b".to_string(), "198.51.100.12".to_string()),
            ("c".to_string(), "198.51.100.13".to_string())
        ],
        "{c}"
    );
    Fleet {
        rig,
        tmp,
        data,
        token,
        children,
        cid,
        pw,
        c,
    }
}

#[test]
fn a_cluster_spreads_over_hosts_in_namespaces() {
    let f = start_fleet();
    let (rig, c, pw) = (&f.rig, &f.c, f.pw.clone());
    let (data, token) = (f.data.clone(), f.token.clone());
    let addr_of = |n: &Value| {
        (
            n["host"].as_str().unwrap().to_string(),
            n["port"].as_u64().unwrap() as u16,
        )
    };
    let nodes = c["nodes"].as_array().unwrap().clone();
    let primary = addr_of(nodes.iter().find(|n| n["role"] == "primary").unwrap());
    let replicas: Vec<(String, u16)> = nodes.iter().filter(|n| n["role"] == "replica").map(addr_of).collect();

    // Writes on the primary's host reach both other hosts.
    let (w_at, pw1, reps) = (primary.clone(), pw.clone(), replicas.clone());
    let seen = rig.in_ns("client", move || async move {
        let mut w = connect(w_at, &pw1).await.unwrap();
        w.query_drop("CREATE DATABASE app").await.unwrap();
        w.query_drop("CREATE TABLE app.t (id BIGINT PRIMARY KEY)")
            .await
            .unwrap();
        for i in 0..100u64 {
            w.exec_drop("INSERT INTO app.t VALUES (?)", (i,)).await.unwrap();
        }
        let mut counts = Vec::new();
        for r in reps {
            let mut r = connect(r, &pw1).await.unwrap();
            let start = Instant::now();
            loop {
                let n: Option<u64> = r.query_first("SELECT COUNT(*) FROM app.t").await.unwrap_or(None);
                if n == Some(100) || start.elapsed() > Duration::from_secs(10) {
                    counts.push(n);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        counts
    });
    assert_eq!(
        seen,
        vec![Some(100), Some(100)],
        "each replica, on its own host, has every row"
    );

    // Every process of the primary's host killed (agent and mariadbd): a
    // replica on another host is promoted and takes writes with every row,
    // and the dead host is marked down.
    let primary_host = ["h1", "h2", "h3"]
        .into_iter()
        .find(|h| rig.member(h).address.to_string() == primary.0)
        .unwrap();
    let killed = Instant::now();
    rig.signal(primary_host, libc::SIGKILL);
    let (old, pw2) = (primary.0.clone(), pw.clone());
    let first_write = rig.in_ns("client", move || async move {
        // The first write any node other than the old primary acknowledges.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            for r in &replicas {
                if r.0 == old {
                    continue;
                }
                let Ok(mut w) = connect(r.clone(), &pw2).await else {
                    continue;
                };
                if w.exec_drop("INSERT INTO app.t VALUES (?)", (1000u64,)).await.is_ok() {
                    let n: Option<u64> = w.query_first("SELECT COUNT(*) FROM app.t").await.unwrap();
                    return Some((killed.elapsed(), n));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    });
    let (rto, rows) = first_write.expect("no node took writes after the primary's host died");
    assert_eq!(rows, Some(101), "the promoted node has every acknowledged row");
    println!(
        "host loss: first acknowledged write {} ms after the primary's host was killed",
        rto.as_millis()
    );
    assert!(rto < Duration::from_secs(5), "host-loss RTO {rto:?}");
    let address = rig.member(primary_host).address.to_string();
    wait_for("the killed host down", Duration::from_secs(10), || {
        (host_status(rig, &data, &token, &address).as_deref() == Some("down")).then_some(())
    });
}

/// A writer that runs inside one member's namespace (the client's, or a
/// client on the primary's own host, which a partition of that host does
/// not cut off), recording when each of its writes was acknowledged.
fn write_locally(
    rig: &Rig,
    member: &'static str,
    at: (String, u16),
    pw: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(u64, std::time::SystemTime)> {
    rig.in_ns(member, move || async move {
        let mut acked = Vec::new();
        let mut conn: Option<mysql_async::Conn> = None;
        let mut id = 10_000u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if conn.is_none() {
                conn = connect(at.clone(), &pw).await.ok();
                if conn.is_none() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
            id += 1;
            let w = conn.as_mut().unwrap();
            match tokio::time::timeout(
                Duration::from_secs(1),
                w.exec_drop("INSERT INTO app.t VALUES (?)", (id,)),
            )
            .await
            {
                Ok(Ok(())) => acked.push((id, std::time::SystemTime::now())),
                _ => conn = None,
            }
        }
        acked
    })
}

/// A primary cut off from everything (nftables drop all of its host's
/// traffic; a writer on that same host keeps writing to it): the control
/// plane fails over to another host, the isolated agent fences its primary
/// on its own (read-only, clients cut) after `hosts.fence_after_ms`, and
/// the old primary acknowledges no write after the failover completed.
#[test]
fn an_isolated_primary_fences_itself() {
    let f = start_fleet();
    let (_, at) = f.primary();
    let host = f.host_at(&at.0);
    f.create_table(at.clone());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (acked, failover_at, fenced_after) = std::thread::scope(|s| {
        let writer = {
            let (rig, at, pw, stop) = (&f.rig, at.clone(), f.pw.clone(), stop.clone());
            s.spawn(move || write_locally(rig, host, at, pw, stop))
        };
        std::thread::sleep(Duration::from_millis(800));
        let cut = Instant::now();
        f.rig.cut(host, None);
        // The control plane fails over to another host.
        let completed = wait_for("a failover away from the cut host", Duration::from_secs(20), || {
            let (_, ev) = f.api(
                reqwest::Method::GET,
                &format!("/v1/clusters/{}/events?limit=100", f.cid),
                None,
            );
            ev["data"]
                .as_array()?
                .iter()
                .find(|e| e["type"] == "failover_completed")
                .and_then(|e| marina_common::time_fmt::parse_rfc3339(e["created_at"].as_str()?))
        });
        // The isolated agent fences its primary (seen from its own host).
        let (pw, at3) = (f.pw.clone(), at.clone());
        let fenced = f.rig.in_ns(host, move || async move {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if let Ok(mut c) = connect(at3.clone(), &pw).await
                    && let Ok(Some(1u8)) = c.query_first("SELECT @@read_only").await
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        });
        let fenced_after = cut.elapsed();
        assert!(
            fenced,
            "the isolated primary was not fenced\n{}",
            f.log(&format!("{host}.log"))
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (writer.join().unwrap(), completed, fenced_after)
    });
    println!("isolated primary fenced {} ms after the cut", fenced_after.as_millis());
    assert!(
        !acked.is_empty(),
        "the local writer acknowledged nothing before the cut"
    );
    let failover_at: std::time::SystemTime = failover_at.into();
    let late: Vec<_> = acked.iter().filter(|(_, t)| *t > failover_at).collect();
    assert!(
        late.is_empty(),
        "{} writes acknowledged by the old primary after the failover",
        late.len()
    );
    assert!(
        f.log(&format!("{host}.log")).contains("primary fenced"),
        "{}",
        f.log(&format!("{host}.log"))
    );
}

/// The primary's host cut from the control plane only (its peers and the
/// client still reach it): the replicas still see their primary, so there
/// is no failover; its agent still reaches the peers, so it does not fence
/// it; writes go on being acknowledged throughout. The host is `down` while
/// cut and `active` again once healed.
#[test]
fn a_primary_cut_from_the_control_plane_only_keeps_serving() {
    let f = start_fleet();
    let (primary, at) = f.primary();
    let host = f.host_at(&at.0);
    f.create_table(at.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cut_for = Duration::from_millis(6000);
    let acked = std::thread::scope(|s| {
        let writer = {
            let (rig, at, pw, stop) = (&f.rig, at.clone(), f.pw.clone(), stop.clone());
            s.spawn(move || write_locally(rig, "client", at, pw, stop))
        };
        std::thread::sleep(Duration::from_millis(500));
        f.rig.cut(host, Some("cp"));
        let address = at.0.clone();
        wait_for("the cut host down", Duration::from_secs(10), || {
            (host_status(&f.rig, &f.data, &f.token, &address).as_deref() == Some("down")).then_some(())
        });
        std::thread::sleep(cut_for.saturating_sub(Duration::from_secs(2)));
        f.rig.heal(host);
        wait_for("the healed host active", Duration::from_secs(10), || {
            (host_status(&f.rig, &f.data, &f.token, &address).as_deref() == Some("active")).then_some(())
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap()
    });
    let (_, ev) = f.api(
        reqwest::Method::GET,
        &format!("/v1/clusters/{}/events?limit=200", f.cid),
        None,
    );
    let kinds: Vec<&str> = ev["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(*k, "failover_started" | "failover_completed" | "failover_elected")),
        "a failover without a failure: {:#?}",
        ev["data"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|e| format!("{} {} {}", e["created_at"], e["type"], e["message"]))
            .collect::<Vec<_>>()
    );
    let (_, c) = f.api(reqwest::Method::GET, &format!("/v1/clusters/{}", f.cid), None);
    assert_eq!(
        c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["role"] == "primary")
            .unwrap()["id"],
        primary["id"],
        "{c}"
    );
    assert!(
        !f.log(&format!("{host}.log")).contains("primary fenced"),
        "fenced with its peers in reach"
    );
    // Writes were acknowledged all along: no gap of a second.
    let gaps = acked
        .windows(2)
        .filter_map(|w| w[1].1.duration_since(w[0].1).ok())
        .max();
    assert!(acked.len() > 100, "{} writes", acked.len());
    assert!(
        gaps < Some(Duration::from_secs(1)),
        "the longest pause between acknowledged writes: {gaps:?}"
    );
}

/// Endpoints on every host: the client routes the endpoint network through
/// a host that does not run the primary and writes through the writer
/// address; that host's agent forwards to the primary wherever it runs.
/// When every process of the primary's host is killed, the writer address
/// leads to the new primary on every host: writes resume through the same
/// address (the longest pause is printed) and no acknowledged write is lost.
#[test]
fn clients_reach_a_cluster_through_any_host_across_a_host_loss() {
    let f = start_fleet();
    let nodes = f.c["nodes"].as_array().unwrap().clone();
    let primary = nodes.iter().find(|n| n["role"] == "primary").unwrap();
    let primary_host = f.host_at(primary["host"].as_str().unwrap());
    let via = ["h1", "h2", "h3"].into_iter().find(|h| *h != primary_host).unwrap();
    f.rig.route("client", "203.0.113.0/24", via);
    let w = &f.c["endpoints"]["writer"];
    let writer = (
        w["host"].as_str().unwrap().to_string(),
        w["port"].as_u64().unwrap() as u16,
    );
    assert!(writer.0.starts_with("203.0.113."), "{w}");
    let (pw, at) = (f.pw.clone(), writer.clone());
    let made = f.rig.in_ns("client", move || async move {
        let mut c = connect(at, &pw).await?;
        c.query_drop("CREATE DATABASE app").await?;
        c.query_drop("CREATE TABLE app.t (id BIGINT PRIMARY KEY)").await
    });
    made.unwrap_or_else(|e| panic!("through {via}: {e}\n{}", f.log(&format!("{via}.log"))));

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::thread::scope(|s| {
        let load = {
            let (rig, at, pw, stop) = (&f.rig, writer.clone(), f.pw.clone(), stop.clone());
            s.spawn(move || write_locally(rig, "client", at, pw, stop))
        };
        std::thread::sleep(Duration::from_millis(1000));
        f.rig.signal(primary_host, libc::SIGKILL);
        wait_for("a failover", Duration::from_secs(20), || {
            let (_, ev) = f.api(
                reqwest::Method::GET,
                &format!("/v1/clusters/{}/events?limit=100", f.cid),
                None,
            );
            ev["data"]
                .as_array()?
                .iter()
                .any(|e| e["type"] == "failover_completed")
                .then_some(())
        });
        std::thread::sleep(Duration::from_millis(2000));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.join().unwrap()
    });
    assert!(
        acked.len() > 50,
        "{} writes acknowledged through the endpoint",
        acked.len()
    );
    let pause = acked
        .windows(2)
        .filter_map(|w| w[1].1.duration_since(w[0].1).ok())
        .max()
        .unwrap();
    println!(
        "endpoint through {via}: {} writes acknowledged, longest pause {} ms across the loss of the primary's host",
        acked.len(),
        pause.as_millis()
    );
    assert!(
        pause < Duration::from_secs(5),
        "writes through the endpoint paused {pause:?}"
    );
    // Every acknowledged write is on the new primary (read through the
    // same address).
    let (pw, at) = (f.pw.clone(), writer);
    let have: Vec<u64> = f.rig.in_ns("client", move || async move {
        let mut c = connect(at, &pw).await.unwrap();
        c.query("SELECT id FROM app.t WHERE id > 10000").await.unwrap()
    });
    let have: std::collections::HashSet<u64> = have.into_iter().collect();
    let missing = acked.iter().filter(|(id, _)| !have.contains(id)).count();
    assert_eq!(missing, 0, "acknowledged writes lost");
}
