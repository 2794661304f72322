//! Backups of a busy database (issue 21): a 2-node cluster whose data is four
//! times its redo log (64 MiB), four writers rewriting random rows for the
//! whole backup. A physical backup once failed here ("Was only able to copy
//! log …": the source's redo wrapped before the copy had it); now a replica's
//! copy (physical or logical) runs with its SQL thread stopped, so the source
//! writes no redo while it is copied. Both methods must complete on their first attempt while the
//! writers keep committing, and the replica must catch up afterwards.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

/// Rows of about 1 KiB: 2^18 of them is four times the redo log.
const DOUBLINGS: u32 = 8;
const SEED_ROWS: u32 = 1024;

async fn load(host: &str, port: u16, pw: &str) -> u64 {
    let mut c = mysql(host, port, "admin", pw).await.unwrap();
    c.query_drop("CREATE DATABASE app").await.unwrap();
    c.query_drop(
        "CREATE TABLE app.big (id INT PRIMARY KEY AUTO_INCREMENT, k INT NOT NULL, pad VARCHAR(1000) NOT NULL)",
    )
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO app.big (k, pad) SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM app.seq_1_to_{SEED_ROWS}"
    ))
    .await
    .unwrap();
    for _ in 0..DOUBLINGS {
        c.query_drop("INSERT INTO app.big (k, pad) SELECT k + 1, pad FROM app.big")
            .await
            .unwrap();
    }
    c.query_first("SELECT COUNT(*) FROM app.big").await.unwrap().unwrap()
}

/// Four writers rewriting random rows until `stop`; counts commits.
fn writers(host: &str, port: u16, pw: &str, rows: u64, stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) {
    for w in 0..4u64 {
        let (host, pw, stop, commits) = (host.to_string(), pw.to_string(), stop.clone(), commits.clone());
        tokio::spawn(async move {
            let mut conn = None;
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none() {
                    conn = mysql(&host, port, "admin", &pw).await.ok();
                    if conn.is_none() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
                i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let id = 1 + (i >> 33) % rows;
                let sql = format!(
                    "UPDATE app.big SET pad = REPEAT(CHAR(65 + {} % 26), 1000) WHERE id = {id}",
                    i >> 40
                );
                match conn.as_mut().unwrap().query_drop(sql).await {
                    Ok(()) => {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => conn = None,
                }
            }
        });
    }
}

/// Takes a backup under the running load; returns it and how long it took.
async fn backup_under_load(app: &TestApp, id: &str, method: &str, commits: &AtomicU64) -> (Value, Duration, f64) {
    let before = commits.load(Ordering::Relaxed);
    let started = Instant::now();
    let (s, created) = app
        .post(&format!("/v1/clusters/{id}/backups"), json!({ "method": method }))
        .await;
    assert_eq!(s, 202, "{created}");
    let op = app
        .wait_op(created["operation"]["id"].as_str().unwrap(), Duration::from_secs(240))
        .await;
    let took = started.elapsed();
    let rate = (commits.load(Ordering::Relaxed) - before) as f64 / took.as_secs_f64();
    assert_eq!(
        op["status"],
        "succeeded",
        "{method} backup under load: {op}\n{}",
        app.log()
    );
    let (_, b) = app
        .get(&format!("/v1/backups/{}", created["backup"]["id"].as_str().unwrap()))
        .await;
    (b, took, rate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_complete_under_a_sustained_write_load() {
    let app = TestApp::start_configured(
        "kernel",
        // The default pacing: a replica's copy is not rate-limited (its SQL
        // thread is stopped; only the CPU group holds its tools back).
        "[[node_sizes]]\nid = \"tight\"\nvcpu = 1\nmemory = 0.5\ndisk_gib = 4\n",
    )
    .await;
    let (c, pw) = app
        .create_cluster_with(json!({"name": "busy", "size_id": "tight", "nodes": 2}))
        .await;
    let id = c["id"].as_str().unwrap().to_string();
    let (wh, wp) = writer(&c);
    let rows = load(&wh, wp, &pw).await;
    assert_eq!(rows, u64::from(SEED_ROWS) << DOUBLINGS);
    wait_all_active(&app, &id).await;

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    writers(&wh, wp, &pw, rows, stop.clone(), commits.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (physical, p_took, p_rate) = backup_under_load(&app, &id, "physical", &commits).await;
    let (logical, l_took, l_rate) = backup_under_load(&app, &id, "logical", &commits).await;
    stop.store(true, Ordering::Relaxed);
    println!(
        "backup under load: physical {p_took:?} ({p_rate:.0} commits/s meanwhile), logical {l_took:?} ({l_rate:.0} commits/s)"
    );

    // Data several times the redo log went into each.
    for b in [&physical, &logical] {
        assert_eq!(b["status"], "completed", "{b}");
        assert!(b["size_bytes"].as_u64().unwrap() > 1 << 20, "{b}");
    }
    // Writers kept committing through both; nothing had to be retried.
    assert!(p_rate > 10.0 && l_rate > 10.0, "{p_rate} / {l_rate} commits/s");
    let retried: Vec<Value> = events(&app, &id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "backup_retry")
        .collect();
    assert!(retried.is_empty(), "{retried:?}");
    // The replica whose SQL thread the copy stopped applied the backlog.
    tokio::time::timeout(Duration::from_secs(120), wait_all_active(&app, &id))
        .await
        .expect("the replica catches up");
}
