//! `marina-bench provision [--runs N]`: how long `POST /v1/clusters` takes to
//! an active cluster, against two floors measured in the same run:
//! - **raw**: `mariadb-install-db` into an empty dir, then `mariadbd` started
//!   until it sends the MySQL handshake (what a hand-made server costs);
//! - **template** (like for like): a sparse copy of Marina's own template
//!   datadir (the one its nodes are cloned from), then the same `mariadbd`
//!   start — the work a node cannot avoid; for one node, and for three at
//!   once (what a 3-node cluster cannot avoid).
//!
//! Each round takes one of each (raw floor, template floors, 1-node create,
//! 3-node create), in reverse order every other round so neither side
//! always finds the warmer cache; `--runs` (5) rounds. Clusters are deleted
//! after each create. Target: a 3-node semisync create ≤ 1.5 x the 3-node
//! template floor.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;

use crate::common::{Bench, arg_value, free_port};
use crate::figures::{Figure, Target, record};

/// Starts `mariadbd` on `datadir` until it sends its handshake; returns
/// when it did (the server is killed afterwards).
async fn start_to_ready(dir: &Path, datadir: &Path) -> anyhow::Result<()> {
    let port = free_port()?;
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
    let start = Instant::now();
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
    child.kill().await.ok();
    let _ = child.wait().await;
    Ok(())
}

/// Raw floor: `mariadb-install-db` + start-to-ready, in ms.
async fn raw_floor(dir: &Path) -> anyhow::Result<f64> {
    let datadir = dir.join("data");
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
    start_to_ready(dir, &datadir).await?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// Like-for-like floor: `nodes` sparse copies of the template, each started
/// to ready, all at once; ms until the last is ready.
async fn template_floor(dir: &Path, template: &Path, nodes: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..nodes {
        let (dir, template) = (dir.join(format!("n{i}")), template.to_path_buf());
        set.spawn(async move {
            std::fs::create_dir_all(&dir)?;
            let datadir = dir.join("data");
            marina_runtime::template::sparse_copy(&template, &datadir).await?;
            start_to_ready(&dir, &datadir).await
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let runs = arg_value(args, "--runs", 5).max(1);
    let scratch = tempfile::Builder::new().prefix("marina-bench-").tempdir()?;
    let data = scratch.path().join("marina");
    let mut bench = Bench::start(data.clone(), |c| c.nodes.reconcile_interval_ms = 1000).await?;
    let (app, api) = (bench.app.clone(), &bench.api);
    let version = app.runtime.default_version().to_string();
    // Warm-up: builds the version's template once (like a first start does).
    api.create_once("warmup", 1).await?;
    let template = data.join("templates").join(&version).join("data");
    if !template.is_dir() {
        bail!("no template at {}", template.display());
    }
    let (mut raw, mut tmpl1, mut tmpl3) = (Vec::new(), Vec::new(), Vec::new());
    let (mut one, mut three) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let floors = async |raw: &mut Vec<f64>, t1: &mut Vec<f64>, t3: &mut Vec<f64>| -> anyhow::Result<()> {
            let d = scratch.path().join(format!("floor{i}"));
            for which in [0, 1, 3] {
                let _ = std::fs::remove_dir_all(&d);
                std::fs::create_dir_all(&d)?;
                match which {
                    0 => raw.push(raw_floor(&d).await?),
                    1 => t1.push(template_floor(&d, &template, 1).await?),
                    _ => t3.push(template_floor(&d, &template, 3).await?),
                }
            }
            let _ = std::fs::remove_dir_all(&d);
            Ok(())
        };
        if i % 2 == 0 {
            floors(&mut raw, &mut tmpl1, &mut tmpl3).await?;
            one.push(api.create_once(&format!("one{i}"), 1).await?);
            three.push(api.create_once(&format!("three{i}"), 3).await?);
        } else {
            three.push(api.create_once(&format!("three{i}"), 3).await?);
            one.push(api.create_once(&format!("one{i}"), 1).await?);
            floors(&mut raw, &mut tmpl1, &mut tmpl3).await?;
        }
    }
    println!(
        "# provision benchmark: {runs} rounds, endpoints: {}, MariaDB {version}; raw floor = mariadb-install-db + \
         mariadbd start-to-ready; template floor = sparse copy of Marina's template + mariadbd start-to-ready",
        app.datapath.kind(),
    );
    let raw = record(Figure::new("raw floor", "ms", raw));
    let tmpl1 = record(Figure::new("template floor, 1 node", "ms", tmpl1));
    let tmpl3 = record(Figure::new("template floor, 3 nodes at once", "ms", tmpl3));
    record(Figure::new("create 1-node cluster -> active", "ms", one).against(&tmpl1));
    record(Figure::new("create 3-node semisync cluster -> active", "ms", three.clone()).against(&raw));
    record(
        Figure::new("create 3-node semisync cluster -> active", "ms", three)
            .against(&tmpl3)
            .target(Target::ratio_at_most(1.5)),
    );
    bench.stop().await;
    Ok(())
}
