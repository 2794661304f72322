//! Issue #4 items: per-tenant quotas (409 `quota_exceeded` naming the limit),
//! the request body limit (413 with the contract's error body), and no secret
//! in logs, events or API output after it was shown once.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_what_the_tenant_may_not_have() {
    let app = TestApp::start_configured("kernel", "[quotas]\nclusters = 2\nnodes = 3\nmemory_gib = 2.5\n").await;
    let create = |name: &str, nodes: u32| json!({"name": name, "size_id": "xsmall", "nodes": nodes});
    let (s, e) = app.post("/v1/clusters", create("big", 3)).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("quota_exceeded")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("2.5 GiB"), "{e}");
    let (s, e) = app.post("/v1/clusters", create("wide", 4)).await;
    assert_eq!(s, 409, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("quota is 3 nodes"),
        "{e}"
    );
    for name in ["one", "two"] {
        let (s, b) = app.post("/v1/clusters", create(name, 1)).await;
        assert_eq!(s, 202, "{b}");
        app.wait_op(b["operation"]["id"].as_str().unwrap(), Duration::from_secs(60))
            .await;
    }
    let (s, e) = app.post("/v1/clusters", create("three", 1)).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("quota_exceeded")), "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("quota is 2 clusters"),
        "{e}"
    );
    // Another tenant has its own quota.
    let (_, t) = app.post("/v1/tenants", json!({"name": "other"})).await;
    let other = t["secret"].as_str().unwrap().to_string();
    let (s, b) = app
        .request(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(create("three", 1)),
            Some(&other),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    app.wait_op_as(b["operation"]["id"].as_str().unwrap(), &other, Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    // Just over the 64 KiB limit: the whole body fits in loopback socket
    // buffers, so the client always gets to read the answer.
    let app = TestApp::start().await;
    let big = json!({"name": "x".repeat(70_000), "size_id": "xsmall"});
    let (s, e) = app.post("/v1/clusters", big).await;
    assert_eq!(s, 413, "{e}");
    assert_eq!(e["error"]["code"], "payload_too_large");
    assert!(e["error"]["request_id"].as_str().is_some());
    let (s, e) = app
        .post(
            "/v1/clusters/cl_x/switchover",
            json!({"target_node_id": "n".repeat(70_000)}),
        )
        .await;
    assert_eq!(s, 413, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_shown_again() {
    let app = TestApp::start().await;
    let (c, password) = app.create_cluster("secretive", 2).await;
    let id = c["id"].as_str().unwrap();
    let (_, t) = app
        .post("/v1/tokens", json!({"name": "leaky", "scopes": ["read"]}))
        .await;
    let secret = t["secret"].as_str().unwrap().to_string();
    let (_, sg) = app.post("/v1/security-groups", json!({"name": "g"})).await;
    let _ = app
        .get(&format!("/v1/security-groups/{}", sg["id"].as_str().unwrap()))
        .await;
    // Use the token so it appears in request handling.
    let _ = app
        .request(reqwest::Method::GET, "/v1/clusters", None, Some(&secret))
        .await;
    let _ = app
        .request(
            reqwest::Method::GET,
            "/v1/clusters",
            None,
            Some("mrn_wrong_secret_value"),
        )
        .await;
    let mut seen = String::new();
    for path in [
        "/v1/clusters".to_string(),
        format!("/v1/clusters/{id}"),
        format!("/v1/clusters/{id}/events?limit=500"),
        format!("/v1/clusters/{id}/operations"),
        format!("/v1/clusters/{id}/status"),
        format!("/v1/clusters/{id}/nodes"),
        "/v1/tokens".to_string(),
        "/v1/openapi.json".to_string(),
        "/v1/audit-events?limit=500".to_string(),
    ] {
        let (_, body) = app.get(&path).await;
        seen.push_str(&body.to_string());
    }
    seen.push_str(&app.metrics().await);
    seen.push_str(&app.log());
    // The generated management and replication passwords, read the way Marina
    // does (sealed in the store, opened with the key file).
    let store = marina_store::SqliteStore::open(&app.data_dir().join("marina.db"))
        .await
        .unwrap();
    use marina_store::prelude::*;
    let record = store.get_cluster(None, id).await.unwrap().unwrap();
    let sealed = marina_core::secrets::SecretBox::open(&app.data_dir())
        .unwrap()
        .open_sealed(&record.secrets_enc, marina_core::secrets::SealedFor::Cluster(id))
        .unwrap();
    let generated: marina_common::model::ClusterSecrets = serde_json::from_slice(&sealed).unwrap();
    assert!(generated.mgmt_password.len() >= 16 && generated.repl_password.len() >= 16);
    for file in ["marina.db", "marina.db-wal"] {
        let bytes = std::fs::read(app.data_dir().join(file)).unwrap_or_default();
        for pw in [&generated.mgmt_password, &generated.repl_password] {
            assert!(
                !bytes.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "{file} holds a password in clear"
            );
        }
    }
    for dir in std::fs::read_dir(app.data_dir().join("nodes")).unwrap().flatten() {
        for f in ["my.cnf", "init.sql", "error.log"] {
            seen.push_str(&std::fs::read_to_string(dir.path().join(f)).unwrap_or_default());
        }
    }
    assert!(!seen.contains(&password), "the admin password leaked");
    assert!(
        !seen.contains(&generated.mgmt_password),
        "the management password leaked"
    );
    assert!(
        !seen.contains(&generated.repl_password),
        "the replication password leaked"
    );
    assert!(!seen.contains(&secret), "a token secret leaked");
    assert!(!seen.contains(&app.token), "the bootstrap token leaked");
    assert!(
        !seen.contains("mrn_wrong_secret_value"),
        "a presented (wrong) secret was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_rate_get_429_with_retry_after() {
    let app = TestApp::start_configured("kernel", "[limits]\nrequests_per_second = 2.0\nburst = 5.0\n").await;
    let client = marina_cli::client::http_builder().build().unwrap();
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..12 {
        let r = client
            .get(format!("{}/v1/tenants/current", app.url))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 && limited.is_none() {
            let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            limited = Some((retry, body));
        }
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    let (retry, body) = limited.expect("some requests were limited");
    assert!(retry >= 1);
    assert_eq!(body["error"]["code"], "rate_limited");
    // Health checks are not limited.
    let r = client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Another address with another token has its own buckets (the token is
    // created from the first address once a request has refilled).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, t) = app
        .post("/v1/tokens", json!({"name": "other", "scopes": ["read"]}))
        .await;
    let other = t["secret"].as_str().unwrap().to_string();
    let elsewhere = marina_cli::client::http_builder()
        .local_address(Some("127.0.0.9".parse().unwrap()))
        .build()
        .unwrap();
    let r = elsewhere
        .get(format!("{}/v1/clusters", app.url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
