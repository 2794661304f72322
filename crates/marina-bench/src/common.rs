//! Helpers shared by the benchmarks: an in-process control plane, a small API
//! client, argument parsing and free ports.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub fn arg_value<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Api {
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
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

    pub async fn wait_op(&self, id: &str) -> anyhow::Result<Value> {
        self.wait_op_every(id, Duration::from_millis(5)).await
    }

    /// Waits for an operation, asking every `every` (5 ms times an
    /// operation closely; a load measured meanwhile wants fewer requests).
    pub async fn wait_op_every(&self, id: &str, every: Duration) -> anyhow::Result<Value> {
        loop {
            let op = self
                .call(reqwest::Method::GET, &format!("/v1/operations/{id}"), None)
                .await?;
            match op["status"].as_str() {
                Some("succeeded") => return Ok(op),
                Some("failed") => bail!("operation failed: {op}"),
                _ => tokio::time::sleep(every).await,
            }
        }
    }

    /// Create → active in ms, then delete.
    pub async fn create_once(&self, name: &str, nodes: u32) -> anyhow::Result<f64> {
        let start = Instant::now();
        let body = json!({"name": name, "size_id": "xsmall", "nodes": nodes, "replication": "semisync"});
        let created = self.call(reqwest::Method::POST, "/v1/clusters", Some(body)).await?;
        self.wait_op(created["operation"]["id"].as_str().unwrap_or_default())
            .await?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        self.delete_cluster(created["cluster"]["id"].as_str().unwrap_or_default())
            .await?;
        Ok(ms)
    }

    /// Deletes a cluster and waits until it is gone.
    pub async fn delete_cluster(&self, id: &str) -> anyhow::Result<()> {
        let del = self
            .call(reqwest::Method::DELETE, &format!("/v1/clusters/{id}"), None)
            .await?;
        self.wait_op(del["operation"]["id"].as_str().unwrap_or_default())
            .await?;
        Ok(())
    }
}

/// An in-process Marina on a scratch data dir, clear of any Marina serving on
/// this host (own nftables table, endpoint pools and node ports).
pub struct Bench {
    /// The data dir (its node processes are killed on drop).
    data_dir: std::path::PathBuf,
    /// The nftables table (deleted on drop).
    nft_table: String,
    pub app: std::sync::Arc<marina_core::Marina>,
    pub api: Api,
    cancel: tokio_util::sync::CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Bench {
    pub async fn start(
        data_dir: std::path::PathBuf,
        tweak: impl FnOnce(&mut marina_core::Config),
    ) -> anyhow::Result<Bench> {
        let mut config = marina_core::Config {
            data_dir: data_dir.clone(),
            ..Default::default()
        };
        config.endpoints.nft_table = format!("marina_bench_{}", std::process::id());
        config.nodes.cgroup_parent = config.endpoints.nft_table.clone();
        config.endpoints.writer_pool = "127.251.0.0/24".parse()?;
        config.endpoints.reader_pool = "127.252.0.0/24".parse()?;
        config.nodes.port_min = 45000;
        config.nodes.port_max = 45999;
        // The benchmark polls operations every few milliseconds.
        config.limits.requests_per_second = 1e6;
        config.limits.burst = 1e6;
        tweak(&mut config);
        let nft_table = config.endpoints.nft_table.clone();
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
        let c2 = cancel.clone();
        let server = tokio::spawn(marina_api::serve(app.clone(), listener, None, async move {
            c2.cancelled().await
        }));
        Ok(Bench {
            data_dir,
            nft_table,
            app,
            api: Api {
                url,
                token,
                http: marina_cli::client::http_builder().build().unwrap(),
            },
            cancel,
            tasks,
            server,
        })
    }

    /// Stops the control plane (nodes keep running until the bench is dropped)
    /// and removes its endpoints.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        let _ = (&mut self.server).await;
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let _ = marina_core::supervisor::clear_endpoints(&self.app).await;
    }
}

impl Drop for Bench {
    /// Whatever happened (an error return included), leave no node process or
    /// nftables table behind: kill by pid every mariadbd of this data dir.
    fn drop(&mut self) {
        // Stop the control plane's tasks first: a supervisor still running
        // would restart the nodes killed below and re-create the table.
        self.cancel.cancel();
        for t in &self.tasks {
            t.abort();
        }
        self.server.abort();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let needle = format!("--defaults-file={}/", self.data_dir.join("nodes").display());
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if cmd.split(|b| *b == 0).any(|a| a.starts_with(needle.as_bytes())) {
                    // SAFETY: kill(2) on a mariadbd this benchmark started.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table])
            .stderr(std::process::Stdio::null())
            .status();
        marina_runtime::cgroup::remove_parent(&self.nft_table);
    }
}
