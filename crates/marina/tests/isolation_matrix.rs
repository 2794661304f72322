//! Isolation matrix (issue #4): every documented route that names a resource
//! is called as tenant B on tenant A's resources (must be 404, reads and
//! writes alike), and every mutating route is called with a `read` token of
//! tenant A (must be 403). The routes come from the OpenAPI document, so a new
//! route is covered the day it is added.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_isolates_tenants_and_checks_scopes() {
    let app = TestApp::start().await;
    // Tenant A's resources.
    let (c, _) = app.create_cluster("alpha", 2).await;
    let cluster_id = c["id"].as_str().unwrap().to_string();
    let node_id = c["nodes"][0]["id"].as_str().unwrap().to_string();
    let node_port = c["nodes"][0]["port"].as_u64().unwrap();
    let (_, ops) = app.get(&format!("/v1/clusters/{cluster_id}/operations")).await;
    let operation_id = ops["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(ops["data"][0]["type"], "create_cluster");
    let (_, sg) = app.post("/v1/security-groups", json!({"name": "a-group"})).await;
    let sg_id = sg["id"].as_str().unwrap().to_string();
    let (_, rule) = app
        .post(
            &format!("/v1/security-groups/{sg_id}/rules"),
            json!({"cidr": "127.0.0.0/8", "from_port": 1, "to_port": 65535}),
        )
        .await;
    let rule_id = rule["id"].as_str().unwrap().to_string();
    let (_, tok) = app
        .post("/v1/tokens", json!({"name": "a-reader", "scopes": ["read"]}))
        .await;
    let token_id = tok["token"]["id"].as_str().unwrap().to_string();
    let (_, bk) = app
        .post(
            &format!("/v1/clusters/{cluster_id}/backups"),
            json!({"method": "logical"}),
        )
        .await;
    let backup_id = bk["backup"]["id"].as_str().unwrap().to_string();
    app.wait_op(bk["operation"]["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    let reader = tok["secret"].as_str().unwrap().to_string();
    // Tenant B.
    let (_, t) = app.post("/v1/tenants", json!({"name": "tenant-b"})).await;
    let b = t["secret"].as_str().unwrap().to_string();

    let (_, company) = app.get("/v1/companies/current").await;
    let company_id = company["id"].as_str().unwrap().to_string();
    let (_, doc) = app.request(reqwest::Method::GET, "/v1/openapi.json", None, None).await;
    let fill = |p: &str| {
        p.replace("{cluster_id}", &cluster_id)
            .replace("{node_id}", &node_id)
            .replace("{operation_id}", &operation_id)
            .replace("{sg_id}", &sg_id)
            .replace("{rule_id}", &rule_id)
            .replace("{token_id}", &token_id)
            .replace("{backup_id}", &backup_id)
            .replace("{size_id}", "small")
            .replace("{name}", "x")
            .replace("{company_id}", &company_id)
            .replace("{clusterName}", "alpha")
            .replace("{serverName}", &node_id)
            .replace("{serverHost}", "127.0.0.1")
            .replace("{serverPort}", &node_port.to_string())
            .replace("{uid}", &cluster_id)
            .replace("{tenant_id}", &company_id)
            .replace("{instance_id}", &cluster_id)
            .replace("{flavor_id}", "101")
            .replace("{security_group_id}", &sg_id)
            .replace("{view}", "servers")
            .replace("{action}", "stop")
            .replace("{topology}", "master-slave")
            .replace("{backupMethod}", "physicalmaster")
            .replace("{id}", &operation_id)
    };
    // Bodies that would be valid for tenant A, so only ownership decides.
    let body_for = |path: &str, method: &str| -> Option<Value> {
        match (method, path) {
            ("post", p) if p.ends_with("/rules") => {
                Some(json!({"cidr": "127.0.0.3/32", "from_port": 3306, "to_port": 3306}))
            }
            ("post", "/v1/clusters") => Some(json!({"name": "beta", "size_id": "xsmall"})),
            ("post", "/v1/tokens") => Some(json!({"name": "x", "scopes": ["read"]})),
            ("post", "/v1/tenants") => Some(json!({"name": "tenant-c"})),
            ("post", "/v1/security-groups") => Some(json!({"name": "b-group"})),
            ("post", "/v1/ovh-applications") => Some(json!({"name": "b-app"})),
            ("patch", p) if p.contains("/nodes/") => Some(json!({"size_id": "small"})),
            ("post", p) if p.starts_with("/v1/companies/") => Some(json!({"size_id": "node_size_small"})),
            ("patch", _) => Some(json!({"failover": {"mode": "manual"}})),
            ("post", p) if p.ends_with("/databases") || p.ends_with("/users") => Some(json!({"name": "x"})),
            ("post", p) if p.ends_with("/maintenance") || p.ends_with("/read-only") => Some(json!({"enabled": true})),
            ("post", p) if p.starts_with("/api/3/") => Some(json!({"command": "service_restart"})),
            ("post", p) if p.ends_with("/instances") => Some(json!({"instance": {"name": "beta", "flavorRef": "100"}})),
            ("post", p) if p.ends_with("/action") && p.starts_with("/v1.0/") => Some(json!({"restart": {}})),
            ("post", p) if p.ends_with("/security-group-rules") => Some(json!({"security_group_rule": {
                "security_group_id": sg_id, "cidr": "127.0.0.4/32", "from_port": 3306, "to_port": 3306}})),
            ("post", _) => Some(json!({})),
            _ => None,
        }
    };
    let mut checked_404 = 0;
    let mut checked_403 = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // OVH's paths take signed requests, not bearer tokens: compat_ovh.rs
        // holds them to the same two rules with signed calls.
        if path.starts_with("/1.0/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = fill(path);
            // Tenant B on A's resource: exactly as if it did not exist.
            if path.contains('{') && !path.contains("{size_id}") {
                let (s, body) = app
                    .request(m.clone(), &concrete, body_for(path, method), Some(&b))
                    .await;
                // replication-manager's paths answer in the seed's own forms.
                if path == "/api/clusters/{clusterName}/status" {
                    assert_eq!(
                        (s, body.as_str()),
                        (400, Some("No cluster found : alpha")),
                        "{concrete}"
                    );
                } else if path.starts_with("/api/clusters/") {
                    assert_eq!((s, body.as_str()), (500, Some("No Cluster")), "{method} {concrete}");
                } else if path.starts_with("/clusters/") {
                    assert_eq!((s, body.as_str()), (500, Some("No cluster!")), "{concrete}");
                } else {
                    assert_eq!(s, 404, "tenant B {method} {concrete}: {body}");
                    assert_eq!(error_code(path, &body), "not_found", "{method} {concrete}: {body}");
                }
                checked_404 += 1;
            }
            // A read token on any mutating route (a login, and an agent's
            // join, need no token).
            if method != "get" && path != "/api/login" && path != "/v1/hosts/join" {
                let (s, body) = app
                    .request(m.clone(), &concrete, body_for(path, method), Some(&reader))
                    .await;
                assert_eq!(s, 403, "read token {method} {concrete}: {body}");
                assert_eq!(error_code(path, &body), "forbidden", "{method} {concrete}: {body}");
                checked_403 += 1;
            }
        }
    }
    assert!(checked_404 >= 15 && checked_403 >= 12, "{checked_404} / {checked_403}");
    // Nothing of A changed.
    let (_, c2) = app.get(&format!("/v1/clusters/{cluster_id}")).await;
    assert_eq!(c2["status"], "active");
    assert_eq!(c2["failover"]["mode"], "automatic");
    let (s, _) = app.get(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(s, 200);
    let (s, kept) = app.get(&format!("/v1/backups/{backup_id}")).await;
    assert_eq!((s, kept["status"].clone()), (200, json!("completed")));
    app.wait_op(&operation_id, Duration::from_secs(5)).await;
}

/// The error code of a body, in Marina's form or in the seed's whose path it is.
fn error_code(path: &str, body: &Value) -> String {
    if path.starts_with("/api/") && !path.starts_with("/api/3/") {
        // replication-manager's texts.
        return match body.as_str() {
            Some("No valid ACL") => "forbidden".into(),
            Some("No Cluster") => "not_found".into(),
            other => other.unwrap_or_default().into(),
        };
    }
    if path.starts_with("/v1.0/") {
        // OpenStack's `{"itemNotFound": {"message", "code"}}`.
        return match body.as_object().and_then(|o| o.keys().next()).map(String::as_str) {
            Some("itemNotFound") => "not_found".into(),
            Some(other) => other.into(),
            None => String::new(),
        };
    }
    let code = if path.starts_with("/api/3/") {
        &body["error"]
    } else {
        &body["error"]["code"]
    };
    code.as_str().unwrap_or_default().to_string()
}
