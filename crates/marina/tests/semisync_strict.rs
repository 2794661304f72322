//! `replication: "semisync_strict"` (issue 21, item 10): the primary never
//! falls back to asynchronous replication. With its replicas cut off (an
//! nftables drop of their replication traffic, by the cluster's uid) no
//! write is acknowledged; after the primary is killed and a replica promoted,
//! every acknowledged write is there.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::json;

/// An nftables table of this test's, removed on drop (even on failure).
struct Partition(String);

impl Partition {
    /// Drops TCP from processes of `uid` to `port` (replicas reaching their primary).
    fn cut(uid: u32, port: u16) -> Partition {
        let table = format!("marina_part{}", std::process::id());
        let script = format!(
            "table ip {table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  \
             meta skuid {uid} tcp dport {port} drop\n }}\n}}\n"
        );
        let mut child = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "nft -f {script}");
        Partition(table)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.0])
            .status();
    }
}

fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_primary_acknowledges_nothing_its_replicas_lack() {
    // Plain semisync would fall back to asynchronous after 300 ms here.
    let app = TestApp::start_configured("kernel", "[nodes]\nsemisync_timeout_ms = 300\n").await;
    let (c, pw) = setup_with(
        &app,
        json!({"name": "strict", "size_id": "xsmall", "nodes": 3, "replication": "semisync_strict"}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["replication"], "semisync_strict");
    let (h, p) = writer(&c);
    let mut conn = mysql(&h, p, "admin", &pw).await.unwrap();
    let timeout: Option<u64> = conn.query_first("SELECT @@rpl_semi_sync_master_timeout").await.unwrap();
    assert_eq!(timeout, Some(u64::from(u32::MAX)), "never falls back to async");
    drop(conn);

    let load = WriteLoad::start(&h, p, &pw);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let old = primary(&c);
    let old_id = old["id"].as_str().unwrap().to_string();
    let old_pid = pid_of(&app, &old_id);
    let cut = Partition::cut(uid_of(old_pid), old["port"].as_u64().unwrap() as u16);
    let cut_at = Instant::now();
    // Ten times the semisync timeout: nothing may be acknowledged without a
    // replica's copy.
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(old_pid, libc::SIGKILL);
    let killed_at = Instant::now();
    drop(cut);
    eventually(Duration::from_secs(30), "a failover", || async {
        let c = cluster(&app, &id).await;
        primary_id(&c).filter(|p| *p != old_id).map(|_| ())
    })
    .await;
    let c = wait_all_active(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = load.stop().await;
    // The write in flight when the cut came may be acknowledged by the ack
    // already on the wire; none after that until the new primary serves.
    let during: Vec<_> = acked
        .iter()
        .filter(|(_, t)| *t > cut_at + Duration::from_millis(300) && *t < killed_at)
        .collect();
    assert!(
        during.is_empty(),
        "acknowledged while no replica could have it: {during:?}"
    );
    assert!(
        acked.iter().any(|(_, t)| *t > killed_at),
        "writes resumed on the new primary"
    );
    assert_no_lost_writes(&c, &pw, &acked).await;
}
