//! Cloud 66's documented workflow (seed `002_…`) against Marina with the
//! seed's own curl commands (host and token replaced): list the stacks, list a
//! stack's services, restart them with `-d command=service_restart` and poll
//! the action until `finished_success`. The restart is Marina's rolling
//! cluster reboot (every node restarted, visible natively), and a native
//! reboot is visible as an action; errors use Cloud 66's form.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud66_stack_workflow_runs_against_marina() {
    let app = TestApp::start().await;
    let (c, _) = app.create_cluster("storefront", 2).await;
    let uid = c["id"].as_str().unwrap().to_string();
    let (_, tok) = app
        .post("/v1/tokens", json!({"name": "cloud66", "scopes": ["write"]}))
        .await;
    let bearer = format!("Authorization: Bearer {}", tok["secret"].as_str().unwrap());
    let api = format!("{}/api/3", app.url);

    // Your first request.
    let (s, stacks) = curl(&["-X", "GET", &format!("{api}/stacks.json"), "-H", &bearer]).await;
    assert_eq!(s, 200, "{stacks}");
    assert_eq!(stacks["count"], 1, "{stacks}");
    assert_eq!(stacks["pagination"]["pages"], 1);
    let stack = &stacks["response"][0];
    assert_eq!(stack["uid"], uid.as_str());
    assert_eq!(stack["name"], "storefront");
    assert_eq!(stack["health"], 3, "{stack}");
    let (s, same) = curl(&["-X", "GET", &format!("{api}/stacks"), "-H", &bearer]).await;
    assert_eq!((s, &same["response"]), (200, &stacks["response"]));
    let (s, one) = curl(&["-X", "GET", &format!("{api}/stacks/{uid}"), "-H", &bearer]).await;
    assert_eq!(s, 200);
    assert_eq!(one["response"]["uid"], uid.as_str());

    // Get a list of running services: the database and its nodes.
    let (s, services) = curl(&["-X", "GET", &format!("{api}/stacks/{uid}/services"), "-H", &bearer]).await;
    assert_eq!(s, 200, "{services}");
    let svc = &services["response"][0];
    assert_eq!(svc["name"], "mariadb");
    let containers = svc["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "{svc}");
    let mut node_ids: Vec<String> = containers
        .iter()
        .map(|k| k["uid"].as_str().unwrap().to_string())
        .collect();
    node_ids.sort();
    let mut native_ids: Vec<String> = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    native_ids.sort();
    assert_eq!(node_ids, native_ids);
    assert!(containers.iter().all(|k| k["health_state"] == 1), "{svc}");

    // Restart a service, step 1: `-d command=service_restart`.
    let pids: Vec<i32> = native_ids.iter().map(|n| pid_of(&app, n)).collect();
    let (s, started) = curl(&[
        "-X",
        "POST",
        &format!("{api}/stacks/{uid}/action"),
        "-H",
        &bearer,
        "-d",
        "command=service_restart",
    ])
    .await;
    assert_eq!(s, 200, "{started}");
    let action = &started["response"];
    assert_eq!(action["action"], "service_restart");
    assert_eq!(action["started_via"], "api");
    assert!(action["finished_success"].is_null(), "{action}");
    let action_id = action["resource_id"].as_str().unwrap().to_string();
    assert_eq!(action["id"], action_id.as_str());

    // Step 2: poll the action until it is done.
    let done = eventually(Duration::from_secs(120), "service_restart finished", || async {
        let (s, a) = curl(&[
            "-X",
            "GET",
            &format!("{api}/stacks/{uid}/action/{action_id}"),
            "-H",
            &bearer,
        ])
        .await;
        assert_eq!(s, 200, "{a}");
        a["response"]["finished_at"].is_string().then_some(a)
    })
    .await;
    assert_eq!(done["response"]["finished_success"], true, "{done}");
    assert!(done["response"]["started_at"].is_string());
    // It was Marina's rolling reboot: visible natively, every node restarted.
    let (_, op) = app.get(&format!("/v1/operations/{action_id}")).await;
    assert_eq!(op["type"], "reboot_cluster", "{op}");
    assert_eq!(op["status"], "succeeded");
    for (n, pid) in native_ids.iter().zip(&pids) {
        assert_ne!(pid_of(&app, n), *pid, "node {n} was not restarted");
    }

    // A native reboot, visible as a Cloud 66 action.
    let (s, native) = app.post(&format!("/v1/clusters/{uid}/reboot"), json!({})).await;
    assert_eq!(s, 202, "{native}");
    let native_op = native["operation"]["id"].as_str().unwrap();
    let (s, a) = curl(&[
        "-X",
        "GET",
        &format!("{api}/stacks/{uid}/action/{native_op}"),
        "-H",
        &bearer,
    ])
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["response"]["action"], "service_restart");
    // One operation at a time, as natively: a second restart is refused.
    let (s, busy) = curl(&[
        "-X",
        "POST",
        &format!("{api}/stacks/{uid}/action"),
        "-H",
        &bearer,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"command": "service_restart"}"#,
    ])
    .await;
    assert_eq!(s, 409, "{busy}");
    assert_eq!(busy["error"], "conflict", "{busy}");
    assert!(
        busy["error_description"].as_str().unwrap().contains(native_op),
        "{busy}"
    );
    app.wait_op(native_op, Duration::from_secs(120)).await;

    // Errors in Cloud 66's form.
    let (s, e) = curl(&[
        "-X",
        "POST",
        &format!("{api}/stacks/{uid}/action"),
        "-H",
        &bearer,
        "-d",
        "command=clear_caches",
    ])
    .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"], "invalid_request");
    assert!(e["error_description"].as_str().unwrap().contains("clear_caches"));
    let (s, e) = curl(&["-X", "GET", &format!("{api}/stacks.json")]).await;
    assert_eq!(s, 401, "{e}");
    assert_eq!(e["error"], "unauthenticated");
    let (s, e) = curl(&["-X", "GET", &format!("{api}/stacks/cl_nope/services"), "-H", &bearer]).await;
    assert_eq!(s, 404, "{e}");
    assert_eq!(e["error"], "not_found");
    let (s, e) = curl(&[
        "-X",
        "GET",
        &format!("{api}/stacks/{uid}/action/op_nope"),
        "-H",
        &bearer,
    ])
    .await;
    assert_eq!(s, 404, "{e}");
    // A read-only token may look, not act.
    let (_, ro) = app
        .post("/v1/tokens", json!({"name": "c66-ro", "scopes": ["read"]}))
        .await;
    let ro = format!("Authorization: Bearer {}", ro["secret"].as_str().unwrap());
    let (s, _) = curl(&["-X", "GET", &format!("{api}/stacks.json"), "-H", &ro]).await;
    assert_eq!(s, 200);
    let (s, e) = curl(&[
        "-X",
        "POST",
        &format!("{api}/stacks/{uid}/action"),
        "-H",
        &ro,
        "-d",
        "command=service_restart",
    ])
    .await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(e["error"], "forbidden");
}
