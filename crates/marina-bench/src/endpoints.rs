//! `marina-bench endpoints [--seconds N] [--rounds N]`: what each data path
//! costs a client, against a direct connection to the primary.
//!
//! Four paths to the same primary: direct, the kernel writer endpoint,
//! Marina's userspace proxy and HAProxy (TCP mode). Three loads, each run
//! `--seconds` (5) per path, the paths taking turns in a rotating order
//! within each of `--rounds` (3) rounds:
//! - `sysbench oltp_point_select`, 8 threads, persistent connections;
//! - a connection per query (what PHP, serverless functions and recycling
//!   pools do): 8 clients each connecting, running one point select and
//!   quitting, as fast as they go;
//! - the same at a fixed 100 queries/s (open loop), for each path's p99
//!   latency above the direct path's median p99.
//!
//! Targets on both throughput loads: kernel ≥ 0.9 x direct, userspace ≥
//! 1.2 x HAProxy.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::cluster::{conn, primary, wait_all_active};
use crate::common::{Bench, arg_value, free_port};
use crate::figures::{Figure, Target, record};

/// sysbench oltp_point_select for `secs` against host:port → queries per second.
fn sysbench(host: &str, port: u16, pw: &str, secs: usize, cmd: &str) -> anyhow::Result<f64> {
    let out = std::process::Command::new("sysbench")
        .args([
            "oltp_point_select",
            "--db-driver=mysql",
            &format!("--mysql-host={host}"),
            &format!("--mysql-port={port}"),
            "--mysql-user=admin",
            &format!("--mysql-password={pw}"),
            "--mysql-db=sbtest",
            "--tables=1",
            "--table-size=10000",
            "--threads=8",
            &format!("--time={secs}"),
            "--report-interval=0",
            cmd,
        ])
        .output()
        .context("running sysbench (scripts/install-deps.sh --bench installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("sysbench {cmd} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if cmd != "run" {
        return Ok(0.0);
    }
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("queries:"))
        .context("sysbench printed no queries line")?;
    let per_sec = line
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .context("unparsable sysbench line")?;
    Ok(per_sec.parse()?)
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let secs = arg_value(args, "--seconds", 5).max(1);
    let rounds = arg_value(args, "--rounds", 3).max(1);
    let scratch = tempfile::Builder::new().prefix("marina-bench-endpoints-").tempdir()?;
    let mut bench = Bench::start(scratch.path().join("marina"), |_| {}).await?;
    let api = &bench.api;
    let created = api
        .call(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "ep", "size_id": "small", "nodes": 1})),
        )
        .await?;
    api.wait_op(created["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    let id = created["cluster"]["id"].as_str().unwrap_or_default().to_string();
    let pw = created["credentials"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let c = wait_all_active(api, &id).await?;
    let (wh, wp) = (
        c["endpoints"]["writer"]["host"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        3306u16,
    );
    let mut admin = conn(&wh, wp, &pw).await.context("writer endpoint")?;
    admin.query_drop("CREATE DATABASE sbtest").await?;
    drop(admin);
    let pport = primary(&c)["port"].as_u64().unwrap_or_default() as u16;
    sysbench(&wh, wp, &pw, secs, "prepare")?;
    if bench.app.datapath.kind() != "kernel" {
        bail!("the kernel data path is unavailable here (nftables): the benchmark needs it");
    }
    // Marina's userspace proxy (the same code the userspace mode runs).
    let proxy = marina_endpoints::ProxyDataPath::new();
    let uport = free_port()?;
    let listen: std::net::SocketAddrV4 = format!("127.0.0.1:{uport}").parse()?;
    use marina_endpoints::DataPath;
    proxy
        .apply(&marina_endpoints::EndpointPlan {
            routes: vec![marina_endpoints::Route {
                listen,
                backends: vec![format!("127.0.0.1:{pport}").parse()?],
                exclusive: true,
                allowed: marina_endpoints::loopback_only(),
            }],
            ..Default::default()
        })
        .await?;
    // HAProxy in TCP mode in front of the same primary.
    let hport = free_port()?;
    let cfg = scratch.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\n\
             listen mariadb\n  bind 127.0.0.1:{hport}\n  server primary 127.0.0.1:{pport}\n"
        ),
    )?;
    let mut haproxy = tokio::process::Command::new("haproxy")
        .arg("-f")
        .arg(&cfg)
        .arg("-db")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("running haproxy (scripts/install-deps.sh --bench installs it)")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "# endpoints benchmark: sysbench oltp_point_select, 8 threads, {secs} s per run, {rounds} rounds, MariaDB {}",
        bench.app.runtime.default_version()
    );
    let paths: [(&str, &str, u16); 4] = [
        ("direct", "127.0.0.1", pport),
        ("kernel", &wh, wp),
        ("userspace", "127.0.0.1", uport),
        ("haproxy", "127.0.0.1", hport),
    ];
    let mut qps: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        // A rotating order, so drift on a noisy machine favours no path.
        for k in 0..paths.len() {
            let i = (k + round) % paths.len();
            let (_, host, port) = paths[i];
            qps[i].push(sysbench(host, port, &pw, secs, "run")?);
        }
    }
    // The same paths, a new connection per query: closed loop (8 clients
    // as fast as they go), then open loop at a fixed rate for latency.
    let mut cpq: [Vec<f64>; 4] = Default::default();
    let mut p99: [Vec<f64>; 4] = Default::default();
    let mut errors = [0u64; 4];
    for round in 0..rounds {
        for k in 0..paths.len() {
            let i = (k + round) % paths.len();
            let (_, host, port) = paths[i];
            let (q, e1) = connection_per_query(host, port, &pw, secs).await?;
            let (l, e2) = fixed_rate_p99(host, port, &pw, secs).await?;
            cpq[i].push(q);
            p99[i].push(l);
            errors[i] += e1 + e2;
        }
    }
    haproxy.kill().await.ok();
    for (i, (name, _, _)) in paths.iter().enumerate() {
        println!(
            "{name}: {} failed connection(s) in the connection-per-query loads",
            errors[i]
        );
    }
    figures(qps, "persistent connections", "queries/s");
    figures(cpq, "a connection per query", "queries/s");
    let direct_p99 = Figure::new("direct", "ms", p99[0].clone()).median();
    for (i, (name, _, _)) in paths.iter().enumerate() {
        let added: Vec<f64> = p99[i].iter().map(|v| v - direct_p99).collect();
        record(Figure::new(
            format!("{name}: added p99 latency, a connection per query at {RATE}/s"),
            "ms",
            added,
        ));
    }
    bench.stop().await;
    Ok(())
}

/// The four paths' figures for one load (direct, kernel, userspace,
/// haproxy, in that order), with their targets.
fn figures(runs: [Vec<f64>; 4], load: &str, unit: &'static str) {
    let [direct, kernel, userspace, hap] = runs;
    let direct = record(Figure::new(format!("direct to the primary ({load})"), unit, direct));
    let hap = record(Figure::new(format!("haproxy tcp ({load})"), unit, hap).against(&direct));
    record(
        Figure::new(format!("kernel writer endpoint ({load})"), unit, kernel)
            .against(&direct)
            .target(Target::ratio_at_least(0.9)),
    );
    record(
        Figure::new(format!("userspace proxy endpoint ({load})"), unit, userspace)
            .against(&hap)
            .target(Target::ratio_at_least(1.2)),
    );
}

/// Clients of the connection-per-query load.
const CLIENTS: usize = 8;
/// Queries per second of the fixed-rate load.
const RATE: u32 = 100;

/// One query on a connection of its own: connect, point select, quit.
async fn one_query(host: &str, port: u16, pw: &str) -> anyhow::Result<()> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some("admin"))
        .pass(Some(pw.to_string()))
        .prefer_socket(false);
    let mut c = tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts))
        .await
        .with_context(|| format!("connecting to {host}:{port}: timed out"))?
        .with_context(|| format!("connecting to {host}:{port}"))?;
    let _: Option<u64> = c.query_first("SELECT id FROM sbtest.sbtest1 WHERE id = 1").await?;
    c.disconnect().await?;
    Ok(())
}

/// `CLIENTS` clients each opening a connection per query for `secs`:
/// successful queries per second, and how many failed (this machine's
/// ephemeral ports run short after a few hundred thousand connections in
/// TIME_WAIT; a failure is counted and reported, never retried).
async fn connection_per_query(host: &str, port: u16, pw: &str, secs: usize) -> anyhow::Result<(f64, u64)> {
    let until = Instant::now() + Duration::from_secs(secs as u64);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (host, pw) = (host.to_string(), pw.to_string());
        set.spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < until {
                match one_query(&host, port, &pw).await {
                    Ok(()) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (o, f) = r?;
        ok += o;
        failed += f;
    }
    Ok((ok as f64 / secs as f64, failed))
}

/// Opens a connection per query at `RATE` per second for `secs` (each
/// started on schedule, whatever the previous ones do): the p99 of the
/// successful ones' latencies in ms, and how many failed.
async fn fixed_rate_p99(host: &str, port: u16, pw: &str, secs: usize) -> anyhow::Result<(f64, u64)> {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / RATE);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..RATE as usize * secs {
        tick.tick().await;
        let (host, pw) = (host.to_string(), pw.to_string());
        set.spawn(async move {
            let t = Instant::now();
            one_query(&host, port, &pw)
                .await
                .map(|()| t.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let (mut lat, mut failed) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        match r? {
            Ok(ms) => lat.push(ms),
            Err(_) => failed += 1,
        }
    }
    Ok((crate::figures::quantile(&lat, 0.99), failed))
}
