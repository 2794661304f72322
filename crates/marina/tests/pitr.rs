//! Point-in-time restores are exact (issue 21, item 1): for each backup
//! method × {no role change, a switchover, a failover}, after a backup of a
//! short history, a writer inserts,
//! updates and deletes rows of `app.t` through the writer endpoint and, at
//! whole seconds, pauses around the boundary and records the table's
//! checksum (the state every transaction before that second made). Restores
//! to random recorded seconds inside the restore window must have exactly
//! that checksum; a time the archive cannot reach is refused, never restored
//! short.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use rand::Rng;
use serde_json::json;
use time::OffsetDateTime;

/// `COUNT(*)` and an order-free digest of every row.
const DIGEST: &str = "SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CRC32(CONCAT_WS(',', id, v))), 0)) FROM app.t";

/// Seconds → the table's digest as of that second.
type Record = Arc<std::sync::Mutex<BTreeMap<i64, String>>>;

/// The writer: random inserts, updates and deletes; around each whole
/// second it stops 60 ms before, waits until 15 ms after, and records the
/// digest (no statement started in between, so the digest is the state of
/// every statement whose binlog timestamp is before that second).
fn start_writer(
    host: String,
    port: u16,
    pw: String,
    stop: Arc<AtomicBool>,
    record: Record,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut conn: Option<mysql_async::Conn> = None;
        let mut next_id = 1i64;
        let mut acked = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Some(c) = conn.as_mut() else {
                conn = mysql(&host, port, "admin", &pw).await.ok();
                if conn.is_none() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            };
            let now = OffsetDateTime::now_utc();
            let ms = now.millisecond();
            if ms >= 940 {
                let boundary = now.unix_timestamp() + 1;
                let wait = (1000 - ms as u64) + 15;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                match c.query_first::<String, _>(DIGEST).await {
                    Ok(Some(d)) => {
                        record.lock().unwrap().insert(boundary, d);
                    }
                    _ => conn = None,
                }
                continue;
            }
            let (sql, params): (&str, Vec<mysql_async::Value>) = match rand::rng().random_range(0..10) {
                0..6 => {
                    next_id += 1;
                    ("INSERT INTO app.t VALUES (?, ?)", vec![next_id.into(), 0.into()])
                }
                6..9 => (
                    "UPDATE app.t SET v = v + 1 WHERE id = ?",
                    vec![rand::rng().random_range(1..=next_id).into()],
                ),
                _ => (
                    "DELETE FROM app.t WHERE id = ?",
                    vec![rand::rng().random_range(1..=next_id).into()],
                ),
            };
            match c.exec_drop(sql, params).await {
                Ok(()) => acked += 1,
                Err(_) => conn = None,
            }
        }
        acked
    })
}

fn secs(rfc: &str) -> i64 {
    marina_common::time_fmt::parse_rfc3339(rfc).unwrap().unix_timestamp()
}

fn rfc(s: i64) -> String {
    marina_common::time_fmt::format_rfc3339(OffsetDateTime::from_unix_timestamp(s).unwrap())
}

#[derive(Clone, Copy, Debug)]
enum RoleChange {
    None,
    Switchover,
    Failover,
    /// No role change, but the primary's binlog is rotated every 250 ms
    /// while the archiver runs every 4 s: each pass archives many files (a
    /// restore once took the pass's time for every file's and stopped at the
    /// first, short of T).
    ManyFilesPerPass,
}

/// Rotates the primary's binlog every 250 ms (as root, over its socket)
/// until `stop`.
fn rotate_often(app: &TestApp, c: &serde_json::Value, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    let sock = app.node_dir(primary(c)["id"].as_str().unwrap()).join("mariadbd.sock");
    std::thread::spawn(move || {
        let mut rotations = 0;
        while !stop.load(Ordering::Relaxed) {
            let out = std::process::Command::new("mariadb")
                .args(["-uroot", "-S", sock.to_str().unwrap(), "-e", "FLUSH BINARY LOGS"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            rotations += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
        rotations
    })
}

async fn role_change(app: &TestApp, id: &str, kind: RoleChange) {
    match kind {
        RoleChange::None | RoleChange::ManyFilesPerPass => {}
        RoleChange::Switchover => {
            switch_over(app, id).await;
        }
        RoleChange::Failover => {
            let c = cluster(app, id).await;
            let old = primary(&c)["id"].as_str().unwrap().to_string();
            signal(pid_of(app, &old), libc::SIGKILL);
            eventually(Duration::from_secs(30), "a failover", || async {
                let c = cluster(app, id).await;
                primary_id(&c).filter(|p| *p != old).map(|_| ())
            })
            .await;
            wait_all_active(app, id).await;
        }
    }
}

async fn pitr_is_exact(method: &str, kind: RoleChange) {
    let flush_secs = if matches!(kind, RoleChange::ManyFilesPerPass) {
        4
    } else {
        1
    };
    let app = TestApp::start_configured("kernel", &format!("[backups]\nbinlog_flush_secs = {flush_secs}\n")).await;
    let (c, pw) = setup(&app, "src", 3).await;
    let id = c["id"].as_str().unwrap().to_string();
    archive_binlogs(&app, &id).await;
    let (h, p) = writer(&c);
    let mut conn = mysql(&h, p, "admin", &pw).await.unwrap();
    conn.query_drop("ALTER TABLE app.t ADD COLUMN v INT NOT NULL DEFAULT 0")
        .await
        .unwrap();
    // A short history before the backup, and a dump that loads as more
    // transactions than that history (a logical restore once took its own
    // load's GTIDs for the source's and skipped what followed the backup).
    for i in 0..12 {
        conn.query_drop(format!("CREATE TABLE app.extra{i} (id INT PRIMARY KEY)"))
            .await
            .unwrap();
        conn.query_drop(format!("INSERT INTO app.extra{i} VALUES ({i})"))
            .await
            .unwrap();
    }
    drop(conn);
    let stop = Arc::new(AtomicBool::new(false));
    let record: Record = Default::default();
    let backup = take_backup(&app, &id, json!({"method": method})).await;
    let rotator = matches!(kind, RoleChange::ManyFilesPerPass).then(|| rotate_often(&app, &c, stop.clone()));
    let w = start_writer(h, p, pw.clone(), stop.clone(), record.clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let changed_at = OffsetDateTime::now_utc().unix_timestamp();
    role_change(&app, &id, kind).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = w.await.unwrap();
    if let Some(r) = rotator {
        let rotations = r.join().unwrap();
        assert!(rotations >= 12, "the binlog was rotated often ({rotations})");
    }
    assert!(acked > 50, "the writer wrote ({acked})");
    let record = record.lock().unwrap().clone();

    let last = *record.keys().next_back().unwrap();
    let window = eventually(
        Duration::from_secs(30),
        "the archive passes the last recorded second",
        || async {
            let (s, w) = app.get(&format!("/v1/clusters/{id}/restore-window")).await;
            (s == 200 && secs(w["latest"].as_str().unwrap()) >= last).then_some(w)
        },
    )
    .await;
    let earliest = secs(window["earliest"].as_str().unwrap());
    assert!(earliest >= secs(backup["finished_at"].as_str().unwrap()), "{window}");
    // One second before the role change and one after (when there is one).
    let before: Vec<i64> = record
        .keys()
        .copied()
        .filter(|s| *s >= earliest && *s < changed_at)
        .collect();
    let after: Vec<i64> = record.keys().copied().filter(|s| *s > changed_at + 1).collect();
    assert!(
        !before.is_empty() && !after.is_empty(),
        "recorded {:?}, window {window}",
        record.keys()
    );
    let mut rng = rand::rng();
    let picks = [
        before[rng.random_range(0..before.len())],
        after[rng.random_range(0..after.len())],
    ];
    println!(
        "{method} {kind:?}: restoring to {picks:?} (recorded {} seconds, {acked} writes)",
        record.len()
    );
    for (i, t) in picks.into_iter().enumerate() {
        let (s, body) = app
            .post(
                "/v1/clusters",
                json!({"name": format!("at-{i}"), "size_id": "xsmall", "nodes": 1,
                       "restore": {"cluster_id": id, "point_in_time": rfc(t)}}),
            )
            .await;
        assert_eq!(s, 202, "{body}");
        assert_eq!(body["cluster"]["restore"]["backup_id"], backup["id"], "{body}");
        let op = app
            .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(120))
            .await;
        assert_eq!(op["status"], "succeeded", "{op}\n{}", app.log());
        let restored = cluster(&app, body["cluster"]["id"].as_str().unwrap()).await;
        let (rh, rp) = writer(&restored);
        let mut conn = mysql(&rh, rp, "admin", body["credentials"]["password"].as_str().unwrap())
            .await
            .unwrap();
        let got: Option<String> = conn.query_first(DIGEST).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(record[&t].as_str()),
            "{method} backup, {kind:?}: the restore to {} is not the source as of then",
            rfc(t)
        );
        drop(conn);
        app.delete_cluster(body["cluster"]["id"].as_str().unwrap()).await;
    }
    // A fraction of a second cannot be reached exactly: refused, not rounded.
    let (s, e) = app
        .post(
            "/v1/clusters",
            json!({"name": "fraction", "size_id": "xsmall",
                   "restore": {"cluster_id": id, "point_in_time": rfc(after[0]).replace(".000Z", ".500Z")}}),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("whole seconds"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_logical_without_role_change() {
    pitr_is_exact("logical", RoleChange::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_physical_without_role_change() {
    pitr_is_exact("physical", RoleChange::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_logical_across_a_switchover() {
    pitr_is_exact("logical", RoleChange::Switchover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_physical_across_a_switchover() {
    pitr_is_exact("physical", RoleChange::Switchover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_logical_across_a_failover() {
    pitr_is_exact("logical", RoleChange::Failover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_physical_across_a_failover() {
    pitr_is_exact("physical", RoleChange::Failover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_logical_with_many_files_per_archiver_pass() {
    pitr_is_exact("logical", RoleChange::ManyFilesPerPass).await;
}
