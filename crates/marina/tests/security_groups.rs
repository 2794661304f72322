//! Security groups (issue #4): CRUD with validation, attaching to clusters at
//! create and by PATCH, and deletion refused while in use.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_group_crud_validation_and_attachment() {
    let app = TestApp::start().await;
    let (s, sg) = app
        .post(
            "/v1/security-groups",
            json!({"name": "office", "description": "the office"}),
        )
        .await;
    assert_eq!(s, 201, "{sg}");
    assert_eq!(sg["object"], "security_group");
    assert_eq!(sg["rules"], json!([]));
    let sg_id = sg["id"].as_str().unwrap().to_string();
    assert!(sg_id.starts_with("sg_"));
    let (s, e) = app.post("/v1/security-groups", json!({"name": "office"})).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("conflict")));

    // Rules: validated CIDRs (IPv4 and IPv6) and port ranges.
    let rules = format!("/v1/security-groups/{sg_id}/rules");
    let (s, r) = app
        .post(
            &rules,
            json!({"cidr": "127.0.0.2/32", "from_port": 3306, "to_port": 3306}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["object"], "security_group_rule");
    assert_eq!(r["security_group_id"], sg_id.as_str());
    assert!(r["id"].as_str().unwrap().starts_with("sgr_"));
    let (s, r6) = app
        .post(&rules, json!({"cidr": "fd00::/64", "from_port": 1, "to_port": 65535}))
        .await;
    assert_eq!(s, 201, "{r6}");
    for (body, hint) in [
        (
            json!({"cidr": "10.0.0.1/24", "from_port": 3306, "to_port": 3306}),
            "10.0.0.0/24",
        ),
        (
            json!({"cidr": "fd00::1/64", "from_port": 3306, "to_port": 3306}),
            "fd00::/64",
        ),
        (
            json!({"cidr": "banana", "from_port": 3306, "to_port": 3306}),
            "not a network",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": 0, "to_port": 3306}),
            "between 1 and 65535",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": 3306, "to_port": 70000}),
            "between 1 and 65535",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": 4000, "to_port": 3306}),
            "greater",
        ),
        (
            json!({"cidr": "10.0.0.0/8", "from_port": -1, "to_port": 3306}),
            "from_port",
        ),
    ] {
        let (s, e) = app.post(&rules, body.clone()).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(hint), "{body}: {e}");
    }
    let (_, got) = app.get(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(got["rules"].as_array().unwrap().len(), 2);
    let (_, list) = app.get("/v1/security-groups").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Attach at create; the cluster shows it; the group cannot be deleted meanwhile.
    let (s, body) = app
        .post(
            "/v1/clusters",
            json!({"name": "guarded", "size_id": "xsmall", "security_group_ids": [sg_id]}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["cluster"]["security_group_ids"], json!([sg_id]));
    let id = body["cluster"]["id"].as_str().unwrap().to_string();
    app.wait_op(
        body["operation"]["id"].as_str().unwrap(),
        std::time::Duration::from_secs(60),
    )
    .await;
    let (s, e) = app.delete(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!((s, e["error"]["code"].clone()), (409, json!("conflict")));
    // Detach with PATCH; then it can go.
    let (s, c) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"security_group_ids": []})),
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["security_group_ids"], json!([]));
    let (s, c) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"security_group_ids": ["sg_nope"]})),
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 400, "{c}");
    let rule_id = r["id"].as_str().unwrap();
    let (s, _) = app
        .delete(&format!("/v1/security-groups/{sg_id}/rules/{rule_id}"))
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .delete(&format!("/v1/security-groups/{sg_id}/rules/{rule_id}"))
        .await;
    assert_eq!(s, 404);
    let (s, _) = app.delete(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(s, 204);
    let (s, _) = app.get(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(s, 404);
}
