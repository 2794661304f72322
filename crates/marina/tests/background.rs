//! The background-task driver: a task that panics is a recorded failure and
//! keeps being activated, an evaluation that panics releases its cluster, an
//! operation step that panics fails the operation (rolled back) instead of
//! leaving the cluster busy — and every task reports at
//! `GET /v1/background-tasks`, in the CLI and in `/metrics`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn task(app: &TestApp, name: &str) -> Value {
    let (s, body) = app.get("/v1/background-tasks").await;
    assert_eq!(s, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no task {name}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_are_recorded_failures_and_nothing_stays_busy() {
    let mut app = TestApp::start().await;
    app.kill_server();
    app.extra_env.push((
        "MARINA_PANICPOINT".into(),
        "task:refusal_reporter,monitor:evaluate,step:backup:finalize".into(),
    ));
    app.spawn_server(None);

    // Every task is listed; the panicking one keeps being activated.
    let (s, body) = app.get("/v1/background-tasks").await;
    assert_eq!(s, 200, "{body}");
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in [
        "operation_worker",
        "supervisor",
        "monitor",
        "refusal_reporter",
        "audit_pruner",
        "backup_scheduler",
        "binlog_archiver",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let reporter = eventually(Duration::from_secs(10), "three panicked activations", || async {
        let t = task(&app, "refusal_reporter").await;
        (t["failures"].as_u64() >= Some(3)).then_some(t)
    })
    .await;
    assert_eq!(reporter["last"]["result"], "panicked", "{reporter}");
    assert_eq!(
        reporter["last"]["error"], "panic point task:refusal_reporter",
        "{reporter}"
    );
    assert_eq!(reporter["activations"], reporter["failures"], "{reporter}");
    let worker = task(&app, "operation_worker").await;
    assert_eq!(worker["failures"], 0, "{worker}");
    assert_eq!(worker["last"]["result"], "ok", "{worker}");

    // Evaluations panic on every tick, yet each tick starts one: the guard
    // released the cluster when the previous one panicked.
    let (c, _) = app.create_cluster("watched", 1).await;
    let id = c["id"].as_str().unwrap().to_string();
    let first = eventually(Duration::from_secs(10), "an evaluation", || async {
        let t = task(&app, "monitor").await;
        (t["last"]["details"]["evaluations"] == 1).then_some(t)
    })
    .await;
    let later = eventually(Duration::from_secs(10), "evaluations on later ticks", || async {
        let t = task(&app, "monitor").await;
        (t["activations"].as_u64() > first["activations"].as_u64().map(|a| a + 3)).then_some(t)
    })
    .await;
    assert_eq!(later["last"]["details"]["evaluations"], 1, "{later}");
    assert_eq!(later["last"]["result"], "ok", "{later}");

    // A step that panics fails its operation, which is rolled back; the
    // cluster is not left busy and the worker goes on.
    for attempt in 0..2 {
        let (s, body) = app
            .post(&format!("/v1/clusters/{id}/backups"), json!({"method": "logical"}))
            .await;
        assert_eq!(s, 202, "attempt {attempt}: {body}");
        let op = app
            .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(60))
            .await;
        assert_eq!(op["status"], "failed", "{op}");
        let msg = op["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("a step panicked: panic point step:backup:finalize"),
            "{op}"
        );
    }
    let (s, c) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("active")), "{c}");

    // The CLI and /metrics show the same.
    let out = app.cli(&["background-task", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("refusal_reporter") && l.contains("panicked")),
        "{text}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("marina_background_task_activations_total{task=\"refusal_reporter\",result=\"panicked\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("marina_background_task_activations_total{task=\"monitor\",result=\"ok\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_tasks_are_the_operators() {
    let app = TestApp::start().await;
    let (_, t) = app.post("/v1/tenants", json!({"name": "other"})).await;
    let other = t["secret"].as_str().unwrap().to_string();
    let (s, body) = app
        .request(reqwest::Method::GET, "/v1/background-tasks", None, Some(&other))
        .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
}

/// A crash between a step's failure and the operation's end: after the
/// restart only the failure handler runs, never the failed step again (here
/// the step would succeed if re-run, so a re-run would show as a success).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_failure_runs_only_the_failure_handler() {
    let mut app = TestApp::start().await;
    let (c, _) = app.create_cluster("rollback", 1).await;
    let id = c["id"].as_str().unwrap().to_string();
    app.extra_env
        .push(("MARINA_PANICPOINT".into(), "step:backup:finalize".into()));
    app.crash_during(
        "backup:on_failure:before",
        reqwest::Method::POST,
        &format!("/v1/clusters/{id}/backups"),
        Some(json!({"method": "logical"})),
    )
    .await;
    // `crash_during` restarted the server with the panic point still armed:
    // restart it once more without, so a re-run step would succeed.
    app.kill_server();
    app.extra_env.clear();
    app.spawn_server(None);
    let (_, ops) = app.get(&format!("/v1/clusters/{id}/operations")).await;
    let op = ops["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "backup")
        .cloned()
        .expect("the backup operation");
    let op = app.wait_op(op["id"].as_str().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(op["status"], "failed", "{op}");
    assert!(
        op["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("a step panicked: panic point step:backup:finalize"),
        "{op}"
    );
    let finalize = op["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "finalize")
        .cloned()
        .unwrap();
    assert_eq!(finalize["status"], "failed", "{op}");
    // The handler ran: the backup is failed, the cluster serves.
    let (_, backups) = app.get(&format!("/v1/clusters/{id}/backups")).await;
    assert_eq!(backups["data"][0]["status"], "failed", "{backups}");
    let (_, c) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(c["status"], "active", "{c}");
}
