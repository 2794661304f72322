//! MedStack Control's documented workflow (seed `004_…`) against Marina, with
//! the documented requests (Basic token key:value, the curl examples' paths
//! and bodies), on a real cluster; changes through the adapter show in the
//! native API and the other way round.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

struct MedStack<'a> {
    app: &'a TestApp,
    basic: String,
}

impl MedStack<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = marina_cli::client::http_builder()
            .build()
            .unwrap()
            .request(method, format!("{}{path}", self.app.url))
            .header("accept", "application/json")
            .header("authorization", format!("Basic {}", self.basic));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls a node until its status is `want`.
    async fn node_until(&self, path: &str, want: &str) -> Value {
        eventually(Duration::from_secs(120), want, || async {
            let (s, n) = self.call(reqwest::Method::GET, path, None).await;
            (s == 200 && n["status"] == want).then_some(n)
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medstack_node_workflow_runs_against_marina() {
    let app = TestApp::start().await;
    let (c, _) = app.create_cluster("patient-logbook", 1).await;
    let cluster_id = c["id"].as_str().unwrap().to_string();
    let (_, tok) = app
        .post("/v1/tokens", json!({"name": "medstack", "scopes": ["write"]}))
        .await;
    let key = tok["token"]["id"].as_str().unwrap();
    let value = tok["secret"].as_str().unwrap();
    let ms = MedStack {
        app: &app,
        basic: base64::engine::general_purpose::STANDARD.encode(format!("{key}:{value}")),
    };

    // Retrieve current company.
    let (s, company) = ms.call(reqwest::Method::GET, "/v1/companies/current", None).await;
    assert_eq!(s, 200, "{company}");
    assert_eq!(company["object"], "company");
    let company_id = company["id"].as_str().unwrap().to_string();

    // List all clusters.
    let (s, clusters) = ms
        .call(
            reqwest::Method::GET,
            &format!("/v1/companies/{company_id}/clusters"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{clusters}");
    assert_eq!(clusters["object"], "list");
    let listed = &clusters["data"][0];
    assert_eq!(listed["id"], cluster_id.as_str());
    assert_eq!(listed["label"], "patient-logbook");
    let base = format!("/v1/companies/{company_id}/clusters/{cluster_id}");

    // List all node sizes.
    let (s, sizes) = ms.call(reqwest::Method::GET, &format!("{base}/node-sizes"), None).await;
    assert_eq!(s, 200, "{sizes}");
    assert_eq!(sizes["object"], "list");
    let small = sizes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["title"].as_str().unwrap().starts_with("Small"))
        .unwrap()
        .clone();
    assert!(small["id"].as_str().unwrap().starts_with("node_size_"), "{small}");
    assert_eq!(small["object"], "node_size");
    assert!(small["vcpu"].is_u64() && small["memory"].is_f64(), "{small}");
    let xsmall = sizes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["id"] == "node_size_xsmall")
        .unwrap()
        .clone();

    // Create a node: 202 creating, no address or OS yet; then active.
    let (s, node) = ms
        .call(
            reqwest::Method::POST,
            &format!("{base}/nodes"),
            Some(json!({"size_id": xsmall["id"]})),
        )
        .await;
    assert_eq!(s, 202, "{node}");
    assert_eq!(node["status"], "creating");
    assert!(
        node["public_ip_address"].is_null() && node["operating_system"].is_null(),
        "{node}"
    );
    let node_id = node["id"].as_str().unwrap().to_string();
    let node_path = format!("{base}/nodes/{node_id}");
    let active = ms.node_until(&node_path, "active").await;
    assert!(active["public_ip_address"].is_string(), "{active}");
    assert!(active["operating_system"].is_string(), "{active}");
    // Made through the adapter, visible natively.
    let (_, native) = app.get(&format!("/v1/clusters/{cluster_id}/nodes/{node_id}")).await;
    assert_eq!(native["role"], "replica");
    assert_eq!(native["status"], "active");

    // Resize a node: resizing with the old size, then active with the new.
    let (s, resizing) = ms
        .call(
            reqwest::Method::PATCH,
            &node_path,
            Some(json!({"size_id": small["id"]})),
        )
        .await;
    assert_eq!(s, 202, "{resizing}");
    assert_eq!(resizing["status"], "resizing");
    assert_eq!(resizing["size"]["id"], "node_size_xsmall");
    let resized = ms.node_until(&node_path, "active").await;
    assert_eq!(resized["size"]["id"], small["id"]);
    assert_eq!(resized["size"]["title"], small["title"]);

    // Reboot a node (a GET, as documented).
    let pid = std::fs::read_to_string(app.data_dir().join("nodes").join(&node_id).join("mariadbd.pid")).unwrap();
    let (s, rebooting) = ms
        .call(reqwest::Method::GET, &format!("{node_path}/reboot"), None)
        .await;
    assert_eq!(s, 202, "{rebooting}");
    ms.node_until(&node_path, "active").await;
    let pid2 = std::fs::read_to_string(app.data_dir().join("nodes").join(&node_id).join("mariadbd.pid")).unwrap();
    assert_ne!(pid, pid2, "the node was not restarted");

    // A native change, visible through the adapter.
    let (s, op) = app
        .post(
            &format!("/v1/clusters/{cluster_id}/nodes/{node_id}/maintenance"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(s, 202);
    app.wait_op(op["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    ms.node_until(&node_path, "maintenance").await;
    let (_, op) = app
        .post(
            &format!("/v1/clusters/{cluster_id}/nodes/{node_id}/maintenance"),
            json!({"enabled": false}),
        )
        .await;
    app.wait_op(op["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;

    // Destroy a node.
    let (s, deleting) = ms.call(reqwest::Method::DELETE, &node_path, None).await;
    assert_eq!(s, 202, "{deleting}");
    eventually(Duration::from_secs(60), "node gone", || async {
        let (s, _) = ms.call(reqwest::Method::GET, &node_path, None).await;
        (s == 404).then_some(())
    })
    .await;
    let (_, native) = app.get(&format!("/v1/clusters/{cluster_id}/nodes")).await;
    assert_eq!(native["data"].as_array().unwrap().len(), 1);

    // Another company's paths, and a key that is not the value's, are refused.
    let (s, _) = ms
        .call(reqwest::Method::GET, "/v1/companies/tn_someoneelse/clusters", None)
        .await;
    assert_eq!(s, 404);
    let wrong = MedStack {
        app: &app,
        basic: base64::engine::general_purpose::STANDARD.encode(format!("tok_other:{value}")),
    };
    let (s, body) = wrong.call(reqwest::Method::GET, "/v1/companies/current", None).await;
    assert_eq!(s, 401, "{body}");
}
