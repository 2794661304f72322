//! Marina benchmarks. `cargo run --release -p marina-bench -- provision` measures,
//! in one run on this machine:
//! - the floor: one raw `mariadb-install-db` plus one `mariadbd` start until it
//!   answers the MySQL handshake (median of `--floor-runs`);
//! - `POST /v1/clusters` → operation succeeded for 1-node and 3-node semisync
//!   clusters (median of `--runs`, each deleted afterwards), through an in-process
//!   control plane with a fresh data dir and a warm template;
//!
//! and prints each as `name: value unit (ratio x baseline)`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn arg_value(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One raw `mariadb-install-db` + `mariadbd` start-to-handshake, in ms.
async fn floor_once(dir: &Path) -> anyhow::Result<f64> {
    let datadir = dir.join("data");
    let port = free_port()?;
    let start = Instant::now();
    let out = tokio::process::Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", datadir.display()))
        .arg("--user=root")
        .arg("--skip-test-db")
        .arg("--auth-root-authentication-method=socket")
        .output()
        .await
        .context("running mariadb-install-db (is mariadb-server installed?)")?;
    if !out.status.success() {
        bail!("mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut child = tokio::process::Command::new("mariadbd")
        .arg("--no-defaults")
        .arg("--user=root")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--socket={}", dir.join("s.sock").display()))
        .arg(format!("--pid-file={}", dir.join("p.pid").display()))
        .arg(format!("--log-error={}", dir.join("err.log").display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawning mariadbd")?;
    // Ready = the server sends its handshake packet.
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let mut buf = [0u8; 5];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await
                && n >= 5
                && buf[4] == 10
            {
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("mariadbd did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    child.kill().await.ok();
    let _ = child.wait().await;
    Ok(ms)
}

struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if !status.is_success() {
            bail!("{path}: HTTP {status}: {v}");
        }
        Ok(v)
    }

    async fn wait_op(&self, id: &str) -> anyhow::Result<Value> {
        loop {
            let op = self
                .call(reqwest::Method::GET, &format!("/v1/operations/{id}"), None)
                .await?;
            match op["status"].as_str() {
                Some("succeeded") => return Ok(op),
                Some("failed") => bail!("operation failed: {op}"),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// Create → active in ms, then delete.
    async fn create_once(&self, name: &str, nodes: u32) -> anyhow::Result<f64> {
        let start = Instant::now();
        let body = json!({"name": name, "size_id": "xsmall", "nodes": nodes, "replication": "semisync"});
        let created = self.call(reqwest::Method::POST, "/v1/clusters", Some(body)).await?;
        self.wait_op(created["operation"]["id"].as_str().unwrap_or_default())
            .await?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let id = created["cluster"]["id"].as_str().unwrap_or_default();
        let del = self
            .call(reqwest::Method::DELETE, &format!("/v1/clusters/{id}"), None)
            .await?;
        self.wait_op(del["operation"]["id"].as_str().unwrap_or_default())
            .await?;
        Ok(ms)
    }
}

async fn provision(args: &[String]) -> anyhow::Result<()> {
    let runs = arg_value(args, "--runs", 5).max(1);
    let floor_runs = arg_value(args, "--floor-runs", 3).max(1);
    let scratch = tempfile::Builder::new().prefix("marina-bench-").tempdir()?;

    let mut floors = Vec::new();
    for i in 0..floor_runs {
        let d = scratch.path().join(format!("floor{i}"));
        std::fs::create_dir_all(&d)?;
        floors.push(floor_once(&d).await?);
        let _ = std::fs::remove_dir_all(&d);
    }
    let floor = median(floors);

    let mut config = marina_core::Config {
        data_dir: scratch.path().join("marina"),
        ..Default::default()
    };
    config.nodes.reconcile_interval_ms = 1000;
    // Stay clear of a Marina that may be serving on this host.
    config.endpoints.nft_table = format!("marina_bench_{}", std::process::id());
    config.endpoints.writer_pool = "127.251.0.0/24".parse()?;
    config.endpoints.reader_pool = "127.252.0.0/24".parse()?;
    config.nodes.port_min = 45000;
    config.nodes.port_max = 45999;
    let app = marina_core::Marina::open(config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = app
        .bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("fresh store")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let cancel = tokio_util::sync::CancellationToken::new();
    let tasks = app.spawn_background(cancel.clone());
    let server_cancel = cancel.clone();
    let datapath = app.datapath.kind();
    let server = tokio::spawn(marina_api::serve(app.clone(), listener, async move {
        server_cancel.cancelled().await
    }));
    let api = Api {
        url,
        token,
        http: reqwest::Client::new(),
    };

    // Warm-up: builds the version's template once (like a first start does).
    api.create_once("warmup", 1).await?;
    let mut one = Vec::new();
    let mut three = Vec::new();
    for i in 0..runs {
        one.push(api.create_once(&format!("one{i}"), 1).await?);
        three.push(api.create_once(&format!("three{i}"), 3).await?);
    }
    let (one, three) = (median(one), median(three));
    println!(
        "# provision benchmark: {runs} runs per cluster size, endpoints: {datapath}, MariaDB {}",
        app.runtime.default_version()
    );
    println!(
        "floor (mariadb-install-db + mariadbd start-to-ready, median of {floor_runs}): {floor:.0} ms (1.00 x baseline)"
    );
    println!(
        "create 1-node cluster -> active (median of {runs}): {one:.0} ms ({:.2} x floor)",
        one / floor
    );
    println!(
        "create 3-node semisync cluster -> active (median of {runs}): {three:.0} ms ({:.2} x floor)",
        three / floor
    );
    cancel.cancel();
    let _ = server.await;
    for t in tasks {
        let _ = t.await;
    }
    let _ = marina_core::supervisor::clear_endpoints(&app).await;
    if three / floor > 1.0 {
        bail!("3-node create is slower than the floor ({:.2} x)", three / floor);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("provision") => provision(&args[1..]).await,
        _ => {
            eprintln!("usage: marina-bench provision [--runs N] [--floor-runs N]");
            std::process::exit(2);
        }
    }
}
