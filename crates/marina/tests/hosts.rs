//! Hosts (issue 23, first slice): `marina serve` registers its own machine
//! as the one local host at start (zone from `hosts.zone`); nodes name their
//! host and zone; operators list, show, cordon, uncordon and drain hosts
//! (other tenants get 403); placement refuses what it cannot spread when
//! asked to spread, and a cordoned host takes no new node.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_host_is_listed_placed_on_and_cordoned() {
    let app = TestApp::start_configured("kernel", "[hosts]\nzone = \"a\"\n").await;
    let (s, list) = app.get("/v1/hosts").await;
    assert_eq!(s, 200, "{list}");
    let hosts = list["data"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{list}");
    let h = &hosts[0];
    let id = h["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("hs_"), "{h}");
    assert_eq!(
        (h["object"].clone(), h["zone"].clone(), h["status"].clone(), h["local"].clone()),
        (json!("host"), json!("a"), json!("active"), json!(true))
    );
    assert_eq!(h["memory_bytes"], json!(64u64 << 30), "{h}");
    assert_eq!(h["nodes"], 0);
    assert!(h["cpus"].as_u64().unwrap() >= 1 && h["disk_bytes"].as_u64().unwrap() > 0, "{h}");

    // Nodes show their host and zone; the host counts them.
    let (c, _) = app.create_cluster("placed", 2).await;
    for n in c["nodes"].as_array().unwrap() {
        assert_eq!((n["host_id"].as_str(), n["zone"].as_str()), (Some(id.as_str()), Some("a")), "{n}");
    }
    let (s, h) = app.get(&format!("/v1/hosts/{id}")).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["nodes"], 2, "{h}");
    assert_eq!(h["memory_used_bytes"], json!(2u64 << 30), "{h}");

    // Spreading 2 nodes over one host is refused, saying how to share it.
    let (s, e) = app
        .post(
            "/v1/clusters",
            json!({"name": "spread", "size_id": "xsmall", "nodes": 2, "placement": "spread"}),
        )
        .await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["error"]["code"], "capacity_exceeded", "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("best_effort"), "{e}");
    let (s, e) = app
        .post(
            "/v1/clusters",
            json!({"name": "bad", "size_id": "xsmall", "placement": "everywhere"}),
        )
        .await;
    assert_eq!(s, 400, "{e}");

    // Another tenant may not see or change hosts.
    let (s, t) = app.post("/v1/tenants", json!({"name": "team-h"})).await;
    assert_eq!(s, 201, "{t}");
    let other = t["secret"].as_str().unwrap().to_string();
    for (method, path) in [
        (reqwest::Method::GET, "/v1/hosts".to_string()),
        (reqwest::Method::GET, format!("/v1/hosts/{id}")),
        (reqwest::Method::POST, format!("/v1/hosts/{id}/cordon")),
    ] {
        let (s, e) = app.request(method, &path, None, Some(&other)).await;
        assert_eq!(s, 403, "{path}: {e}");
    }

    // Cordoned: it keeps its nodes and takes no new one.
    let (s, h) = app.post(&format!("/v1/hosts/{id}/cordon"), json!({})).await;
    assert_eq!((s, h["status"].clone()), (200, json!("cordoned")), "{h}");
    let (s, e) = app
        .post("/v1/clusters", json!({"name": "refused", "size_id": "xsmall"}))
        .await;
    assert_eq!(s, 409, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("no active host"), "{e}");
    // A host with nodes cannot be drained while no other host can take them.
    let (s, e) = app.post(&format!("/v1/hosts/{id}/drain"), json!({})).await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = app.post("/v1/hosts/hs_nothere00000000/cordon", json!({})).await;
    assert_eq!(s, 404, "{e}");

    // The CLI: list, show, uncordon; then the host takes nodes again.
    let o = app.cli(&["host", "list"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&id) && out.contains("cordoned") && out.contains("2.0/64 GiB"), "{out}");
    let o = app.cli(&["host", "uncordon", &id, "--output", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h["status"], "active", "{h}");
    let (c, _) = app.create_cluster("after", 1).await;
    assert_eq!(c["nodes"][0]["host_id"], id.as_str());
    let o = app.cli(&["host", "show", &id, "--output", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h["nodes"], 3, "{h}");
}
