//! The contract's conventions without clusters doing work: service routes, auth
//! (401/403), tenant isolation (404), the validation table (400/409/415), error
//! bodies with request ids, list shape and paging, and the OpenAPI document
//! covering every route the router serves.

mod common;

use common::*;
use marina_common::model::{Scope, Tenant, TokenRecord};
use marina_store::prelude::*;
use serde_json::{Value, json};

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty(), "{body}");
    assert!(
        body["error"]["request_id"].as_str().unwrap_or("").starts_with("req_"),
        "{body}"
    );
}

/// Adds a tenant and a token straight into the store (as the issue asks).
async fn add_tenant(app: &TestApp, name: &str, scopes: &[Scope]) -> String {
    let store = marina_store::SqliteStore::open(&app.data_dir().join("marina.db"))
        .await
        .unwrap();
    let tenant = Tenant {
        id: marina_common::ids::new_id("tn"),
        name: name.into(),
        created_at: marina_common::time_fmt::now_rfc3339(),
        operator: false,
    };
    store.create_tenant(&tenant).await.unwrap();
    let secret = format!("mrn_test_{}", marina_common::ids::random_secret(16));
    let token = TokenRecord {
        id: marina_common::ids::new_id("tok"),
        tenant_id: tenant.id.clone(),
        name: "t".into(),
        scopes: scopes.to_vec(),
        created_at: marina_common::time_fmt::now_rfc3339(),
        last_used_at: None,
    };
    use sha2_hash::hash;
    store.create_token(&token, &hash(&secret)).await.unwrap();
    secret
}

mod sha2_hash {
    /// Same hashing as the server (SHA-256 hex), recomputed independently.
    pub fn hash(secret: &str) -> String {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(secret.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_routes_and_auth() {
    let app = TestApp::start().await;
    let (s, v) = app.request(reqwest::Method::GET, "/", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["versions"][0]["id"], "v1");
    assert_eq!(v["versions"][0]["status"], "CURRENT");
    assert_eq!(v["versions"][0]["links"][0]["rel"], "self");
    let (s, v) = app.request(reqwest::Method::GET, "/v1", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["version"]["id"], "v1");
    let (s, v) = app.request(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!((s, v), (200, json!({"status": "ok"})));

    // 401 without or with a wrong token; X-Auth-Token works too.
    let (s, b) = app.request(reqwest::Method::GET, "/v1/clusters", None, None).await;
    assert_error(s, &b, 401, "unauthenticated");
    let (s, b) = app
        .request(reqwest::Method::GET, "/v1/clusters", None, Some("mrn_wrong"))
        .await;
    assert_error(s, &b, 401, "unauthenticated");
    let resp = marina_cli::client::http_builder()
        .build()
        .unwrap()
        .get(format!("{}/v1/tenants/current", app.url))
        .header("X-Auth-Token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-request-id").is_some());
    let t: Value = resp.json().await.unwrap();
    assert_eq!(t["object"], "tenant");
    assert_eq!(t["name"], "default");
    assert!(t["id"].as_str().unwrap().starts_with("tn_"));

    // The bootstrap token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(app.data_dir().join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(app.data_dir().join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Node sizes.
    let (s, sizes) = app.get("/v1/node-sizes").await;
    assert_eq!(s, 200);
    assert_eq!(sizes["object"], "list");
    let ids: Vec<&str> = sizes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["xsmall", "small", "medium", "large", "xlarge", "2xlarge"]);
    let (s, small) = app.get("/v1/node-sizes/small").await;
    assert_eq!(s, 200);
    assert_eq!(
        small,
        json!({"id": "small", "object": "node_size", "title": "Small: 2 cores, 2 GiB", "vcpu": 2, "memory": 2.0, "disk_gib": 20})
    );
    let (s, b) = app.get("/v1/node-sizes/huge").await;
    assert_error(s, &b, 404, "not_found");

    // Scopes: a read-only token reads but cannot create (403).
    let reader = add_tenant(&app, "readers", &[Scope::Read]).await;
    let (s, _) = app
        .request(reqwest::Method::GET, "/v1/clusters", None, Some(&reader))
        .await;
    assert_eq!(s, 200);
    let (s, b) = app
        .request(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "x", "size_id": "xsmall"})),
            Some(&reader),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_table_and_tenant_isolation() {
    let app = TestApp::start().await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"name": "ok", "size_id": "nope", "nodes": 1}),
            400,
            "invalid_request",
            "size_id",
        ),
        (
            json!({"name": "Bad_Name", "size_id": "xsmall"}),
            400,
            "invalid_request",
            "name",
        ),
        (
            json!({"name": "1db", "size_id": "xsmall"}),
            400,
            "invalid_request",
            "name",
        ),
        (
            json!({"name": "x".repeat(64), "size_id": "xsmall"}),
            400,
            "invalid_request",
            "name",
        ),
        (
            json!({"name": "ok", "size_id": "xsmall", "nodes": 0}),
            400,
            "invalid_request",
            "nodes",
        ),
        (
            json!({"name": "ok", "size_id": "xsmall", "nodes": 10}),
            400,
            "invalid_request",
            "nodes",
        ),
        (
            json!({"name": "ok", "size_id": "xsmall", "nodes": -1}),
            400,
            "invalid_request",
            "nodes",
        ),
        (
            json!({"name": "ok", "size_id": "xsmall", "nodes": "3"}),
            400,
            "invalid_request",
            "nodes",
        ),
        (json!({"size_id": "xsmall"}), 400, "invalid_request", "name"),
        (
            json!({"name": "ok", "size_id": "xsmall", "replication": "sync"}),
            400,
            "invalid_request",
            "replication",
        ),
        (
            json!({"name": "ok", "size_id": "xsmall", "version": "5.5"}),
            400,
            "invalid_request",
            "version",
        ),
        (
            json!({"name": "ok", "size_id": "xsmall", "security_group_ids": ["sg_x"]}),
            400,
            "invalid_request",
            "security group",
        ),
        (
            json!({"name": "ok", "size_id": "2xlarge", "nodes": 9}),
            409,
            "capacity_exceeded",
            "memory",
        ),
        (json!([1, 2]), 400, "invalid_request", "body"),
    ];
    for (body, status, code, mention) in cases {
        let (s, b) = app.post("/v1/clusters", body.clone()).await;
        assert_error(s, &b, status, code);
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(mention),
            "message for {body} should mention {mention}: {msg}"
        );
    }
    // Malformed JSON → 400; wrong content type → 415.
    let client = marina_cli::client::http_builder().build().unwrap();
    let resp = client
        .post(format!("{}/v1/clusters", app.url))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    assert_error(s, &resp.json().await.unwrap(), 400, "invalid_request");
    let resp = client
        .post(format!("{}/v1/clusters", app.url))
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    assert_error(s, &resp.json().await.unwrap(), 415, "unsupported_media_type");
    // Unknown cluster, operation and route; bad paging.
    let (s, b) = app.get("/v1/clusters/cl_doesnotexist").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.get("/v1/operations/op_doesnotexist").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.delete("/v1/clusters/cl_doesnotexist").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.get("/v1/nothing-here").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.get("/v1/clusters?limit=0").await;
    assert_error(s, &b, 400, "invalid_request");
    let (s, b) = app.get("/v1/clusters?limit=501").await;
    assert_error(s, &b, 400, "invalid_request");
    let (s, b) = app.get("/v1/clusters?cursor=zzz").await;
    assert_error(s, &b, 400, "invalid_request");
    let (s, b) = app
        .request(reqwest::Method::PUT, "/v1/clusters", None, Some(&app.token.clone()))
        .await;
    assert_eq!(s, 405, "{b}");
    assert_eq!(b["error"]["code"], "invalid_request");

    // A real cluster: duplicate name → 409; another tenant sees 404 everywhere.
    let (c, _) = app.create_cluster("dup", 1).await;
    let id = c["id"].as_str().unwrap();
    let (s, b) = app
        .post("/v1/clusters", json!({"name": "dup", "size_id": "xsmall"}))
        .await;
    assert_error(s, &b, 409, "conflict");
    let other = add_tenant(&app, "other", &[Scope::Read, Scope::Write, Scope::Admin]).await;
    for path in [
        format!("/v1/clusters/{id}"),
        format!("/v1/clusters/{id}/nodes"),
        format!("/v1/clusters/{id}/operations"),
        format!("/v1/clusters/{id}/events"),
        format!("/v1/clusters/{id}/nodes/{}", c["nodes"][0]["id"].as_str().unwrap()),
    ] {
        let (s, b) = app.request(reqwest::Method::GET, &path, None, Some(&other)).await;
        assert_error(s, &b, 404, "not_found");
    }
    let (_, ops) = app.get(&format!("/v1/clusters/{id}/operations")).await;
    let op_id = ops["data"][0]["id"].as_str().unwrap();
    let (s, b) = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/operations/{op_id}"),
            None,
            Some(&other),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/clusters/{id}"),
            None,
            Some(&other),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, list) = app
        .request(reqwest::Method::GET, "/v1/clusters", None, Some(&other))
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["data"], json!([]));
    // The other tenant may use the same name.
    let (s, b) = app
        .request(
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "dup", "size_id": "xsmall"})),
            Some(&other),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let op = app
        .wait_op_as(
            b["operation"]["id"].as_str().unwrap(),
            &other,
            std::time::Duration::from_secs(60),
        )
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");

    // A second delete while the first runs is a conflict, not a second operation.
    let (s, first) = app.delete(&format!("/v1/clusters/{id}")).await;
    assert_eq!(s, 202);
    let (s, b) = app.delete(&format!("/v1/clusters/{id}")).await;
    assert!(s == 409 || s == 404, "{s} {b}");
    app.wait_op(
        first["operation"]["id"].as_str().unwrap(),
        std::time::Duration::from_secs(60),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_follows_cursors() {
    let app = TestApp::start().await;
    // Paging is exercised on node sizes' sibling: clusters, with records only
    // (no need to wait for them to become active).
    let mut ops = Vec::new();
    for i in 0..3 {
        let (s, b) = app
            .post("/v1/clusters", json!({"name": format!("p{i}"), "size_id": "xsmall"}))
            .await;
        assert_eq!(s, 202, "{b}");
        ops.push(b["operation"]["id"].as_str().unwrap().to_string());
    }
    let (_, p1) = app.get("/v1/clusters?limit=2").await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().expect("a next cursor");
    let (_, p2) = app.get(&format!("/v1/clusters?limit=2&cursor={cursor}")).await;
    assert_eq!(p2["data"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    let names: Vec<&str> = p1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["data"].as_array().unwrap())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p0", "p1", "p2"]);
    for op in ops {
        app.wait_op(&op, std::time::Duration::from_secs(60)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_covers_every_route() {
    let app = TestApp::start().await;
    let (s, doc) = app.request(reqwest::Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // Every contract route of this issue is documented …
    let contract = [
        ("get", "/"),
        ("get", "/v1"),
        ("get", "/healthz"),
        ("get", "/v1/openapi.json"),
        ("get", "/v1/tenants/current"),
        ("get", "/v1/node-sizes"),
        ("get", "/v1/node-sizes/{size_id}"),
        ("get", "/v1/clusters"),
        ("post", "/v1/clusters"),
        ("get", "/v1/clusters/{cluster_id}"),
        ("delete", "/v1/clusters/{cluster_id}"),
        ("get", "/v1/clusters/{cluster_id}/nodes"),
        ("get", "/v1/clusters/{cluster_id}/nodes/{node_id}"),
        ("get", "/v1/clusters/{cluster_id}/operations"),
        ("get", "/v1/clusters/{cluster_id}/events"),
        ("get", "/v1/operations/{operation_id}"),
        ("patch", "/v1/clusters/{cluster_id}"),
        ("post", "/v1/tokens"),
        ("get", "/v1/tokens"),
        ("delete", "/v1/tokens/{token_id}"),
        ("post", "/v1/tenants"),
        ("get", "/v1/security-groups"),
        ("post", "/v1/security-groups"),
        ("get", "/v1/security-groups/{sg_id}"),
        ("delete", "/v1/security-groups/{sg_id}"),
        ("post", "/v1/security-groups/{sg_id}/rules"),
        ("delete", "/v1/security-groups/{sg_id}/rules/{rule_id}"),
        ("get", "/v1/clusters/{cluster_id}/status"),
        ("post", "/v1/clusters/{cluster_id}/switchover"),
        ("post", "/v1/clusters/{cluster_id}/failover"),
        ("get", "/v1/clusters/{cluster_id}/nodes/{node_id}/is-primary"),
        ("get", "/v1/clusters/{cluster_id}/nodes/{node_id}/is-replica"),
    ];
    for (m, p) in contract {
        assert!(
            paths.get(p).and_then(|i| i.get(m)).is_some(),
            "{m} {p} missing from the OpenAPI document"
        );
    }
    // … and every documented operation is served by the router (no fallback 404
    // or 405), so the router and the document cannot drift apart.
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{cluster_id}", "cl_x")
                .replace("{node_id}", "nd_x")
                .replace("{operation_id}", "op_x")
                .replace("{token_id}", "tok_x")
                .replace("{sg_id}", "sg_x")
                .replace("{rule_id}", "sgr_x")
                .replace("{size_id}", "small");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (m == reqwest::Method::POST || m == reqwest::Method::PATCH).then(|| json!({}));
            let (s, b) = app.request(m, &concrete, body, Some(&app.token.clone())).await;
            assert_ne!(s, 405, "{method} {path}: {b}");
            let route_missing = s == 404 && b["error"]["message"].as_str().unwrap_or("").starts_with("route ");
            assert!(!route_missing, "{method} {path} is documented but not routed: {b}");
        }
    }
}
