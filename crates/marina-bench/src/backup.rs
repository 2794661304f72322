//! `marina-bench backup [--size-mib N] [--seconds N] [--rounds N] [--pairs N]`: backup
//! and restore against the raw tools, in one run on this machine.
//!
//! A 2-node semisync cluster is loaded with about `--size-mib` MiB of sysbench
//! data (default 1024), then, on the same replica Marina backs up from:
//! - physical: `POST …/backups` → completed, against `mariadb-backup
//!   --stream=mbstream | zstd > file` (best of `--rounds` each);
//! - logical: `POST …/backups {"method":"logical"}` against `mariadb-dump |
//!   zstd > file` with the same options;
//! - restore: the physical backup into a new 1-node cluster → active, against
//!   raw `zstd -d | mbstream -x` + `mariadb-backup --prepare`;
//! - the primary's write throughput (sysbench oltp_write_only through the
//!   writer endpoint for `--seconds`) while physical backups run back to
//!   back, then logical ones, against the same run without a backup;
//!   `--pairs` quiet and busy windows alternate (every other pair busy
//!   first) and their means are compared.
//!
//! Throughput is the replica's InnoDB data (binlogs and relay logs excluded)
//! per second of backup, so both sides of a ratio divide the same bytes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::common::{Bench, arg_value};

/// sysbench `test` against host:port → transactions per second (0 unless `run`).
pub(crate) fn sysbench(
    test: &str,
    host: &str,
    port: u16,
    pw: &str,
    extra: &[String],
    cmd: &str,
) -> anyhow::Result<f64> {
    let out = std::process::Command::new("sysbench")
        .arg(test)
        .args([
            "--db-driver=mysql",
            &format!("--mysql-host={host}"),
            &format!("--mysql-port={port}"),
            "--mysql-user=admin",
            &format!("--mysql-password={pw}"),
            "--mysql-db=sbtest",
            "--report-interval=0",
        ])
        .args(extra)
        .arg(cmd)
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
        .find(|l| l.trim_start().starts_with("transactions:"))
        .context("sysbench printed no transactions line")?;
    Ok(line
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .context("unparsable sysbench line")?
        .parse()?)
}

/// Bytes of InnoDB (and other table) data under a datadir, logs excluded.
fn data_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            total += data_bytes(&p);
        } else if !name.starts_with("mariadb-bin") && !name.starts_with("relay-bin") {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

/// Runs a shell pipeline, returning its wall time.
pub(crate) async fn timed_sh(script: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = tokio::process::Command::new("/bin/bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {script}"))
        .output()
        .await?;
    if !out.status.success() {
        bail!("{script}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(start.elapsed())
}

pub(crate) fn quoted(args: &[String]) -> String {
    args.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ")
}

/// How often a timed backup's operation is asked about.
const TIMED_POLL: Duration = Duration::from_millis(5);
/// How often a backup's operation is asked about while the primary's writes
/// are measured.
const LOAD_POLL: Duration = Duration::from_millis(500);

/// Takes a backup through the API; `poll` is how often its operation is
/// asked about (200 requests a second cost a loaded primary several percent).
async fn marina_backup(
    bench: &Bench,
    cluster: &str,
    method: &str,
    poll: Duration,
) -> anyhow::Result<(Duration, Value)> {
    let start = Instant::now();
    let created = bench
        .api
        .call(
            reqwest::Method::POST,
            &format!("/v1/clusters/{cluster}/backups"),
            Some(json!({"method": method})),
        )
        .await?;
    let op = bench
        .api
        .wait_op_every(created["operation"]["id"].as_str().unwrap_or_default(), poll)
        .await?;
    let took = start.elapsed();
    if op["status"] != "succeeded" {
        bail!("backup failed: {op}");
    }
    let b = bench
        .api
        .call(
            reqwest::Method::GET,
            &format!("/v1/backups/{}", created["backup"]["id"].as_str().unwrap_or_default()),
            None,
        )
        .await?;
    Ok((took, b))
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let size_mib = arg_value(args, "--size-mib", 1024).max(16);
    let secs = arg_value(args, "--seconds", 20).max(5);
    let rounds = arg_value(args, "--rounds", 2).max(1);
    let pairs = arg_value(args, "--pairs", 10).max(1);
    let scratch = tempfile::Builder::new().prefix("marina-bench-backup-").tempdir()?;
    let mut bench = Bench::start(scratch.path().join("marina"), |_| {}).await?;
    let app = bench.app.clone();

    // The cluster and its data.
    let Loaded {
        id,
        pw,
        wh,
        rows,
        replica_id,
        primary_id,
    } = loaded_cluster(&bench, "bk", size_mib).await?;
    let node_dir: PathBuf = app.runtime.node_dir(&replica_id);
    let datadir = node_dir.join("data");
    let socket = node_dir.join("mariadbd.sock");
    let bytes = data_bytes(&datadir) as f64;
    let mb = bytes / 1e6;
    println!(
        "# backup benchmark: {:.0} MB of InnoDB data on the replica, MariaDB {}, best of {rounds}",
        mb,
        app.runtime.default_version()
    );

    // Physical.
    let raw_dir = scratch.path().join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let target = raw_dir.join("target");
    let physical_args = marina_engine::backup::physical_backup_args(&socket, &datadir, &target);
    let logical_args = marina_engine::backup::logical_dump_args(&socket);
    // `MARINA_BENCH_EXPERIMENTS="cmd;;;cmd…"`: each command (or `marina`,
    // `none`) against its own quiet windows, instead of every other figure.
    let experiments = std::env::var("MARINA_BENCH_EXPERIMENTS").ok();
    if experiments.is_none() {
        let tools = Tools {
            raw_dir: &raw_dir,
            target: &target,
            physical_args: &physical_args,
            logical_args: &logical_args,
        };
        tools_and_restore(&bench, &id, mb, &tools, rounds).await?;
    }

    // The primary's writes during backups.
    let run_args = vec![
        "--tables=8".into(),
        format!("--table-size={rows}"),
        "--threads=4".into(),
        format!("--time={secs}"),
    ];
    let psock = app
        .runtime
        .node_dir(&primary_id)
        .join("mariadbd.sock")
        .display()
        .to_string();
    let fill = |cmd: &str| {
        cmd.replace("{ARGS}", &quoted(&physical_args))
            .replace("{DATADIR}", &datadir.display().to_string())
            .replace("{OUT}", &raw_dir.display().to_string())
            .replace("{PSOCK}", &psock)
    };
    let load = Load {
        bench: &bench,
        cluster: &id,
        host: &wh,
        password: &pw,
        args: &run_args,
        scratch: &target,
        pairs,
    };
    if let Some(exps) = experiments {
        for cmd in exps.split(";;;") {
            let w = load.writes_during(&fill(cmd)).await?;
            println!(
                "experiment {cmd}: {:.0} tps ({:.2} x {:.0} tps without; {} runs; {})",
                w.busy,
                w.ratio(),
                w.quiet,
                w.taken,
                w.spread()
            );
        }
        bench.stop().await;
        return Ok(());
    }
    let w = load.writes_during("marina").await?;
    println!(
        "primary writes without a backup (oltp_write_only, mean of {pairs} windows of {secs} s): {:.0} tps (1.00 x baseline)",
        w.quiet
    );
    println!(
        "primary writes during backups ({} physical backups back to back in {pairs} windows alternating with the quiet ones): {:.0} tps ({:.2} x without; {})",
        w.taken,
        w.busy,
        w.ratio(),
        w.spread()
    );
    let w = load.writes_during("marina-logical").await?;
    println!(
        "primary writes during logical backups ({} back to back in {pairs} windows, against {:.0} tps in their own quiet ones): {:.0} tps ({:.2} x without; {})",
        w.taken,
        w.quiet,
        w.busy,
        w.ratio(),
        w.spread()
    );
    bench.stop().await;
    Ok(())
}

/// The raw tools' side of the throughput and restore figures.
struct Tools<'a> {
    raw_dir: &'a Path,
    target: &'a Path,
    physical_args: &'a [String],
    logical_args: &'a [String],
}

/// Prints physical and logical backup throughput against the raw tools (best
/// of `rounds`) and the restore time against raw extract + prepare.
async fn tools_and_restore(
    bench: &Bench,
    cluster: &str,
    mb: f64,
    tools: &Tools<'_>,
    rounds: usize,
) -> anyhow::Result<()> {
    let (mut raw_phys, mut raw_log, mut m_phys, mut m_log) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut physical = Value::Null;
    for _ in 0..rounds {
        let _ = std::fs::remove_dir_all(tools.target);
        std::fs::create_dir_all(tools.target)?;
        let t = timed_sh(&format!(
            "mariadb-backup {} 2>/dev/null | zstd -q -c > {}/phys.zst",
            quoted(tools.physical_args),
            tools.raw_dir.display()
        ))
        .await?;
        raw_phys = raw_phys.min(t.as_secs_f64());
        let (t, b) = marina_backup(bench, cluster, "physical", TIMED_POLL).await?;
        m_phys = m_phys.min(t.as_secs_f64());
        physical = b;
        let t = timed_sh(&format!(
            "mariadb-dump {} 2>/dev/null | zstd -q -c > {}/dump.zst",
            quoted(tools.logical_args),
            tools.raw_dir.display()
        ))
        .await?;
        raw_log = raw_log.min(t.as_secs_f64());
        let (t, _) = marina_backup(bench, cluster, "logical", TIMED_POLL).await?;
        m_log = m_log.min(t.as_secs_f64());
    }
    println!(
        "raw mariadb-backup --stream=mbstream | zstd: {:.1} MB/s (1.00 x baseline)",
        mb / raw_phys
    );
    println!(
        "physical backup (POST -> completed): {:.1} MB/s ({:.2} x raw mariadb-backup|zstd)",
        mb / m_phys,
        raw_phys / m_phys
    );
    println!("raw mariadb-dump | zstd: {:.1} MB/s (1.00 x baseline)", mb / raw_log);
    println!(
        "logical backup (POST -> completed): {:.1} MB/s ({:.2} x raw mariadb-dump|zstd)",
        mb / m_log,
        raw_log / m_log
    );

    // Restore.
    let extract = tools.raw_dir.join("extract");
    let _ = std::fs::remove_dir_all(&extract);
    std::fs::create_dir_all(&extract)?;
    let raw_restore = timed_sh(&format!(
        "zstd -dc {}/phys.zst | mbstream -x -C {} && mariadb-backup --prepare --target-dir={} >/dev/null 2>&1",
        tools.raw_dir.display(),
        extract.display(),
        extract.display()
    ))
    .await?
    .as_secs_f64();
    let start = Instant::now();
    let restored = bench
        .api
        .call(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "restored", "size_id": "small", "nodes": 1,
                        "restore": {"backup_id": physical["id"]}})),
        )
        .await?;
    let op = bench
        .api
        .wait_op(restored["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    if op["status"] != "succeeded" {
        bail!("restore failed: {op}");
    }
    let m_restore = start.elapsed().as_secs_f64();
    println!("raw zstd -d | mbstream -x + mariadb-backup --prepare: {raw_restore:.1} s (1.00 x baseline)");
    println!(
        "restore physical backup into a new 1-node cluster -> active: {m_restore:.1} s ({:.2} x raw extract+prepare)",
        m_restore / raw_restore
    );
    // The write-impact windows that follow measure the loaded cluster alone.
    bench
        .api
        .delete_cluster(restored["cluster"]["id"].as_str().unwrap_or_default())
        .await?;

    Ok(())
}

/// The write load of the last figure: sysbench `oltp_write_only` through the
/// writer endpoint, alone and while something runs back to back.
struct Load<'a> {
    bench: &'a Bench,
    cluster: &'a str,
    host: &'a str,
    password: &'a str,
    args: &'a [String],
    scratch: &'a Path,
    pairs: usize,
}

impl Load<'_> {
    async fn run(&self) -> tokio::task::JoinHandle<anyhow::Result<f64>> {
        let (h, p, a) = (self.host.to_string(), self.password.to_string(), self.args.to_vec());
        tokio::task::spawn_blocking(move || sysbench("oltp_write_only", &h, 3306, &p, &a, "run"))
    }

    /// (tps alone, tps while `what` runs back to back, how many runs): `what`
    /// is `marina` (Marina's physical backups), `marina-logical`, `none`, or a
    /// shell command.
    /// Quiet and busy windows alternate `pairs` times (the means are
    /// compared): the rate drifts by several percent from one window to the
    /// next on this VM. Every other pair runs its busy window first, so a
    /// steady drift (the rate rose through a run with nothing running:
    /// 1.03 x) favours neither side.
    async fn writes_during(&self, what: &str) -> anyhow::Result<Windows> {
        let mut w = Windows::default();
        for pair in 0..self.pairs {
            let (q, b, t) = self.one_pair(what, pair % 2 == 1).await?;
            w.quiet += q / self.pairs as f64;
            w.busy += b / self.pairs as f64;
            w.taken += t;
            w.pairs.push(b / q.max(1.0));
        }
        Ok(w)
    }

    async fn one_pair(&self, what: &str, busy_first: bool) -> anyhow::Result<(f64, f64, usize)> {
        let mut quiet = if busy_first {
            None
        } else {
            Some(self.run().await.await??)
        };
        let load = self.run().await;
        let mut taken = 0;
        while !load.is_finished() {
            match what {
                "marina" => {
                    marina_backup(self.bench, self.cluster, "physical", LOAD_POLL).await?;
                }
                "marina-logical" => {
                    marina_backup(self.bench, self.cluster, "logical", LOAD_POLL).await?;
                }
                "none" => tokio::time::sleep(Duration::from_secs(1)).await,
                cmd => {
                    let _ = std::fs::remove_dir_all(self.scratch);
                    std::fs::create_dir_all(self.scratch)?;
                    timed_sh(cmd).await?;
                }
            }
            taken += 1;
        }
        let busy = load.await??;
        if quiet.is_none() {
            quiet = Some(self.run().await.await??);
        }
        Ok((quiet.unwrap_or_default(), busy, taken))
    }
}

/// What `Load::writes_during` measured.
#[derive(Default)]
struct Windows {
    /// Mean tps of the quiet windows.
    quiet: f64,
    /// Mean tps of the busy windows.
    busy: f64,
    /// Runs of the thing measured.
    taken: usize,
    /// Each pair's busy / quiet, in order.
    pairs: Vec<f64>,
}

impl Windows {
    fn ratio(&self) -> f64 {
        self.busy / self.quiet
    }

    /// The pairs' own ratios, for the spread a mean hides.
    fn spread(&self) -> String {
        let each: Vec<String> = self.pairs.iter().map(|r| format!("{r:.2}")).collect();
        format!("pairs {}", each.join(" "))
    }
}

/// A 2-node `small` semisync cluster loaded with about `size_mib` MiB of
/// sysbench data (8 tables in `sbtest`), the replica caught up.
pub(crate) struct Loaded {
    pub id: String,
    pub pw: String,
    /// The writer endpoint's host (port 3306).
    pub wh: String,
    /// Rows per sysbench table.
    pub rows: usize,
    pub replica_id: String,
    pub primary_id: String,
}

pub(crate) async fn loaded_cluster(bench: &Bench, name: &str, size_mib: usize) -> anyhow::Result<Loaded> {
    let created = bench
        .api
        .call(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": name, "size_id": "small", "nodes": 2})),
        )
        .await?;
    let id = created["cluster"]["id"].as_str().unwrap_or_default().to_string();
    let pw = created["credentials"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let op = bench
        .api
        .wait_op(created["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    if op["status"] != "succeeded" {
        bail!("cluster create failed: {op}");
    }
    let c = bench
        .api
        .call(reqwest::Method::GET, &format!("/v1/clusters/{id}"), None)
        .await?;
    let wh = c["endpoints"]["writer"]["host"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let node = |role: &str| {
        c["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["role"] == role))
            .cloned()
            .unwrap_or_default()
    };
    let (primary, replica) = (node("primary"), node("replica"));
    let primary_port = primary["port"].as_u64().unwrap_or_default() as u16;
    let primary_id = primary["id"].as_str().unwrap_or_default().to_string();
    let replica_id = replica["id"].as_str().unwrap_or_default().to_string();
    {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(wh.clone())
            .tcp_port(3306)
            .user(Some("admin"))
            .pass(Some(pw.clone()));
        let mut conn = match mysql_async::Conn::new(opts.clone()).await {
            Ok(c) => c,
            Err(e) => {
                // An active cluster must take connections at once: say so
                // loudly, with what the data path held, then wait and see.
                let rules = std::process::Command::new("nft").args(["list", "ruleset"]).output()?;
                eprintln!(
                    "DIAG: active cluster {id} refused its first connection to {wh}:3306: {e}\ncluster: {c}\n{}",
                    String::from_utf8_lossy(&rules.stdout)
                );
                let t = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Ok(c) = mysql_async::Conn::new(opts.clone()).await {
                        eprintln!("DIAG: connected after {:?}", t.elapsed());
                        break c;
                    }
                    if t.elapsed() > Duration::from_secs(20) {
                        bail!("the writer endpoint never took a connection");
                    }
                }
            }
        };
        use mysql_async::prelude::Queryable;
        conn.query_drop("CREATE DATABASE sbtest").await?;
        conn.disconnect().await?;
    }
    let tables = 8usize;
    let rows = size_mib * 1024 * 1024 / 230 / tables;
    let load_args = vec![
        format!("--tables={tables}"),
        format!("--table-size={rows}"),
        "--threads=4".into(),
    ];
    let loading = Instant::now();
    // Loaded on the primary directly (the endpoint is measured below).
    sysbench("oltp_write_only", "127.0.0.1", primary_port, &pw, &load_args, "prepare")?;
    eprintln!(
        "loaded {size_mib} MiB of sysbench data in {:.0} s",
        loading.elapsed().as_secs_f64()
    );
    // Wait for the replica to have all of it.
    loop {
        let st = bench
            .api
            .call(reqwest::Method::GET, &format!("/v1/clusters/{id}/status"), None)
            .await?;
        let gtids: Vec<String> = st["nodes"]
            .as_array()
            .map(|n| n.iter().map(|n| n["probes"]["gtid_position"].to_string()).collect())
            .unwrap_or_default();
        if gtids.len() == 2 && gtids[0] == gtids[1] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Loaded {
        id,
        pw,
        wh,
        rows,
        replica_id,
        primary_id,
    })
}
