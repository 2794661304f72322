//! The CLI end to end against a real server: node sizes, create --wait, list,
//! show, JSON output, operation show, delete --wait, and failures exit non-zero.

mod common;

use common::*;
use serde_json::Value;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_end_to_end() {
    let app = TestApp::start().await;

    let o = app.cli(&["node-size", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("ID "), "{out}");
    assert!(out.contains("small") && out.contains("Small: 2 cores, 2 GiB"), "{out}");

    let o = app.cli(&[
        "cluster", "create", "orders", "--size", "xsmall", "--nodes", "2", "--wait",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("cluster orders active in"), "{out}");
    assert!(out.contains("username admin, password "), "{out}");
    // Progress went to stderr, step by step.
    assert!(
        stderr(&o).contains("creating cluster orders: start nodes"),
        "{}",
        stderr(&o)
    );

    let o = app.cli(&["cluster", "list"]);
    let out = stdout(&o);
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("orders") && l.contains("active")),
        "{out}"
    );

    let o = app.cli(&["cluster", "show", "orders", "--output", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(c["name"], "orders");
    assert_eq!(c["object"], "cluster");
    assert_eq!(c["nodes"].as_array().unwrap().len(), 2);

    let o = app.cli(&["cluster", "show", "orders"]);
    let out = stdout(&o);
    assert!(out.contains("status:      active"), "{out}");
    assert!(out.contains("primary") && out.contains("replica"), "{out}");

    let o = app.cli(&["cluster", "list", "-o", "json"]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (_, ops) = app
        .get(&format!("/v1/clusters/{}/operations", c["id"].as_str().unwrap()))
        .await;
    let op_id = ops["data"][0]["id"].as_str().unwrap();
    let o = app.cli(&["operation", "show", op_id]);
    let out = stdout(&o);
    assert!(out.contains("create_cluster") && out.contains("succeeded"), "{out}");
    assert!(out.contains("configure_replication"), "{out}");

    // Failures: a bad size and an unknown cluster exit non-zero with the message.
    let o = app.cli(&["cluster", "create", "bad", "--size", "giant", "--wait"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown size_id"), "{}", stderr(&o));
    let o = app.cli(&["cluster", "show", "nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no cluster named"), "{}", stderr(&o));

    // Nodes, databases and users.
    let o = app.cli(&["node", "add", "orders", "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("adding a replica to orders: done in"),
        "{}",
        stdout(&o)
    );
    let o = app.cli(&["cluster", "show", "orders", "-o", "json"]);
    let c: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let replica = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "replica")
        .map(|n| n["id"].as_str().unwrap().to_string())
        .expect("a replica");
    let o = app.cli(&["node", "maintenance", "orders", &replica, "on", "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = app.cli(&["node", "resize", "orders", &replica, "--size", "small", "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("resizing {replica} to small: done in")),
        "{}",
        stdout(&o)
    );
    let o = app.cli(&["cluster", "reboot", "orders", "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A node in maintenance stays so through a rolling reboot.
    let o = app.cli(&["cluster", "show", "orders", "-o", "json"]);
    let c: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let status = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == replica.as_str())
        .map(|n| n["status"].clone());
    assert_eq!(status, Some(serde_json::json!("maintenance")), "{c}");
    let o = app.cli(&["node", "read-only", "orders", &replica, "off"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("always read-only"), "{}", stderr(&o));
    let o = app.cli(&["db", "create", "orders", "shop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = app.cli(&["db", "list", "orders"]);
    assert!(stdout(&o).contains("shop"), "{}", stdout(&o));
    let o = app.cli(&["user", "create", "orders", "web", "--database", "shop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("password (shown once):"), "{}", stdout(&o));
    let o = app.cli(&["user", "list", "orders"]);
    assert!(
        stdout(&o).contains("web") && stdout(&o).contains("shop"),
        "{}",
        stdout(&o)
    );
    let o = app.cli(&["user", "delete", "orders", "web"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = app.cli(&["db", "delete", "orders", "shop", "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = app.cli(&["node", "remove", "orders", &replica, "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = app.cli(&["cluster", "delete", "orders", "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("cluster orders deleted in"), "{}", stdout(&o));
    assert!(app.mariadbd_pids().is_empty());
    let o = app.cli(&["cluster", "list"]);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
}

#[test]
fn cli_help_lists_commands() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_marina"))
        .arg("--help")
        .output()
        .unwrap();
    let out = stdout(&o);
    for cmd in ["serve", "cluster", "operation", "node-size", "node", "db", "user"] {
        assert!(out.contains(cmd), "{out}");
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let out = stdout(&o);
    for flag in ["--listen", "--data-dir", "--config", "--endpoints"] {
        assert!(out.contains(flag), "{out}");
    }
}
