//! Marina benchmarks. `cargo run --release -p marina-bench -- provision` measures,
//! in one run on this machine:
//! - the floor: one raw `mariadb-install-db` plus one `mariadbd` start until it
//!   answers the MySQL handshake (median of `--floor-runs`);
//! - `POST /v1/clusters` → operation succeeded for 1-node and 3-node semisync
//!   clusters (median of `--runs`, each deleted afterwards), through an in-process
//!   control plane with a fresh data dir and a warm template;
//!
//! and prints each as `name: value unit (ratio x baseline)`.

mod backup;
mod common;
mod ha;
mod nodes;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{Bench, arg_value, free_port, median};
use tokio::io::AsyncReadExt;

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

    let mut bench = Bench::start(scratch.path().join("marina"), |c| c.nodes.reconcile_interval_ms = 1000).await?;
    let (app, api) = (bench.app.clone(), &bench.api);
    let datapath = app.datapath.kind();
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
    bench.stop().await;
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
        Some("ha") => ha::run(&args[1..]).await,
        Some("backup") => backup::run(&args[1..]).await,
        Some("nodes") => nodes::run(&args[1..]).await,
        _ => {
            eprintln!(
                "usage: marina-bench provision [--runs N] [--floor-runs N]\n       marina-bench ha [--trials N] [--seconds N]\n       marina-bench backup [--size-mib N] [--seconds N] [--rounds N]\n       marina-bench nodes [--size-mib N] [--rounds N] [--trials N]"
            );
            std::process::exit(2);
        }
    }
}
