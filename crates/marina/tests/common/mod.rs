//! Test harness: boots the real `marina serve` binary on a random port with a
//! private data dir, a private endpoint subnet and nftables table, and a private
//! node port window; typed request helpers; polling instead of sleeps; and a
//! cleanup that kills by pid whatever the test started (even when it fails).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

/// Shared template cache so the suite runs `mariadb-install-db` once.
pub const TEMPLATE_CACHE: &str = "/tmp/marina-test-templates";

/// A running Marina under test.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: String,
    pub nft_table: String,
    pub endpoints_mode: String,
    server: Option<Child>,
    http: reqwest::Client,
    /// The data dir as the server resolved it (`dir` unless started relative).
    data: PathBuf,
    /// Extra `marina serve` arguments; the server runs with `dir` as its
    /// working directory.
    serve_args: Vec<String>,
    /// The server's last start-up line (`marina listening on …`).
    pub listening: String,
    /// Environment added to the server's (e.g. `MARINA_PANICPOINT`) on its
    /// next `spawn_server`.
    pub extra_env: Vec<(String, String)>,
    /// Holds this test's node port window (see `port_window`).
    _ports: std::fs::File,
}

/// Node port windows: `PORT_WINDOWS` windows of `PORT_WINDOW` ports from
/// 20000, all below the kernel's ephemeral range (32768 and up), so no
/// client's source port takes a stopped node's port.
const PORT_WINDOW: u16 = 300;
const PORT_WINDOWS: u16 = 42;

/// A node port window no other running test holds: an exclusive `flock` on
/// the window's lock file, held while this test process lives. Random
/// windows once overlapped: two tests' nodes took turns on one port, and
/// one test's node-port guard dropped the other's replication connections.
fn port_window() -> (u16, std::fs::File) {
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join("marina-test-ports");
    std::fs::create_dir_all(&dir).expect("port lock dir");
    let first = rand::rng().random_range(0..PORT_WINDOWS);
    for i in 0..PORT_WINDOWS {
        let slot = (first + i) % PORT_WINDOWS;
        let file = std::fs::File::create(dir.join(format!("{slot}.lock"))).expect("port lock file");
        // SAFETY: flock on a descriptor this process owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return (20_000 + slot * PORT_WINDOW, file);
        }
    }
    panic!("all {PORT_WINDOWS} node port windows are held by running tests");
}

fn config_text(data_dir: Option<&Path>, nft_table: &str, port_min: u16) -> String {
    let mut rng = rand::rng();
    let a: u8 = rng.random_range(100..200);
    let b: u8 = rng.random_range(0..=255);
    let data_dir = data_dir
        .map(|d| format!("data_dir = \"{}\"\n", d.display()))
        .unwrap_or_default();
    format!(
        "{data_dir}[endpoints]\nwriter_pool = \"127.{a}.{b}.0/28\"\nreader_pool = \"127.{a}.{b}.16/28\"\n\
         nft_table = \"{nft_table}\"\n[nodes]\nport_min = {port_min}\nport_max = {}\nreconcile_interval_ms = 300\n\
         cgroup_parent = \"{nft_table}\"\n\
         template_cache = \"{TEMPLATE_CACHE}\"\n",
        port_min + PORT_WINDOW - 1
    )
}

/// `extra` over `base`: top-level keys first, then base's sections, each with
/// the keys `extra` gives for the same section added, then `extra`'s other
/// sections (TOML forbids a section twice).
fn merge_toml(base: &str, extra: &str) -> String {
    let mut top = String::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in extra.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            sections.push((t.to_string(), String::new()));
            current = Some(sections.len() - 1);
        } else if let Some(i) = current {
            sections[i].1.push_str(line);
            sections[i].1.push('\n');
        } else {
            top.push_str(line);
            top.push('\n');
        }
    }
    let mut out = top;
    let mut used = vec![false; sections.len()];
    for line in base.lines() {
        out.push_str(line);
        out.push('\n');
        let t = line.trim();
        for (i, (header, body)) in sections.iter().enumerate() {
            if t == header && !header.starts_with("[[") {
                out.push_str(body);
                used[i] = true;
            }
        }
    }
    for (i, (header, body)) in sections.iter().enumerate() {
        if !used[i] {
            out.push_str(&format!("{header}\n{body}"));
        }
    }
    out
}

impl TestApp {
    /// Starts Marina with kernel endpoints.
    pub async fn start() -> TestApp {
        Self::start_with("kernel").await
    }

    /// Starts Marina with the given endpoint mode.
    pub async fn start_with(mode: &str) -> TestApp {
        Self::start_configured(mode, "").await
    }

    /// Starts Marina with extra TOML: top-level keys are put first, keys of a
    /// section the test config has (`[nodes]`) join it, other sections are
    /// appended.
    pub async fn start_configured(mode: &str, extra_toml: &str) -> TestApp {
        Self::start_in(mode, extra_toml, None, &[]).await
    }

    /// Starts Marina from its temporary directory as working directory, with
    /// the data dir given only as `relative` (None: nothing names it, so the
    /// default applies) and `serve_args` added: a newcomer's relative paths.
    pub async fn start_relative(relative: Option<&str>, extra_toml: &str, serve_args: &[&str]) -> TestApp {
        Self::start_in(
            "kernel",
            extra_toml,
            Some(relative.unwrap_or("marina-data")),
            serve_args,
        )
        .await
    }

    async fn start_in(mode: &str, extra_toml: &str, relative: Option<&str>, serve_args: &[&str]) -> TestApp {
        let dir = tempfile::Builder::new()
            .prefix("marina-test-")
            .tempdir()
            .expect("tempdir");
        let nft_table = format!("marina_t{}", rand::rng().random_range(0..u32::MAX));
        let (port_min, ports) = port_window();
        let data = match relative {
            Some(r) => dir.path().join(r),
            None => dir.path().to_path_buf(),
        };
        let absolute = relative.is_none().then(|| dir.path());
        let mut base = config_text(absolute, &nft_table, port_min);
        if !extra_toml.contains("[limits]") {
            // Tests poll hard from one address; the rate limit has its own test.
            base.push_str("[limits]\nrequests_per_second = 10000.0\nburst = 10000.0\n");
        }
        if !extra_toml.contains("[capacity]") {
            base.push_str("[capacity]\nhost_memory_gib = 64.0\n");
        }
        let config = merge_toml(&base, extra_toml);
        std::fs::write(dir.path().join("marina.toml"), config).unwrap();
        let mut app = TestApp {
            dir,
            url: String::new(),
            token: String::new(),
            nft_table,
            endpoints_mode: mode.into(),
            server: None,
            http: marina_cli::client::http_builder().build().unwrap(),
            data,
            serve_args: serve_args.iter().map(|a| a.to_string()).collect(),
            listening: String::new(),
            extra_env: Vec::new(),
            _ports: ports,
        };
        app.spawn_server(None);
        app.token = std::fs::read_to_string(app.data_dir().join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        app
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// A node's directory (its datadir, socket, pid file and error log).
    pub fn node_dir(&self, node_id: &str) -> PathBuf {
        self.data_dir().join("nodes").join(node_id)
    }

    /// Starts the server process (optionally with a failpoint armed).
    pub fn spawn_server(&mut self, failpoint: Option<&str>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_marina"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config")
            .arg("marina.toml")
            .arg("--endpoints")
            .arg(&self.endpoints_mode)
            .args(&self.serve_args)
            .current_dir(self.dir.path())
            .env("MARINA_LOG", "info,marina_api=debug")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("serve.log"))
                    .unwrap(),
            );
        match failpoint {
            Some(fp) => cmd.env("MARINA_FAILPOINT", fp),
            None => cmd.env_remove("MARINA_FAILPOINT"),
        };
        cmd.env_remove("MARINA_PANICPOINT").env_remove("MARINA_DELAYPOINT");
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("spawn marina serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("marina serve exited before listening").unwrap();
            if let Some(rest) = line.strip_prefix("marina listening on ") {
                self.listening = line.clone();
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.url = url;
        self.server = Some(child);
    }

    /// SIGKILLs the control plane (nodes keep running).
    pub fn kill_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the server to die by itself (a failpoint), up to `timeout`.
    pub fn wait_server_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(c) = self.server.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                self.server = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Restarts the server with `failpoint` armed, sends the request (its answer
    /// may be lost in the crash), waits for the crash, and restarts cleanly.
    pub async fn crash_during(&mut self, failpoint: &str, method: reqwest::Method, path: &str, body: Option<Value>) {
        self.kill_server();
        self.spawn_server(Some(failpoint));
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let _ = req.send().await;
        assert!(
            self.wait_server_exit(Duration::from_secs(180)),
            "failpoint {failpoint} did not fire\n{}",
            self.log()
        );
        self.spawn_server(None);
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None, Some(&self.token.clone()))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body), Some(&self.token.clone()))
            .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, path, None, Some(&self.token.clone()))
            .await
    }

    /// Polls an operation until it ends.
    pub async fn wait_op(&self, op_id: &str, timeout: Duration) -> Value {
        self.wait_op_as(op_id, &self.token.clone(), timeout).await
    }

    /// Polls an operation with another tenant's token.
    pub async fn wait_op_as(&self, op_id: &str, token: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let path = format!("/v1/operations/{op_id}");
            let (status, op) = self.request(reqwest::Method::GET, &path, None, Some(token)).await;
            assert_eq!(status, 200, "{op}");
            if op["status"] == "succeeded" || op["status"] == "failed" {
                return op;
            }
            assert!(start.elapsed() < timeout, "operation {op_id} did not finish: {op}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `PATCH /v1/clusters/{id}` with `body`.
    pub async fn patch_cluster(&self, id: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/clusters/{id}");
        self.request(reqwest::Method::PATCH, &path, Some(body), Some(&self.token.clone()))
            .await
    }

    /// Creates a cluster and waits for it; returns (cluster, admin password).
    pub async fn create_cluster(&self, name: &str, nodes: u32) -> (Value, String) {
        self.create_cluster_with(json!({"name": name, "size_id": "xsmall", "nodes": nodes}))
            .await
    }

    /// Creates a cluster from a full request body and waits for it.
    pub async fn create_cluster_with(&self, request: Value) -> (Value, String) {
        let (status, body) = self.post("/v1/clusters", request).await;
        assert_eq!(status, 202, "{body}");
        let op = self
            .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
            .await;
        assert_eq!(op["status"], "succeeded", "{op}\n{}", self.log());
        let id = body["cluster"]["id"].as_str().unwrap();
        let (_, cluster) = self.get(&format!("/v1/clusters/{id}")).await;
        (cluster, body["credentials"]["password"].as_str().unwrap().to_string())
    }

    /// Deletes a cluster and waits.
    pub async fn delete_cluster(&self, id: &str) -> Value {
        let (status, body) = self.delete(&format!("/v1/clusters/{id}")).await;
        assert_eq!(status, 202, "{body}");
        self.wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
            .await
    }

    /// The `/metrics` text (as the operator).
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Pids of mariadbd processes belonging to this data dir.
    pub fn mariadbd_pids(&self) -> Vec<u32> {
        mariadbd_pids_under(&self.data_dir().join("nodes"))
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_marina"))
            .args(args)
            .env("MARINA_URL", &self.url)
            .env("MARINA_TOKEN", &self.token)
            .output()
            .expect("run marina cli")
    }
}

/// Runs `curl` with `args` (a seed's documented example, its host and
/// credentials replaced) and returns (status, body as JSON, or as a string).
pub async fn curl(args: &[&str]) -> (u16, Value) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("run curl (scripts/install-deps.sh --test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = code.trim().parse().unwrap_or(0);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// mariadbd processes whose option file is under `nodes_dir`.
pub fn mariadbd_pids_under(nodes_dir: &Path) -> Vec<u32> {
    let needle = format!("--defaults-file={}/", nodes_dir.display());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('Z'))
            .unwrap_or(true);
        if !zombie && cmd.split(|b| *b == 0).any(|a| a.starts_with(needle.as_bytes())) {
            pids.push(pid);
        }
    }
    pids.sort();
    pids
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill_server();
        for pid in self.mariadbd_pids() {
            // SAFETY: kill(2) on a pid we identified as our own mariadbd.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table])
            .stderr(Stdio::null())
            .status();
        marina_runtime::cgroup::remove_parent(&self.nft_table);
    }
}

/// A MariaDB connection to `host:port`.
pub async fn mysql(host: &str, port: u16, user: &str, password: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(user.to_string()))
        .pass(Some(password.to_string()))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A write load through an endpoint: every write inserts a unique id and is
/// recorded when the server acknowledged it (with the time of the ack).
pub struct WriteLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(u64, Instant)>>,
}

impl WriteLoad {
    /// Starts writing `app.t (id BIGINT PRIMARY KEY)` rows through `host:port`
    /// (the table must exist). Failed writes are retried with a new id.
    pub fn start(host: &str, port: u16, password: &str) -> WriteLoad {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (host, password, flag) = (host.to_string(), password.to_string(), stop.clone());
        let task = tokio::spawn(async move {
            use mysql_async::prelude::Queryable;
            let mut acked = Vec::new();
            let mut conn: Option<mysql_async::Conn> = None;
            let mut id = 1u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if conn.is_none() {
                    match tokio::time::timeout(Duration::from_secs(2), mysql(&host, port, "admin", &password)).await {
                        Ok(Ok(c)) => conn = Some(c),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().unwrap();
                let this = id;
                id += 1;
                let r = tokio::time::timeout(
                    Duration::from_secs(5),
                    c.exec_drop("INSERT INTO app.t (id) VALUES (?)", (this,)),
                )
                .await;
                match r {
                    Ok(Ok(())) => acked.push((this, Instant::now())),
                    _ => conn = None,
                }
            }
            acked
        });
        WriteLoad { stop, task }
    }

    /// Stops the load; returns the acknowledged ids with their ack times.
    pub async fn stop(self) -> Vec<(u64, Instant)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Samples every node directly (not through an endpoint) every 20 ms and
/// counts the samples in which more than one node accepted a connection and
/// reported `read_only = 0` — two writers. A node cut off at the data path
/// refuses the connection, so it is not a writer.
pub struct WritableSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(usize, usize)>,
}

impl WritableSampler {
    /// Starts sampling the `(host, port)` of every node.
    pub fn start(nodes: Vec<(String, u16)>, password: &str) -> WritableSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, password) = (stop.clone(), password.to_string());
        let task = tokio::spawn(async move {
            use mysql_async::prelude::Queryable;
            let (mut samples, mut double) = (0, 0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let mut writable = 0;
                for (host, port) in &nodes {
                    let probe = async {
                        let mut c = mysql(host, *port, "admin", &password).await.ok()?;
                        let ro: Option<i64> = c.query_first("SELECT @@read_only").await.ok()?;
                        let _ = c.disconnect().await;
                        ro
                    };
                    if let Ok(Some(0)) = tokio::time::timeout(Duration::from_millis(150), probe).await {
                        writable += 1;
                    }
                }
                samples += 1;
                if writable > 1 {
                    double += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (samples, double)
        });
        WritableSampler { stop, task }
    }

    /// Stops sampling: (samples, samples with two or more writable nodes).
    pub async fn stop(self) -> (usize, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// The largest gap between consecutive acknowledgements, and from the last
/// one to `stopped` (when the load was stopped): writes that never resume
/// are a pause as long as the rest of the run, not none.
pub fn longest_pause(acked: &[(u64, Instant)], stopped: Instant) -> Duration {
    let Some(last) = acked.last() else {
        return Duration::MAX;
    };
    acked
        .windows(2)
        .map(|w| w[1].1.duration_since(w[0].1))
        .chain([stopped.saturating_duration_since(last.1)])
        .max()
        .unwrap_or_default()
}

mod cluster;
pub mod fleet;
pub mod netns;
#[allow(unused_imports)]
pub use cluster::*;

#[path = "../../../marina-backup/tests/support/moto.rs"]
mod moto;
#[allow(unused_imports)]
pub use moto::S3Server;

/// A `marina agent` process of a test, killed on drop with every mariadbd
/// under its directory (even when the test fails).
pub struct AgentProc {
    pub child: std::process::Child,
    pub dir: PathBuf,
    /// Lines it printed so far.
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl AgentProc {
    /// Starts `marina agent` with `args` (and `env`), serving under `dir`
    /// on `listen` (`127.0.0.1:0`: any loopback port); returns once it
    /// serves, with its port.
    pub fn spawn(dir: &Path, listen: &str, args: &[&str], env: &[(&str, &str)]) -> (AgentProc, u16) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_marina"));
        cmd.arg("agent")
            .args(args)
            .arg("--dir")
            .arg(dir)
            .args([
                "--listen",
                listen,
                "--template-cache",
                TEMPLATE_CACHE,
                "--cgroup-parent",
                "",
                // In the root namespace: no endpoints (no table, no forwarding).
                "--endpoints",
                "none",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run marina agent");
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(port) = line
                        .split("serving on https://")
                        .nth(1)
                        .and_then(|a| a.split_whitespace().next())
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        let _ = tx.send(port);
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let agent = AgentProc {
            child,
            dir: dir.to_path_buf(),
            lines,
        };
        let port = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the agent did not serve: {:?}", agent.lines.lock().unwrap()));
        (agent, port)
    }

    /// SIGKILL (its nodes keep running).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, leaving its nodes running for the agent that follows
    /// (whose drop removes them).
    pub fn kill_leaving_nodes(mut self) {
        self.kill();
        std::mem::forget(self);
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
        for pid in mariadbd_pids_under(&self.dir.join("nodes")) {
            // SAFETY: kill(2) on a mariadbd of this agent's directory.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}
