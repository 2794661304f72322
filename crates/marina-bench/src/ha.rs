//! `marina-bench ha`: failover RTO, switchover write pause, endpoint throughput
//! and monitor CPU, all from one run on this machine.
//!
//! - RTO: `kill -9` of the primary → first acknowledged write through the
//!   writer endpoint (one writer, each write a unique id), over `--trials` runs.
//! - Switchover pause: the longest gap between acknowledged writes while a
//!   switchover runs, over `--trials` runs.
//! - Throughput: `sysbench oltp_point_select` (8 threads, `--seconds` each,
//!   `--rounds` interleaved rounds, medians)
//!   through the kernel writer endpoint and through Marina's userspace proxy,
//!   against a direct connection to the primary and against HAProxy (TCP mode)
//!   in front of the same primary.
//! - Monitor CPU: process CPU time per probe over many probes of the nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

use crate::common::{Api, Bench, arg_value, free_port, median, report, spread};

pub(crate) async fn conn(host: &str, port: u16, pw: &str) -> Option<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some("admin"))
        .pass(Some(pw.to_string()))
        .prefer_socket(false);
    tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts))
        .await
        .ok()?
        .ok()
}

/// One writer through the endpoint; returns ack times.
pub(crate) fn start_load(
    host: String,
    port: u16,
    pw: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Instant>> {
    tokio::spawn(async move {
        let mut acks = Vec::new();
        let mut c: Option<mysql_async::Conn> = None;
        let mut id: u64 = rand_start();
        while !stop.load(Ordering::Relaxed) {
            if c.is_none() {
                c = conn(&host, port, &pw).await;
                if c.is_none() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            }
            id += 1;
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                c.as_mut()
                    .unwrap()
                    .exec_drop("INSERT INTO bench.t (id) VALUES (?)", (id,)),
            )
            .await;
            match r {
                Ok(Ok(())) => acks.push(Instant::now()),
                _ => c = None,
            }
        }
        acks
    })
}

/// Runs `request` (an operation) under a single-writer load; returns the
/// longest gap between acknowledged writes around it, in ms, and the operation.
pub(crate) async fn pause_during(
    api: &Api,
    host: &str,
    port: u16,
    pw: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<(f64, serde_json::Value)> {
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(host.to_string(), port, pw.to_string(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let accepted = api.call(method, path, Some(body)).await?;
    let op = api
        .wait_op(accepted["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    let ended = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acks = load.await?;
    if op["status"] != "succeeded" {
        bail!("{path} failed: {op}");
    }
    let pause = acks
        .windows(2)
        .filter(|w| w[1] >= started && w[0] <= ended + Duration::from_millis(300))
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    Ok((pause.as_secs_f64() * 1000.0, op))
}

fn rand_start() -> u64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        % 1_000_000_000) as u64
        * 1000
}

pub(crate) fn primary(c: &Value) -> Value {
    c["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|n| n["role"] == "primary")
        .unwrap_or(Value::Null)
}

pub(crate) async fn wait_all_active(api: &Api, id: &str) -> anyhow::Result<Value> {
    let start = Instant::now();
    loop {
        let c = api
            .call(reqwest::Method::GET, &format!("/v1/clusters/{id}"), None)
            .await?;
        let all = c["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().all(|n| n["status"] == "active"));
        if c["status"] == "active" && all {
            return Ok(c);
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("cluster did not become active again: {c}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn failovers(api: &Api, id: &str) -> anyhow::Result<usize> {
    let ops = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/clusters/{id}/operations?limit=500"),
            None,
        )
        .await?;
    Ok(ops["data"]
        .as_array()
        .map(|a| a.iter().filter(|o| o["type"] == "failover").count())
        .unwrap_or(0))
}

fn pid_of(data: &std::path::Path, node_id: &str) -> anyhow::Result<i32> {
    let p = data.join("nodes").join(node_id).join("mariadbd.pid");
    Ok(std::fs::read_to_string(&p)
        .with_context(|| p.display().to_string())?
        .trim()
        .parse()?)
}

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

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let trials = arg_value(args, "--trials", 10).max(1);
    let secs = arg_value(args, "--seconds", 5).max(1);
    let scratch = tempfile::Builder::new().prefix("marina-bench-ha-").tempdir()?;
    let data = scratch.path().join("marina");
    let mut bench = Bench::start(data.clone(), |c| {
        c.failover.limit = 1000;
        c.failover.min_interval_secs = 0;
    })
    .await?;
    let api = &bench.api;
    let created = api
        .call(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "ha", "size_id": "small", "nodes": 3})),
        )
        .await?;
    api.wait_op(created["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    let id = created["cluster"]["id"].as_str().unwrap_or_default().to_string();
    let pw = created["credentials"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut c = wait_all_active(api, &id).await?;
    let (wh, wp) = (
        c["endpoints"]["writer"]["host"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        3306u16,
    );
    let mut admin = conn(&wh, wp, &pw).await.context("writer endpoint")?;
    admin.query_drop("CREATE DATABASE bench").await?;
    admin.query_drop("CREATE TABLE bench.t (id BIGINT PRIMARY KEY)").await?;
    admin.query_drop("CREATE DATABASE sbtest").await?;
    drop(admin);
    println!(
        "# HA benchmark: MariaDB {}, endpoints {}, {trials} trials",
        bench.app.runtime.default_version(),
        bench.app.datapath.kind()
    );

    // Failover RTO.
    let mut rtos = Vec::new();
    for i in 0..trials {
        let stop = Arc::new(AtomicBool::new(false));
        let load = start_load(wh.clone(), wp, pw.clone(), stop.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = failovers(api, &id).await?;
        let p = primary(&c);
        let killed = Instant::now();
        // SAFETY: kill(2) on the primary mariadbd this benchmark started.
        unsafe {
            libc::kill(pid_of(&data, p["id"].as_str().unwrap_or_default())?, libc::SIGKILL);
        }
        while failovers(api, &id).await? == before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c = wait_all_active(api, &id).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        let acks = load.await?;
        let after = killed + Duration::from_millis(5);
        let rto = acks
            .iter()
            .find(|t| **t > after)
            .map(|t| t.duration_since(killed))
            .context("no write after failover")?;
        eprintln!("trial {i}: RTO {rto:?}");
        rtos.push(rto.as_secs_f64() * 1000.0);
    }
    let (min, med, max) = spread(rtos);
    println!(
        "failover RTO min/median/max: {min:.0}/{med:.0}/{max:.0} ms ({:.2} x target median 1000 ms; max {:.2} x 2000 ms)",
        med / 1000.0,
        max / 2000.0
    );

    // Switchover pause.
    let mut pauses = Vec::new();
    let switchover = format!("/v1/clusters/{id}/switchover");
    for _ in 0..trials {
        let (pause, _) = pause_during(api, &wh, wp, &pw, reqwest::Method::POST, &switchover, json!({})).await?;
        pauses.push(pause);
        c = wait_all_active(api, &id).await?;
    }
    let (min, med, max) = spread(pauses);
    println!(
        "switchover write pause min/median/max: {min:.0}/{med:.0}/{max:.0} ms ({:.2} x target median 300 ms)",
        med / 300.0
    );

    // Endpoint throughput.
    let p = primary(&c);
    let pport = p["port"].as_u64().unwrap_or_default() as u16;
    sysbench(&wh, wp, &pw, secs, "prepare")?;
    let kernel_available = bench.app.datapath.kind() == "kernel";
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
    // Interleaved rounds so drift on a noisy machine hits every path alike.
    let rounds = arg_value(args, "--rounds", 3).max(1);
    let (mut direct, mut kernel, mut userspace, mut hap) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        direct.push(sysbench("127.0.0.1", pport, &pw, secs, "run")?);
        if kernel_available {
            kernel.push(sysbench(&wh, wp, &pw, secs, "run")?);
        }
        userspace.push(sysbench("127.0.0.1", uport, &pw, secs, "run")?);
        hap.push(sysbench("127.0.0.1", hport, &pw, secs, "run")?);
    }
    haproxy.kill().await.ok();
    let (direct, userspace, hap) = (median(direct), median(userspace), median(hap));
    println!(
        "direct to primary (sysbench oltp_point_select, 8 threads, median of {rounds}): {direct:.0} queries/s (1.00 x direct)"
    );
    if kernel_available {
        report("kernel writer endpoint", median(kernel), "queries/s", direct, "direct");
    } else {
        println!("kernel writer endpoint: not measured (nftables unavailable)");
    }
    report("userspace proxy endpoint", userspace, "queries/s", hap, "haproxy");
    report("haproxy tcp", hap, "queries/s", direct, "direct");

    // Monitor CPU per probe (control plane stopped, so only probes run).
    let secrets_nodes: Vec<Value> = c["nodes"].as_array().cloned().unwrap_or_default();
    bench.stop().await;
    let app = marina_core::Marina::open(marina_core::Config {
        data_dir: data.clone(),
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let per_probe = probe_cpu(&app, &secrets_nodes).await?;
    let cores_for_1000 = per_probe.as_secs_f64() * 1000.0 * 4.0;
    println!(
        "monitor CPU per probe: {:.1} µs (1000 nodes every 250 ms = {cores_for_1000:.2} cores; {:.2} x the 1-core budget)",
        per_probe.as_secs_f64() * 1e6,
        cores_for_1000
    );

    drop(bench); // kills the nodes and removes the endpoint table
    Ok(())
}

async fn probe_cpu(app: &marina_core::Marina, nodes: &[Value]) -> anyhow::Result<Duration> {
    let rounds = 2000usize;
    let mut conns = Vec::new();
    for n in nodes {
        conns.push(
            app.probe_conn_for(n["id"].as_str().unwrap_or_default())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    for c in conns.iter_mut() {
        c.probe(Duration::from_secs(1)).await?; // connect first
    }
    let start = cpu_time();
    for _ in 0..rounds {
        for c in conns.iter_mut() {
            c.probe(Duration::from_secs(1)).await?;
        }
    }
    Ok((cpu_time() - start) / (rounds * conns.len()) as u32)
}
