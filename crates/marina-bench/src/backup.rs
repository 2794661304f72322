//! `marina-bench backup [--size-mib N] [--rounds N]`: backups and restores
//! against the raw tools, and a backup's cost to a busy primary, in one run.
//!
//! A 2-node `small` semisync cluster is loaded with about `--size-mib` MiB
//! of sysbench data (default 1024). Then, `--rounds` (3) times each, the two
//! sides alternating which goes first:
//! - **throughput** on a quiet host: `POST …/backups` (physical, then
//!   logical) → completed, against the raw tools on the same replica at
//!   Marina's own settings — `mariadb-backup --backup --stream=mbstream
//!   --safe-slave-backup | zstd -1` and `mariadb-dump | zstd -1`, each pipe
//!   widened to 1 MiB as Marina's are. MB of the replica's InnoDB data per
//!   second, so both sides divide the same bytes;
//! - **restore**: Marina's physical backup into a new 1-node cluster →
//!   active (then deleted), against raw `zstd -d | mbstream -x` +
//!   `mariadb-backup --prepare` of the raw backup;
//! - **under sustained load**: sysbench `oltp_write_only` (4 threads,
//!   through the writer endpoint) runs for the whole rest of the benchmark;
//!   each round takes one backup and one quiet window as long as that
//!   backup (in alternating order), and the primary's commits per second
//!   (`Com_commit`) are compared between the two, and the backup's duration
//!   with its quiet-host duration above. Targets: commits ≥ 0.90 x during a
//!   whole physical and a whole logical backup; duration under load ≤ 3 x
//!   quiet. Both durations are the operation's own (its creation to its
//!   end, as the store recorded them), however often it was polled.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

use crate::common::{Bench, arg_value};
use crate::figures::{Figure, Target, record};

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

/// Takes a backup through the API; `poll` is how often its operation is
/// asked about (200 requests a second cost a loaded primary several percent).
/// The duration is the operation's own, from its creation to its end (the
/// store's millisecond timestamps), so how often it was polled adds nothing.
async fn marina_backup(
    bench: &Bench,
    cluster: &str,
    method: &str,
    poll: Duration,
) -> anyhow::Result<(Duration, Value)> {
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
    if op["status"] != "succeeded" {
        bail!("backup failed: {op}");
    }
    eprintln!("{method} backup steps: {}", crate::cluster::step_times(&op));
    let at = |field: &str| op[field].as_str().and_then(marina_common::time_fmt::parse_rfc3339);
    let took = match (at("created_at"), at("finished_at")) {
        (Some(a), Some(b)) if b >= a => Duration::from_secs_f64((b - a).as_seconds_f64()),
        _ => bail!("the backup's operation has no creation or end time: {op}"),
    };
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

/// How often a timed backup's operation is asked about.
const TIMED_POLL: Duration = Duration::from_millis(5);
/// How often a backup's operation is asked about while the primary's writes
/// are measured (200 requests a second cost a loaded primary several
/// percent; 10 do not, and the duration is then at most 100 ms long).
const LOAD_POLL: Duration = Duration::from_millis(100);

/// Bytes a pipe between two tools holds, as Marina's pipelines widen them.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// `tool args | zstd -1 -q -c > out` with the pipe widened to 1 MiB (what
/// Marina's pipeline does, less its own relay); seconds.
async fn raw_pipeline(tool: &str, args: &[String], out: &Path) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut first = tokio::process::Command::new(tool)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {tool}"))?;
    let pipe = first.stdout.take().context("tool stdout")?;
    // SAFETY: fcntl on a descriptor this process owns; no memory is passed.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
    let stdin: Stdio = pipe.try_into()?;
    let mut zstd = tokio::process::Command::new("zstd")
        .args(["-1", "-q", "-c"])
        .stdin(stdin)
        .stdout(std::fs::File::create(out)?)
        .spawn()
        .context("running zstd")?;
    let (a, b) = (first.wait().await?, zstd.wait().await?);
    if !a.success() || !b.success() {
        bail!("{tool} | zstd failed: {a} / {b}");
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The primary's `Com_commit`.
async fn commits(primary: &mut mysql_async::Conn) -> anyhow::Result<u64> {
    let row: Option<(String, u64)> = primary.query_first("SHOW GLOBAL STATUS LIKE 'Com_commit'").await?;
    Ok(row.context("no Com_commit")?.1)
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let size_mib = arg_value(args, "--size-mib", 1024).max(16);
    let rounds = arg_value(args, "--rounds", 3).max(1);
    // Marina's defaults unless asked otherwise (to measure other settings).
    let defaults = marina_core::config::BackupsConfig::default();
    let busy_rate = arg_value(args, "--busy-rate-mib", defaults.busy_rate_mib);
    let busy_stretch = arg_value(args, "--busy-stretch", defaults.busy_stretch);
    let scratch = tempfile::Builder::new().prefix("marina-bench-backup-").tempdir()?;
    let mut bench = Bench::start(scratch.path().join("marina"), |c| {
        c.backups.busy_rate_mib = busy_rate;
        c.backups.busy_stretch = busy_stretch;
    })
    .await?;
    let app = bench.app.clone();
    let loaded = loaded_cluster(&bench, "bk", size_mib).await?;
    let node_dir: PathBuf = app.runtime.node_dir(&loaded.replica_id);
    let datadir = node_dir.join("data");
    let socket = node_dir.join("mariadbd.sock");
    let mb = data_bytes(&datadir) as f64 / 1e6;
    println!(
        "# backup benchmark: {mb:.0} MB of InnoDB data on the replica, MariaDB {}, {rounds} rounds, \
         backups.busy_rate_mib {busy_rate}, backups.busy_stretch {busy_stretch}",
        app.runtime.default_version()
    );
    let raw_dir = scratch.path().join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let target = raw_dir.join("target");
    let mut physical_args = marina_engine::backup::physical_backup_args(&socket, &datadir, &target);
    physical_args.extend(marina_engine::backup::replica_backup_args());
    let logical_args = marina_engine::backup::logical_dump_args(&socket);

    // Throughput on a quiet host, and the quiet durations for later.
    let (mut raw_p, mut raw_l, mut m_p, mut m_l) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut physical = Value::Null;
    for round in 0..rounds {
        for marina_turn in [round % 2 == 1, round % 2 == 0] {
            if marina_turn {
                let (t, b) = marina_backup(&bench, &loaded.id, "physical", TIMED_POLL).await?;
                m_p.push(t.as_secs_f64());
                physical = b;
                m_l.push(
                    marina_backup(&bench, &loaded.id, "logical", TIMED_POLL)
                        .await?
                        .0
                        .as_secs_f64(),
                );
            } else {
                let _ = std::fs::remove_dir_all(&target);
                std::fs::create_dir_all(&target)?;
                raw_p.push(raw_pipeline("mariadb-backup", &physical_args, &raw_dir.join("phys.zst")).await?);
                raw_l.push(raw_pipeline("mariadb-dump", &logical_args, &raw_dir.join("dump.zst")).await?);
            }
        }
    }
    let rate = |v: &[f64]| v.iter().map(|t| mb / t).collect::<Vec<f64>>();
    let raw_phys = record(Figure::new(
        "raw mariadb-backup --safe-slave-backup | zstd -1 (1 MiB pipe)",
        "MB/s",
        rate(&raw_p),
    ));
    record(Figure::new("physical backup (POST -> completed)", "MB/s", rate(&m_p)).against(&raw_phys));
    let raw_log = record(Figure::new(
        "raw mariadb-dump | zstd -1 (1 MiB pipe)",
        "MB/s",
        rate(&raw_l),
    ));
    record(Figure::new("logical backup (POST -> completed)", "MB/s", rate(&m_l)).against(&raw_log));

    // Restore, the two sides alternating.
    let (mut raw_r, mut m_r) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for marina_turn in [round % 2 == 1, round % 2 == 0] {
            if marina_turn {
                m_r.push(marina_restore(&bench, &physical).await?);
            } else {
                raw_r.push(raw_restore(&raw_dir).await?);
            }
        }
    }
    let raw_restore = record(Figure::new(
        "raw zstd -d | mbstream -x + mariadb-backup --prepare",
        "s",
        raw_r,
    ));
    record(
        Figure::new(
            "restore a physical backup into a new 1-node cluster -> active",
            "s",
            m_r,
        )
        .against(&raw_restore),
    );

    under_load(&bench, &loaded, rounds, (&m_p, &m_l)).await?;
    bench.stop().await;
    Ok(())
}

/// Marina's restore of `backup` into a new 1-node cluster → active, in
/// seconds; the cluster is deleted again.
async fn marina_restore(bench: &Bench, backup: &Value) -> anyhow::Result<f64> {
    let start = Instant::now();
    let restored = bench
        .api
        .call(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "restored", "size_id": "small", "nodes": 1,
                        "restore": {"backup_id": backup["id"]}})),
        )
        .await?;
    let op = bench
        .api
        .wait_op(restored["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    if op["status"] != "succeeded" {
        bail!("restore failed: {op}");
    }
    let took = start.elapsed().as_secs_f64();
    bench
        .api
        .delete_cluster(restored["cluster"]["id"].as_str().unwrap_or_default())
        .await?;
    Ok(took)
}

/// Raw extract + prepare of the raw physical backup; seconds.
async fn raw_restore(raw_dir: &Path) -> anyhow::Result<f64> {
    let extract = raw_dir.join("extract");
    let _ = std::fs::remove_dir_all(&extract);
    std::fs::create_dir_all(&extract)?;
    let t = timed_sh(&format!(
        "zstd -dc {}/phys.zst | mbstream -x -C {} && mariadb-backup --prepare --target-dir={} >/dev/null 2>&1",
        raw_dir.display(),
        extract.display(),
        extract.display()
    ))
    .await?;
    let _ = std::fs::remove_dir_all(&extract);
    Ok(t.as_secs_f64())
}

/// Backups under a write load that runs for all of them: per method, each
/// round one backup and one quiet window as long as it, alternating which
/// goes first; prints the commit-rate and duration figures.
async fn under_load(bench: &Bench, loaded: &Loaded, rounds: usize, quiet: (&[f64], &[f64])) -> anyhow::Result<()> {
    let run_args = [
        "--tables=8".to_string(),
        format!("--table-size={}", loaded.rows),
        "--threads=4".into(),
        "--time=0".into(),
    ];
    let mut load = tokio::process::Command::new("sysbench")
        .kill_on_drop(true)
        .arg("oltp_write_only")
        .args([
            "--db-driver=mysql",
            &format!("--mysql-host={}", loaded.wh),
            "--mysql-port=3306",
            "--mysql-user=admin",
            &format!("--mysql-password={}", loaded.pw),
            "--mysql-db=sbtest",
            "--report-interval=0",
        ])
        .args(&run_args)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("running sysbench (scripts/install-deps.sh --bench installs it)")?;
    let measured = async {
        let mut primary = crate::cluster::conn("127.0.0.1", loaded.primary_port, &loaded.pw)
            .await
            .context("connecting to the primary")?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        for (method, quiet) in [("physical", quiet.0), ("logical", quiet.1)] {
            let (mut busy_rate, mut quiet_rate, mut took) = (Vec::new(), Vec::new(), Vec::new());
            let mut last = quiet.iter().sum::<f64>() / quiet.len() as f64 * 2.0;
            for round in 0..rounds {
                for backup_turn in [round % 2 == 0, round % 2 == 1] {
                    let c0 = commits(&mut primary).await?;
                    let t = Instant::now();
                    if backup_turn {
                        let (d, _) = marina_backup(bench, &loaded.id, method, LOAD_POLL).await?;
                        took.push(d.as_secs_f64());
                        last = t.elapsed().as_secs_f64();
                    } else {
                        tokio::time::sleep(Duration::from_secs_f64(last)).await;
                    }
                    let per_sec = (commits(&mut primary).await? - c0) as f64 / t.elapsed().as_secs_f64();
                    if backup_turn {
                        busy_rate.push(per_sec);
                    } else {
                        quiet_rate.push(per_sec);
                    }
                }
            }
            let q = record(Figure::new(
                format!("primary commits without a backup (windows as long as the {method} backups)"),
                "commits/s",
                quiet_rate,
            ));
            record(
                Figure::new(
                    format!("primary commits during a whole {method} backup"),
                    "commits/s",
                    busy_rate,
                )
                .against(&q)
                .target(Target::ratio_at_least(0.90)),
            );
            let idle = Figure::new(format!("{method} backup on a quiet host"), "s", quiet.to_vec());
            record(
                Figure::new(format!("{method} backup under the write load"), "s", took)
                    .against(&idle)
                    .target(Target::ratio_at_most(3.0)),
            );
        }
        anyhow::Ok(())
    }
    .await;
    let _ = load.kill().await;
    measured
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
    pub primary_port: u16,
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
        primary_port,
    })
}
