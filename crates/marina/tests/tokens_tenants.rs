//! Tokens and tenants (first slice of issue #4): secrets shown once with the
//! `mrn_` prefix and never listed, scopes enforced, revocation effective at
//! once (also on a kept-alive connection), no token granting more than its
//! creator has, tenants created by the operator only and isolated from each
//! other, and the `marina token` CLI.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_scoped_and_revocable() {
    let app = TestApp::start().await;
    let (s, created) = app
        .post("/v1/tokens", json!({"name": "ci-reader", "scopes": ["read"]}))
        .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mrn_") && secret.len() == 4 + 64, "{secret}");
    assert_eq!(created["token"]["object"], "token");
    assert_eq!(created["token"]["scopes"], json!(["read"]));
    assert!(created["token"]["id"].as_str().unwrap().starts_with("tok_"));
    let id = created["token"]["id"].as_str().unwrap().to_string();

    // The list never shows a secret.
    let (s, list) = app.get("/v1/tokens").await;
    assert_eq!(s, 200);
    assert_eq!(list["object"], "list");
    assert!(list["data"].as_array().unwrap().iter().any(|t| t["id"] == id.as_str()));
    assert!(
        !list.to_string().contains(&secret) && !list.to_string().contains("mrn_"),
        "{list}"
    );

    // Its scopes hold: it reads, it cannot write or manage tokens.
    let client = marina_cli::client::http_builder().build().unwrap(); // one client: requests reuse the connection
    let get = |path: &str| client.get(format!("{}{path}", app.url)).bearer_auth(&secret).send();
    assert_eq!(get("/v1/clusters").await.unwrap().status(), 200);
    let r = client
        .post(format!("{}/v1/clusters", app.url))
        .bearer_auth(&secret)
        .json(&json!({"name": "x", "size_id": "xsmall"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(get("/v1/tokens").await.unwrap().status(), 403);
    // last_used_at is kept.
    let (_, list) = app.get("/v1/tokens").await;
    let t = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(t["last_used_at"].as_str().is_some(), "{t}");

    // Revocation is immediate, on the same kept-alive connection too.
    let (s, _) = app.delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(s, 204);
    let r = get("/v1/clusters").await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (s, b) = app.delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(s, 404, "{b}");

    // Bad input.
    for (body, code) in [
        (json!({"name": "Bad Name", "scopes": ["read"]}), 400),
        (json!({"name": "ok", "scopes": []}), 400),
        (json!({"name": "ok", "scopes": ["root"]}), 400),
        (json!({"name": "ok"}), 400),
    ] {
        let (s, b) = app.post("/v1/tokens", body.clone()).await;
        assert_eq!(s, code, "{body}: {b}");
        assert_eq!(b["error"]["code"], "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_created_by_the_operator_and_isolated() {
    let app = TestApp::start().await;
    let (c, _) = app.create_cluster("mine", 1).await;
    let cid = c["id"].as_str().unwrap();

    let (s, t) = app.post("/v1/tenants", json!({"name": "team-b"})).await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["tenant"]["object"], "tenant");
    assert!(t["tenant"]["id"].as_str().unwrap().starts_with("tn_"));
    assert_eq!(t["token"]["scopes"], json!(["read", "write", "admin"]));
    let b = t["secret"].as_str().unwrap().to_string();
    assert!(b.starts_with("mrn_"));

    // Tenant B sees nothing of tenant A, and A's cluster is a 404 for it.
    let (s, me) = app
        .request(reqwest::Method::GET, "/v1/tenants/current", None, Some(&b))
        .await;
    assert_eq!((s, me["name"].clone()), (200, json!("team-b")));
    let (_, list) = app.request(reqwest::Method::GET, "/v1/clusters", None, Some(&b)).await;
    assert_eq!(list["data"], json!([]));
    let (s, _) = app
        .request(reqwest::Method::GET, &format!("/v1/clusters/{cid}"), None, Some(&b))
        .await;
    assert_eq!(s, 404);
    let (_, toks) = app.request(reqwest::Method::GET, "/v1/tokens", None, Some(&b)).await;
    assert_eq!(toks["data"].as_array().unwrap().len(), 1, "only its own token: {toks}");
    // Tokens of another tenant cannot be revoked.
    let (_, mine) = app.get("/v1/tokens").await;
    let a_token = mine["data"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/tokens/{a_token}"),
            None,
            Some(&b),
        )
        .await;
    assert_eq!(s, 404);

    // Only the operator's tenant creates tenants; names are unique.
    let (s, e) = app
        .request(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(json!({"name": "team-c"})),
            Some(&b),
        )
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = app.post("/v1/tenants", json!({"name": "team-b"})).await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = app.post("/v1/tenants", json!({"name": "Team B"})).await;
    assert_eq!(s, 400, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_cli_creates_lists_and_revokes() {
    let app = TestApp::start().await;
    let o = app.cli(&["token", "create", "deploy", "--scope", "read", "--scope", "write"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret (shown once): "))
        .unwrap()
        .to_string();
    assert!(secret.starts_with("mrn_"));
    let o = app.cli(&["token", "list", "-o", "json"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "deploy")
        .unwrap()
        .clone();
    assert_eq!(t["scopes"], json!(["read", "write"]));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&secret));
    let o = app.cli(&["token", "revoke", t["id"].as_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (s, _) = app
        .request(reqwest::Method::GET, "/v1/clusters", None, Some(&secret))
        .await;
    assert_eq!(s, 401);
}
