//! The fleet harness (issue 23): a control plane, a client and hosts as
//! network namespaces (`netns::Rig`), agents joined over the network, and a
//! 3-node cluster with one node per zone (a, b, c); more hosts join after
//! the cluster exists (zone d, e, …).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

use super::TEMPLATE_CACHE;
use super::netns::Rig;

pub const CP: &str = "198.51.100.2:7300";

pub fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// The control plane's self-signed certificate (the rig's API is HTTPS).
pub fn cert_path(data: &Path) -> std::path::PathBuf {
    data.join("tls").join("marina.crt")
}

/// One API call from the client's namespace.
pub fn api(
    rig: &Rig,
    data: &Path,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
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
pub async fn connect(at: (String, u16), pw: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(at.0)
        .tcp_port(at.1)
        .user(Some("admin"))
        .pass(Some(pw.to_string()));
    tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts))
        .await
        .unwrap_or_else(|_| Err(mysql_async::Error::Other("connect timed out".into())))
}

pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn host_status(rig: &Rig, data: &Path, token: &str, address: &str) -> Option<String> {
    let (_, list) = api(rig, data, token, reqwest::Method::GET, "/v1/hosts", None);
    list["data"]
        .as_array()?
        .iter()
        .find(|h| h["address"] == address)
        .and_then(|h| h["status"].as_str().map(String::from))
}

/// A running fleet: the control plane, three agents (zones a, b, c) and a
/// 3-node cluster with one node on each host.
pub struct Fleet {
    pub rig: Rig,
    pub tmp: tempfile::TempDir,
    pub data: std::path::PathBuf,
    pub token: String,
    pub children: Vec<std::process::Child>,
    pub cid: String,
    pub pw: String,
    /// The cluster as created.
    pub c: Value,
}

impl Fleet {
    pub fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        api(&self.rig, &self.data, &self.token, method, path, body)
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.path().join(name)).unwrap_or_default()
    }

    /// The cluster's primary as created, with its `(address, port)`.
    pub fn primary(&self) -> (Value, (String, u16)) {
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

    /// Creates `app.t` through `at`, from `member`'s namespace (a node's
    /// port admits the fleet's hosts only; an endpoint, anyone routed —
    /// once the host it is routed through has the endpoint plan, which the
    /// control plane pushes to every host as it applies it: the first
    /// connection is retried for a few seconds).
    pub fn create_table(&self, member: &str, at: (String, u16)) {
        let pw = self.pw.clone();
        self.rig.in_ns(member, move || async move {
            let began = Instant::now();
            let mut w = loop {
                match connect(at.clone(), &pw).await {
                    Ok(c) => break c,
                    Err(e) if began.elapsed() > Duration::from_secs(10) => panic!("connecting to {at:?}: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            w.query_drop("CREATE DATABASE app").await.unwrap();
            w.query_drop("CREATE TABLE app.t (id BIGINT PRIMARY KEY)")
                .await
                .unwrap();
        });
    }

    /// The member (`h1`…) whose address is `address`.
    pub fn host_at(&self, address: &str) -> &'static str {
        ["h1", "h2", "h3", "h4", "h5"]
            .into_iter()
            .find(|h| {
                self.rig
                    .members
                    .iter()
                    .any(|m| m.name == *h && m.address.to_string() == address)
            })
            .unwrap()
    }

    /// The host id of the member `host` (from `GET /v1/hosts`).
    pub fn host_id(&self, host: &str) -> String {
        let address = self.rig.member(host).address.to_string();
        let (_, list) = self.api(reqwest::Method::GET, "/v1/hosts", None);
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["address"] == address.as_str())
            .and_then(|h| h["id"].as_str().map(String::from))
            .unwrap_or_else(|| panic!("no host at {address}: {list}"))
    }

    /// Starts `host`'s agent again after its processes were killed (it
    /// joined before: no join now).
    pub fn restart_agent(&mut self, host: &str) {
        let address = self.rig.member(host).address.to_string();
        let child = self
            .rig
            .command(host, env!("CARGO_BIN_EXE_marina"))
            .args([
                "agent",
                "--listen",
                &format!("{address}:7301"),
                "--template-cache",
                TEMPLATE_CACHE,
            ])
            .args(["--cgroup-parent", "", "--dir"])
            .arg(self.tmp.path().join(host))
            .stdout(log_file(&self.tmp.path().join(format!("{host}.out"))))
            .stderr(log_file(&self.tmp.path().join(format!("{host}.log"))))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// The cluster as the API shows it now.
    pub fn cluster(&self) -> Value {
        self.api(reqwest::Method::GET, &format!("/v1/clusters/{}", self.cid), None)
            .1
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

/// Joins `host`'s agent (zone `zone`) and waits until the control plane
/// sees it active.
fn join(rig: &Rig, data: &Path, token: &str, tmp: &Path, host: &str, zone: &str) -> std::process::Child {
    let marina = env!("CARGO_BIN_EXE_marina");
    let logs = |name: &str| std::fs::read_to_string(tmp.join(name)).unwrap_or_default();
    let (s, t) = api(
        rig,
        data,
        token,
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
        .arg(cert_path(data))
        .args([
            "--listen",
            &format!("{address}:7301"),
            "--template-cache",
            TEMPLATE_CACHE,
        ])
        .args(["--cgroup-parent", "", "--dir"])
        .arg(tmp.join(host))
        .env("MARINA_JOIN_TOKEN", t["secret"].as_str().unwrap())
        .stdout(log_file(&tmp.join(format!("{host}.out"))))
        .stderr(log_file(&tmp.join(format!("{host}.log"))))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    wait_for(&format!("{host} active"), Duration::from_secs(20), || {
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "{host} not active: {}\n{}\n{}",
            logs(&format!("{host}.out")),
            logs(&format!("{host}.log")),
            logs("cp.log").lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
        (host_status(rig, data, token, &address).as_deref() == Some("active")).then_some(())
    });
    child
}

/// The fleet most tests use: three hosts.
pub fn start_fleet() -> Fleet {
    start_fleet_with(3, "")
}

/// Where the fleet's S3-compatible store listens (moto, in the control
/// plane's namespace), and its bucket.
pub const S3_AT: &str = "198.51.100.2:9000";
pub const S3_BUCKET: &str = "fleet-backups";

/// A fleet whose backups go to an S3-compatible store every host reaches.
pub fn start_fleet_with_s3() -> Fleet {
    start_fleet_opts(3, "", true)
}

/// A fleet of `hosts` hosts (three or more; the cluster is made on the
/// first three, the others join after it, zones d, e, …); `hosts_config`
/// adds lines to the control plane's `[hosts]` table (or tables after it).
pub fn start_fleet_with(n_hosts: usize, hosts_config: &str) -> Fleet {
    start_fleet_opts(n_hosts, hosts_config, false)
}

/// Starts moto in the control plane's namespace with the bucket made.
fn start_s3(rig: &Rig) -> std::process::Child {
    let bin = std::env::var("MARINA_TEST_MOTO").unwrap_or_else(|_| "/opt/marina-test/moto/bin/moto_server".into());
    assert!(
        Path::new(&bin).exists(),
        "{bin} is missing: run scripts/install-deps.sh --test"
    );
    let (host, port) = S3_AT.split_once(':').unwrap();
    let child = rig
        .command("cp", &bin)
        .args(["-H", host, "-p", port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let made = rig.in_ns("client", || async {
        let began = Instant::now();
        loop {
            let put = reqwest::Client::new()
                .put(format!("http://{S3_AT}/{S3_BUCKET}"))
                .send()
                .await;
            match put {
                Ok(r) if r.status().is_success() => return Ok(()),
                other if began.elapsed() > Duration::from_secs(30) => return Err(format!("{other:?}")),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    made.unwrap_or_else(|e| panic!("moto did not start: {e}"));
    child
}

fn start_fleet_opts(n_hosts: usize, hosts_config: &str, s3: bool) -> Fleet {
    assert!(n_hosts >= 3);
    let rig = Rig::new(n_hosts);
    let mut children = Vec::new();
    let s3_config = if s3 {
        children.push(start_s3(&rig));
        format!(
            "[backups.s3]\nbucket = \"{S3_BUCKET}\"\nendpoint = \"http://{S3_AT}\"\nprefix = \"fleet\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"fleet-secret-key\"\n"
        )
    } else {
        String::new()
    };
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
             [hosts]\nheartbeat_ms = 200\ndown_after_ms = 1500\nnetwork = \"198.51.100.0/24\"\n{hosts_config}\n\
             [limits]\nrequests_per_second = 10000.0\nburst = 10000.0\n[capacity]\nhost_memory_gib = 64.0\n{s3_config}",
            data.display()
        ),
    )
    .unwrap();
    let marina = env!("CARGO_BIN_EXE_marina");
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
        children.push(join(&rig, &data, &token, tmp.path(), host, zone));
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
    for i in 4..=n_hosts {
        let zone = ((b'a' + i as u8 - 1) as char).to_string();
        children.push(join(&rig, &data, &token, tmp.path(), &format!("h{i}"), &zone));
    }
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

/// A writer that runs inside one member's namespace (the client's, or a
/// client on the primary's own host, which a partition of that host does
/// not cut off), recording when each of its writes was acknowledged.
pub fn write_locally(
    rig: &Rig,
    member: &'static str,
    at: (String, u16),
    pw: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(u64, std::time::SystemTime)> {
    rig.in_ns(member, move || async move {
        let mut acked = Vec::new();
        let mut conn: Option<mysql_async::Conn> = None;
        // Each writer takes its own block of ids (ids above 10000).
        static BLOCKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut id = 10_000u64 + BLOCKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 1_000_000;
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
