//! A newcomer's path: `marina serve` started from a working directory with
//! relative paths (`--data-dir ./marina-data`, or nothing at all so the
//! default `./marina-data` applies, and a relative `backups.dir`), then a
//! 3-node cluster created, written through, backed up and deleted from the CLI.

mod common;

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Create, write, back up and delete a 3-node cluster through the CLI; the
/// nodes' files and the backup land under `data` and `backups`.
async fn create_use_delete(app: &TestApp, backups: &std::path::Path) {
    let data = app.data_dir();
    assert!(data.is_absolute());
    assert!(
        app.listening.contains(&format!("data dir {} ", data.display())),
        "the start-up line shows the absolute data dir: {}",
        app.listening
    );
    let out = ok(&app.cli(&[
        "cluster", "create", "orders", "--nodes", "3", "--size", "xsmall", "--wait",
    ]));
    let pw = out
        .split("password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the password is shown once")
        .to_string();
    let c: Value = serde_json::from_str(&ok(&app.cli(&["cluster", "show", "orders", "-o", "json"]))).unwrap();
    assert_eq!(c["status"], "active", "{c}");
    assert_eq!(c["nodes"].as_array().unwrap().len(), 3, "{c}");
    for n in c["nodes"].as_array().unwrap() {
        let dir = app.node_dir(n["id"].as_str().unwrap());
        assert!(
            dir.join("my.cnf").is_file(),
            "{} has the node's option file",
            dir.display()
        );
    }
    assert_eq!(app.mariadbd_pids().len(), 3, "three mariadbd under {}", data.display());
    let (h, p) = writer(&c);
    let mut conn = mysql(&h, p, "admin", &pw).await.unwrap();
    conn.query_drop("CREATE DATABASE shop").await.unwrap();
    conn.query_drop("CREATE TABLE shop.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO shop.t VALUES (1),(2),(3)").await.unwrap();
    let n: Option<u64> = conn.query_first("SELECT COUNT(*) FROM shop.t").await.unwrap();
    assert_eq!(n, Some(3));
    drop(conn);

    ok(&app.cli(&["backup", "create", "orders", "--wait"]));
    let files = std::fs::read_dir(backups)
        .unwrap_or_else(|e| panic!("the backup store {}: {e}", backups.display()))
        .count();
    assert!(files > 0, "the backup is under {}", backups.display());

    ok(&app.cli(&["cluster", "delete", "orders", "--wait"]));
    assert!(app.mariadbd_pids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_data_dir_and_backup_dir_work() {
    let app = TestApp::start_relative(
        Some("marina-data"),
        "[backups]\ndir = \"./local-backups\"\n",
        &["--data-dir", "./marina-data"],
    )
    .await;
    let backups = app.dir.path().join("local-backups");
    create_use_delete(&app, &backups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_dir_at_all_means_marina_data_in_the_working_directory() {
    let app = TestApp::start_relative(None, "", &[]).await;
    assert_eq!(app.data_dir(), app.dir.path().join("marina-data"));
    let backups = app.data_dir().join("backups");
    create_use_delete(&app, &backups).await;
}
