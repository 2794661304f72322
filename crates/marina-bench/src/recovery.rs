//! `marina-bench recovery [--trials N]`: how long clients cannot write when
//! the primary fails, and how long a switchover holds writes.
//!
//! A 3-node `small` cluster, one writer inserting through the writer
//! endpoint for the whole benchmark (each acknowledged write timed). For
//! each fault kind, `--trials` (10) times: wait until every node is active,
//! inject the fault, wait until every node is active again. A trial's RTO is
//! the longest gap between consecutive acknowledged writes from the last one
//! before the fault to the first one after the cluster was whole again —
//! not "fault → first acknowledgement", which a write already in flight can
//! make read near zero. Kinds:
//! - `kill -9` of the primary's `mariadbd`;
//! - `SIGSTOP` of the primary for 3 s, then `SIGCONT` (it rejoins fenced);
//! - a partition of the primary from everyone for 3 s: nftables drops every
//!   packet to and from its port, and its management socket is hidden from
//!   Marina (as `tests/chaos.rs` does).
//!
//! The switchover pause is the same gap around `POST …/switchover`.
//! Targets: median ≤ 1 s and max ≤ 2 s per fault kind; switchover pause
//! median ≤ 300 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

use crate::cluster::{conn, primary, wait_all_active};
use crate::common::{Bench, arg_value};
use crate::figures::{Figure, Target, record};

#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill,
    Stop,
    Partition,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "RTO kill -9 of the primary",
            Fault::Stop => "RTO SIGSTOP of the primary for 3 s",
            Fault::Partition => "RTO partition of the primary for 3 s",
        }
    }
}

/// Acknowledged writes through one endpoint, timed, until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    acks: Arc<std::sync::Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(host: String, port: u16, pw: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acks.clone());
        let task = tokio::spawn(async move {
            let mut c: Option<mysql_async::Conn> = None;
            let mut id = 0u64;
            while !s.load(Ordering::Relaxed) {
                let Some(conn_) = c.as_mut() else {
                    c = conn(&host, port, &pw).await;
                    if c.is_none() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    continue;
                };
                id += 1;
                let write = conn_.exec_drop("INSERT INTO bench.t (id) VALUES (?)", (id,));
                match tokio::time::timeout(Duration::from_secs(5), write).await {
                    Ok(Ok(())) => a.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now()),
                    _ => c = None,
                }
            }
        });
        Writer { stop, acks, task }
    }

    /// The longest gap between consecutive acknowledgements from the last one
    /// at or before `from` to the first one after `to`, in ms.
    fn gap(&self, from: Instant, to: Instant) -> f64 {
        let acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        longest_gap(&acks, from, to).as_secs_f64() * 1000.0
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

/// See `Writer::gap`.
fn longest_gap(acks: &[Instant], from: Instant, to: Instant) -> Duration {
    let first = acks.iter().rposition(|a| *a <= from).unwrap_or(0);
    let last = acks
        .iter()
        .position(|a| *a > to)
        .unwrap_or(acks.len().saturating_sub(1));
    acks.get(first..=last.max(first))
        .unwrap_or_default()
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default()
}

/// An nftables table dropping every TCP packet to or from a port; removed
/// on drop.
struct Partition(String);

impl Partition {
    fn port(port: u16) -> anyhow::Result<Partition> {
        let table = format!("marina_bench_cut_{}", std::process::id());
        let script = format!(
            "table ip {table} {{\n  chain out {{\n    type filter hook output priority -10; policy accept;\n    \
             tcp dport {port} drop\n    tcp sport {port} drop\n  }}\n}}\n"
        );
        let path = std::env::temp_dir().join(format!("{table}.nft"));
        std::fs::write(&path, script)?;
        let out = std::process::Command::new("nft").arg("-f").arg(&path).output()?;
        let _ = std::fs::remove_file(&path);
        if !out.status.success() {
            bail!("nft: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Partition(table))
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.0])
            .output();
    }
}

/// Hides a node's management socket from Marina and ends Marina's sessions
/// on it; the returned guard puts the socket back.
struct Hidden {
    sock: std::path::PathBuf,
    hidden: std::path::PathBuf,
}

impl Hidden {
    fn node(dir: &std::path::Path) -> anyhow::Result<Hidden> {
        let sock = dir.join("mariadbd.sock");
        let hidden = sock.with_extension("hidden");
        std::fs::rename(&sock, &hidden)?;
        let kill = "SELECT GROUP_CONCAT(CONCAT('KILL ', ID, ';') SEPARATOR ' ') FROM \
                    information_schema.PROCESSLIST WHERE USER = 'marina_mgmt'";
        let out = std::process::Command::new("mariadb")
            .args(["-uroot", "-S", &hidden.display().to_string(), "-N", "-e", kill])
            .output()?;
        let stmts = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !stmts.is_empty() && stmts != "NULL" {
            let _ = std::process::Command::new("mariadb")
                .args(["-uroot", "-S", &hidden.display().to_string(), "-e", &stmts])
                .output();
        }
        Ok(Hidden { sock, hidden })
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        let _ = std::fs::rename(&self.hidden, &self.sock);
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a mariadbd this benchmark started.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn pid_of(dir: &std::path::Path) -> anyhow::Result<i32> {
    let p = dir.join("mariadbd.pid");
    Ok(std::fs::read_to_string(&p)
        .with_context(|| p.display().to_string())?
        .trim()
        .parse()?)
}

async fn inject(bench: &Bench, c: &Value, fault: Fault) -> anyhow::Result<()> {
    let p = primary(c);
    let dir = bench.app.runtime.node_dir(p["id"].as_str().unwrap_or_default());
    match fault {
        Fault::Kill => signal(pid_of(&dir)?, libc::SIGKILL),
        Fault::Stop => {
            let pid = pid_of(&dir)?;
            signal(pid, libc::SIGSTOP);
            tokio::time::sleep(Duration::from_secs(3)).await;
            signal(pid, libc::SIGCONT);
        }
        Fault::Partition => {
            let cut = Partition::port(p["port"].as_u64().unwrap_or_default() as u16)?;
            let hidden = Hidden::node(&dir)?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(cut);
            drop(hidden);
        }
    }
    Ok(())
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let trials = arg_value(args, "--trials", 10).max(1);
    let scratch = tempfile::Builder::new().prefix("marina-bench-recovery-").tempdir()?;
    let mut bench = Bench::start(scratch.path().join("marina"), |c| {
        c.failover.limit = 1000;
        c.failover.min_interval_secs = 0;
    })
    .await?;
    let api = &bench.api;
    let created = api
        .call(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "rto", "size_id": "small", "nodes": 3})),
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
    let wh = c["endpoints"]["writer"]["host"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut admin = conn(&wh, 3306, &pw).await.context("writer endpoint")?;
    admin.query_drop("CREATE DATABASE bench").await?;
    admin.query_drop("CREATE TABLE bench.t (id BIGINT PRIMARY KEY)").await?;
    drop(admin);
    println!(
        "# recovery benchmark: 3-node small cluster, MariaDB {}, endpoints {}, {trials} trials per kind",
        bench.app.runtime.default_version(),
        bench.app.datapath.kind()
    );
    let writer = Writer::start(wh.clone(), 3306, pw.clone());
    for fault in [Fault::Kill, Fault::Stop, Fault::Partition] {
        let mut rtos = Vec::new();
        for i in 0..trials {
            let c = wait_all_active(api, &id).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let at = Instant::now();
            inject(&bench, &c, fault).await?;
            // Let the fault be seen before asking whether the cluster is whole.
            tokio::time::sleep(Duration::from_millis(500)).await;
            wait_all_active(api, &id).await?;
            let healed = Instant::now();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let rto = writer.gap(at, healed);
            eprintln!("{} trial {i}: {rto:.0} ms", fault.name());
            rtos.push(rto);
        }
        record(
            Figure::new(fault.name(), "ms", rtos)
                .target(Target::median_at_most(1000.0))
                .target(Target::max_at_most(2000.0)),
        );
    }
    let mut pauses = Vec::new();
    for _ in 0..trials {
        wait_all_active(api, &id).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = Instant::now();
        let accepted = api
            .call(
                reqwest::Method::POST,
                &format!("/v1/clusters/{id}/switchover"),
                Some(json!({})),
            )
            .await?;
        let op = api
            .wait_op(accepted["operation"]["id"].as_str().unwrap_or_default())
            .await?;
        if op["status"] != "succeeded" {
            bail!("switchover failed: {op}");
        }
        let done = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pause = writer.gap(at, done);
        eprintln!("switchover: pause {pause:.0} ms; {}", crate::cluster::step_times(&op));
        pauses.push(pause);
    }
    record(Figure::new("switchover write pause", "ms", pauses).target(Target::median_at_most(300.0)));
    writer.stop().await;
    bench.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_spans_the_last_ack_before_to_the_first_after() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let acks = [at(0), at(10), at(20), at(700), at(710), at(1500), at(1510)];
        // Fault at 15, whole again at 705: the gap 20 → 700 counts, the
        // later 710 → 1500 does not (after the first ack past 705).
        assert_eq!(longest_gap(&acks, at(15), at(705)), Duration::from_millis(680));
        // A write in flight acknowledged just after the fault does not hide
        // the outage that follows it.
        assert_eq!(longest_gap(&acks, at(5), at(705)), Duration::from_millis(680));
        assert_eq!(longest_gap(&[], at(0), at(1)), Duration::ZERO);
    }
}
