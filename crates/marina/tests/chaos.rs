//! Chaos run (ignored in the normal suite; run it with
//! `cargo nextest run -p marina --test chaos --run-ignored only --no-capture`):
//! at least 50 random faults — kill -9 of the primary, SIGSTOP of the primary,
//! kill -9 of a replica, SIGKILL of the control plane during a failover — against
//! a 3-node cluster under continuous writes through the writer endpoint. It
//! prints lost acknowledged writes (must be 0), moments when two writable nodes
//! were reachable through the writer endpoint (must be 0), and the RTO
//! distribution of primary faults.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;
use rand::Rng;
use serde_json::Value;

fn pid_of(app: &TestApp, node_id: &str) -> Option<i32> {
    let p = app.data_dir().join("nodes").join(node_id).join("mariadbd.pid");
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a mariadbd this test's Marina started.
    unsafe {
        libc::kill(pid, sig);
    }
}

async fn wait_healthy(app: &TestApp, id: &str, timeout: Duration) -> Option<Value> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let (_, c) = app.get(&format!("/v1/clusters/{id}")).await;
        let all = c["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().all(|n| n["status"] == "active"));
        if c["status"] == "active" && all {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Samples connections opened through the writer endpoint at different times:
/// at each sample, how many distinct servers answer `read_only = 0` through it.
fn start_split_brain_watch(host: String, port: u16, pw: String, stop: Arc<AtomicBool>, violations: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let mut conns: Vec<mysql_async::Conn> = Vec::new();
        let mut tick = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if tick.is_multiple_of(2)
                && let Ok(Ok(c)) =
                    tokio::time::timeout(Duration::from_millis(500), mysql(&host, port, "admin", &pw)).await
            {
                conns.push(c);
                if conns.len() > 10 {
                    conns.remove(0);
                }
            }
            let mut writable = HashSet::new();
            let mut alive = Vec::new();
            for mut c in conns.drain(..) {
                let r = tokio::time::timeout(
                    Duration::from_millis(300),
                    c.query_first::<(u32, u32), _>("SELECT @@server_id, @@read_only"),
                )
                .await;
                if let Ok(Ok(Some((sid, ro)))) = r {
                    if ro == 0 {
                        writable.insert(sid);
                    }
                    alive.push(c);
                }
            }
            conns = alive;
            if writable.len() > 1 {
                violations.fetch_add(1, Ordering::Relaxed);
                eprintln!("split brain through the writer endpoint: servers {writable:?}");
            }
            tick += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos run: minutes long; run with --run-ignored only"]
async fn chaos_random_faults_under_write_load() {
    let faults: usize = std::env::var("MARINA_CHAOS_FAULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut app = TestApp::start_configured("kernel", "[failover]\nlimit = 1000\nmin_interval_secs = 0\n").await;
    let (c, pw) = app.create_cluster("chaos", 3).await;
    let id = c["id"].as_str().unwrap().to_string();
    let wh = c["endpoints"]["writer"]["host"].as_str().unwrap().to_string();
    let mut conn = mysql(&wh, 3306, "admin", &pw).await.unwrap();
    conn.query_drop("CREATE DATABASE app").await.unwrap();
    conn.query_drop("CREATE TABLE app.t (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    drop(conn);

    let load = WriteLoad::start(&wh, 3306, &pw);
    let stop = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicU64::new(0));
    start_split_brain_watch(wh.clone(), 3306, pw.clone(), stop.clone(), violations.clone());
    let fault_times: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let mut stuck = 0;

    for i in 0..faults {
        let Some(c) = wait_healthy(&app, &id, Duration::from_secs(90)).await else {
            stuck += 1;
            eprintln!("fault {i}: cluster did not heal in 90 s; continuing");
            continue;
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let nodes = c["nodes"].as_array().unwrap().clone();
        let primary = nodes.iter().find(|n| n["role"] == "primary").unwrap().clone();
        let replica = nodes.iter().find(|n| n["role"] == "replica").unwrap().clone();
        let kind = rand::rng().random_range(0..4);
        let now = Instant::now();
        match kind {
            0 => {
                if let Some(pid) = pid_of(&app, primary["id"].as_str().unwrap()) {
                    signal(pid, libc::SIGKILL);
                }
                fault_times.lock().unwrap().push(("kill -9 primary".into(), now));
            }
            1 => {
                if let Some(pid) = pid_of(&app, primary["id"].as_str().unwrap()) {
                    signal(pid, libc::SIGSTOP);
                    fault_times.lock().unwrap().push(("SIGSTOP primary".into(), now));
                    tokio::time::sleep(Duration::from_millis(rand::rng().random_range(1500..3000))).await;
                    signal(pid, libc::SIGCONT);
                }
            }
            2 => {
                if let Some(pid) = pid_of(&app, replica["id"].as_str().unwrap()) {
                    signal(pid, libc::SIGKILL);
                }
            }
            _ => {
                // Kill the primary, then the control plane in the middle of the failover.
                if let Some(pid) = pid_of(&app, primary["id"].as_str().unwrap()) {
                    signal(pid, libc::SIGKILL);
                }
                fault_times
                    .lock()
                    .unwrap()
                    .push(("kill -9 primary + control plane".into(), now));
                tokio::time::sleep(Duration::from_millis(rand::rng().random_range(700..1300))).await;
                app.kill_server();
                tokio::time::sleep(Duration::from_millis(200)).await;
                app.spawn_server(None);
            }
        }
        eprintln!("fault {i}: kind {kind}");
    }
    wait_healthy(&app, &id, Duration::from_secs(90))
        .await
        .expect("cluster heals at the end");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = load.stop().await;

    // Lost acknowledged writes, on every node.
    let (_, c) = app.get(&format!("/v1/clusters/{id}")).await;
    let want: HashSet<u64> = acked.iter().map(|(id, _)| *id).collect();
    let mut lost = 0usize;
    for n in c["nodes"].as_array().unwrap() {
        let port = n["port"].as_u64().unwrap() as u16;
        let have: HashSet<u64> = eventually(Duration::from_secs(30), "node caught up", || {
            let (pw, want) = (pw.clone(), want.clone());
            async move {
                let mut conn = mysql("127.0.0.1", port, "admin", &pw).await.ok()?;
                let ids: Vec<u64> = conn.query("SELECT id FROM app.t").await.ok()?;
                let ids: HashSet<u64> = ids.into_iter().collect();
                (want.is_subset(&ids) || ids.len() >= want.len()).then_some(ids)
            }
        })
        .await;
        lost = lost.max(want.difference(&have).count());
    }
    // RTO of primary faults: fault → first ack after it.
    let mut rtos: Vec<f64> = fault_times
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, t)| {
            let after = *t + Duration::from_millis(5);
            acked
                .iter()
                .find(|(_, a)| *a > after)
                .map(|(_, a)| a.duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    rtos.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        rtos.get(((rtos.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!("chaos: {faults} faults, {} acknowledged writes", acked.len());
    println!("chaos: lost acknowledged writes: {lost}");
    println!(
        "chaos: moments with two writable nodes through the writer endpoint: {}",
        violations.load(Ordering::Relaxed)
    );
    println!(
        "chaos: RTO over {} primary faults (ms): min {:.0}, p50 {:.0}, p90 {:.0}, max {:.0}",
        rtos.len(),
        pct(0.0),
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
    println!("chaos: times the cluster did not heal within 90 s: {stuck}");
    assert_eq!(lost, 0, "acknowledged writes were lost");
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "two writable nodes were reachable through the writer endpoint"
    );
    assert_eq!(stuck, 0);
}
