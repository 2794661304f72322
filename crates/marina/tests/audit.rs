//! The audit log (issue #4): every mutating call with a known token is
//! recorded with who (token, tenant), what (method, route, path), the result and
//! the source address; reads are not; the log is the tenant's own and needs
//! the `admin` scope.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_are_audited_per_tenant() {
    let app = TestApp::start_with("userspace").await;
    // A client calling from 127.0.0.5, so the source is checked for real.
    let from_5 = marina_cli::client::http_builder()
        .local_address(Some("127.0.0.5".parse().unwrap()))
        .build()
        .unwrap();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut req = from_5.request(method, format!("{}{path}", app.url)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let admin = app.token.clone();
    let post = reqwest::Method::POST;
    assert_eq!(
        call(
            post.clone(),
            "/v1/security-groups",
            &admin,
            Some(json!({"name": "office"}))
        )
        .await,
        201
    );
    assert_eq!(
        call(
            post.clone(),
            "/v1/security-groups",
            &admin,
            Some(json!({"name": "office"}))
        )
        .await,
        409
    );
    assert_eq!(
        call(reqwest::Method::DELETE, "/v1/clusters/cl_nope", &admin, None).await,
        404
    );
    assert_eq!(call(reqwest::Method::GET, "/v1/clusters", &admin, None).await, 200);
    let (_, reader) = app
        .post("/v1/tokens", json!({"name": "reader", "scopes": ["read"]}))
        .await;
    let reader_secret = reader["secret"].as_str().unwrap().to_string();
    let reader_id = reader["token"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            post.clone(),
            "/v1/security-groups",
            &reader_secret,
            Some(json!({"name": "x"}))
        )
        .await,
        403
    );
    // Unknown tokens have no tenant: counted as failed authentications, not audited.
    assert_eq!(
        call(
            post.clone(),
            "/v1/security-groups",
            "mrn_nope",
            Some(json!({"name": "y"}))
        )
        .await,
        401
    );

    let (s, log) = app.get("/v1/audit-events?limit=500").await;
    assert_eq!(s, 200, "{log}");
    assert_eq!(log["object"], "list");
    let events = log["data"].as_array().unwrap();
    let summary: Vec<(String, String, u64)> = events
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_string(),
                e["route"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("POST", "/v1/security-groups", 403),
        ("POST", "/v1/tokens", 201),
        ("DELETE", "/v1/clusters/{cluster_id}", 404),
        ("POST", "/v1/security-groups", 409),
        ("POST", "/v1/security-groups", 201),
    ];
    assert_eq!(
        summary,
        expected
            .iter()
            .map(|(m, r, s)| (m.to_string(), r.to_string(), *s))
            .collect::<Vec<_>>(),
        "newest first, reads and unauthenticated calls left out: {log}"
    );
    let (_, tokens) = app.get("/v1/tokens").await;
    let admin_id = tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] != reader_id.as_str())
        .unwrap()["id"]
        .clone();
    let (_, tenant) = app.get("/v1/tenants/current").await;
    let created = &events[4];
    assert_eq!(created["object"], "audit_event");
    assert!(created["id"].as_str().unwrap().starts_with("ae_"));
    assert_eq!(created["token_id"], admin_id);
    assert_eq!(created["tenant_id"], tenant["id"]);
    assert_eq!(created["source"], "127.0.0.5");
    assert_eq!(created["result"], "succeeded");
    assert_eq!(created["error_code"], Value::Null);
    assert!(created["request_id"].as_str().unwrap().starts_with("req"));
    assert_eq!(events[3]["result"], "failed");
    assert_eq!(events[3]["error_code"], "conflict");
    assert_eq!(events[2]["path"], "/v1/clusters/cl_nope");
    assert_eq!(events[2]["result"], "denied");
    assert_eq!(events[1]["source"], "127.0.0.1", "the harness client");
    assert_eq!(events[0]["token_id"], reader_id.as_str());
    assert_eq!(events[0]["error_code"], "forbidden");
    assert!(!log.to_string().contains(&reader_secret), "no secret in the audit log");

    // The log needs `admin`, and another tenant sees only its own.
    assert_eq!(
        call(reqwest::Method::GET, "/v1/audit-events", &reader_secret, None).await,
        403
    );
    let (_, other) = app.post("/v1/tenants", json!({"name": "other"})).await;
    let other_secret = other["secret"].as_str().unwrap();
    let (s, theirs) = app
        .request(reqwest::Method::GET, "/v1/audit-events", None, Some(other_secret))
        .await;
    assert_eq!(s, 200);
    assert_eq!(theirs["data"], json!([]), "{theirs}");
}
