//! OVH Managed Stacks' documented workflow (seed `000_…`) against Marina with
//! the seed's `auth_curl` (its headers, host and keys replaced): register an
//! application (`marina ovh-app create`), sign each request as OVH's API
//! does (`sha1sum` of `AS+CK+METHOD+URL+BODY+TS`, computed here with the
//! shell tool, not Marina's code), create, list, get, status and delete a
//! stack on real clusters; wrong keys, stale timestamps and bad signatures get
//! OVH's error forms; stacks and native clusters are the same thing.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

struct Ovh<'a> {
    app: &'a TestApp,
    key: String,
    secret: String,
    consumer: String,
}

fn sha1_hex(input: &str) -> String {
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_string()
}

impl Ovh<'_> {
    async fn server_time(&self) -> i64 {
        let (s, t) = curl(&["-X", "GET", &format!("{}/1.0/auth/time", self.app.url)]).await;
        assert_eq!(s, 200, "{t}");
        t.as_i64().unwrap()
    }

    /// `auth_curl -X <method> <url>` with a body, at `time`, signed with `secret`.
    async fn call_at(&self, method: &str, path: &str, body: &str, time: i64, secret: &str) -> (u16, Value) {
        let url = format!("{}/1.0{path}", self.app.url);
        let sig = format!(
            "$1${}",
            sha1_hex(&format!("{secret}+{}+{method}+{url}+{body}+{time}", self.consumer))
        );
        let mut args = vec![
            "-H".to_string(),
            format!("X-Ovh-Application:{}", self.key),
            "-H".into(),
            format!("X-Ovh-Timestamp:{time}"),
            "-H".into(),
            format!("X-Ovh-Signature:{sig}"),
            "-H".into(),
            format!("X-Ovh-Consumer:{}", self.consumer),
            "-H".into(),
            "Content-Type: application/json".into(),
            "-X".into(),
            method.into(),
            url,
        ];
        if !body.is_empty() {
            args.extend(["--data".into(), body.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args).await
    }

    async fn call(&self, method: &str, path: &str) -> (u16, Value) {
        let t = self.server_time().await;
        self.call_at(method, path, "", t, &self.secret.clone()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovh_managed_stack_workflow_runs_against_marina() {
    let app = TestApp::start().await;
    // Requirements: an application key and secret, and a consumer key.
    let out = app.cli(&["ovh-app", "create", "lab", "--output", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, tok) = app
        .post("/v1/tokens", json!({"name": "ovh-consumer", "scopes": ["write"]}))
        .await;
    let ovh = Ovh {
        app: &app,
        key: created["application"]["application_key"].as_str().unwrap().to_string(),
        secret: created["application_secret"].as_str().unwrap().to_string(),
        consumer: tok["secret"].as_str().unwrap().to_string(),
    };
    let (_, apps) = app.get("/v1/ovh-applications").await;
    assert_eq!(apps["data"][0]["application_key"], ovh.key.as_str());
    assert!(!apps.to_string().contains(&ovh.secret), "the secret is shown once");

    // Create a MySQL Managed Stack.
    let (s, made) = ovh.call("POST", "/stackMysql").await;
    assert_eq!(s, 200, "{made}");
    assert_eq!(made["msg"], "cluster created");
    let id = made["id"].as_str().unwrap().to_string();
    assert!(made["credentials"]["password"].is_string());

    // Get your cluster's id.
    let (s, list) = ovh.call("GET", "/stackMysql").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["products"], json!([{"id": id}]));

    // Get information about your cluster: active once it serves, its nodes.
    let info = eventually(Duration::from_secs(120), "stack active", || async {
        let (s, v) = ovh.call("GET", &format!("/stackMysql/{id}")).await;
        assert_eq!(s, 200, "{v}");
        (v["active"] == true).then_some(v)
    })
    .await;
    assert_eq!(info["product_id"], id.as_str());
    let nodes = info["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{info}");
    assert!(
        nodes
            .iter()
            .all(|n| n["addr"].is_string() && n["product_id"] == id.as_str())
    );
    // The same cluster natively; a native cluster is a stack too.
    let (s, native) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!((s, native["status"].as_str()), (200, Some("active")), "{native}");
    let (native_c, _) = app.create_cluster("native-one", 1).await;
    let (_, list) = ovh.call("GET", "/stackMysql").await;
    assert!(
        list["products"]
            .as_array()
            .unwrap()
            .contains(&json!({"id": native_c["id"]})),
        "{list}"
    );

    // Monitoring status: per node, probe name → result.
    let status = eventually(Duration::from_secs(30), "probes", || async {
        let (s, v) = ovh.call("GET", &format!("/stackMysql/{id}/status")).await;
        assert_eq!(s, 200, "{v}");
        let all_up = v
            .as_object()
            .is_some_and(|m| m.len() == 2 && m.values().all(|p| p["reachable"] == true));
        all_up.then_some(v)
    })
    .await;
    let probes = status.as_object().unwrap();
    for n in nodes {
        assert!(probes.contains_key(n["node_id"].as_str().unwrap()), "{status}");
    }
    assert_eq!(probes.values().filter(|p| p["writable"] == true).count(), 1, "{status}");

    // Refusals, in OVH's form.
    let now = ovh.server_time().await;
    let secret = ovh.secret.clone();
    let (s, e) = ovh.call_at("GET", "/stackMysql", "", now, "wrong-secret").await;
    assert_eq!((s, e["errorCode"].as_str()), (400, Some("INVALID_SIGNATURE")), "{e}");
    assert_eq!(e["httpCode"], "400 Bad Request");
    let (s, e) = ovh.call_at("GET", "/stackMysql", "", now - 3600, &secret).await;
    assert_eq!((s, e["errorCode"].as_str()), (400, Some("QUERY_TIME_OUT")), "{e}");
    // The body is signed: a body the signature does not cover is refused.
    let url = format!("{}/1.0/stackMysql", app.url);
    let sig = format!(
        "$1${}",
        sha1_hex(&format!("{secret}+{}+POST+{url}++{now}", ovh.consumer))
    );
    let (s, e) = curl(&[
        "-H",
        &format!("X-Ovh-Application:{}", ovh.key),
        "-H",
        &format!("X-Ovh-Timestamp:{now}"),
        "-H",
        &format!("X-Ovh-Signature:{sig}"),
        "-H",
        &format!("X-Ovh-Consumer:{}", ovh.consumer),
        "-H",
        "Content-Type: application/json",
        "-X",
        "POST",
        &url,
        "--data",
        r#"{"nodes": 9}"#,
    ])
    .await;
    assert_eq!((s, e["errorCode"].as_str()), (400, Some("INVALID_SIGNATURE")), "{e}");
    let unknown = Ovh {
        app: &app,
        key: "nosuchapplication".into(),
        secret: secret.clone(),
        consumer: ovh.consumer.clone(),
    };
    let (s, e) = unknown.call("GET", "/stackMysql").await;
    assert_eq!((s, e["errorCode"].as_str()), (403, Some("INVALID_KEY")), "{e}");
    // Another tenant's consumer key with this tenant's application.
    let (_, t) = app.post("/v1/tenants", json!({"name": "other"})).await;
    let foreign = Ovh {
        app: &app,
        key: ovh.key.clone(),
        secret: secret.clone(),
        consumer: t["secret"].as_str().unwrap().to_string(),
    };
    let (s, e) = foreign.call("GET", "/stackMysql").await;
    assert_eq!((s, e["errorCode"].as_str()), (403, Some("INVALID_CREDENTIAL")), "{e}");
    // Tenant B, with its own application, on A's stack: as if it did not exist.
    let (s, b_app) = app
        .request(
            reqwest::Method::POST,
            "/v1/ovh-applications",
            Some(json!({"name": "b-lab"})),
            Some(&foreign.consumer),
        )
        .await;
    assert_eq!(s, 201, "{b_app}");
    let tenant_b = Ovh {
        app: &app,
        key: b_app["application"]["application_key"].as_str().unwrap().to_string(),
        secret: b_app["application_secret"].as_str().unwrap().to_string(),
        consumer: foreign.consumer.clone(),
    };
    for (method, path) in [
        ("GET", format!("/stackMysql/{id}")),
        ("GET", format!("/stackMysql/{id}/status")),
        ("DELETE", format!("/stackMysql/{id}")),
    ] {
        let (s, e) = tenant_b.call(method, &path).await;
        assert_eq!(
            (s, e["errorCode"].as_str()),
            (404, Some("NOT_FOUND")),
            "{method} {path}: {e}"
        );
    }
    let (s, b_list) = tenant_b.call("GET", "/stackMysql").await;
    assert_eq!((s, b_list), (200, json!({"products": []})));
    // A read-only consumer key may look, not create or delete.
    let (_, ro) = app
        .post("/v1/tokens", json!({"name": "ovh-ro", "scopes": ["read"]}))
        .await;
    let reader = Ovh {
        app: &app,
        key: ovh.key.clone(),
        secret: secret.clone(),
        consumer: ro["secret"].as_str().unwrap().to_string(),
    };
    let (s, _) = reader.call("GET", "/stackMysql").await;
    assert_eq!(s, 200);
    for (method, path) in [
        ("POST", "/stackMysql".to_string()),
        ("DELETE", format!("/stackMysql/{id}")),
    ] {
        let (s, e) = reader.call(method, &path).await;
        assert_eq!(
            (s, e["errorCode"].as_str()),
            (403, Some("INVALID_CREDENTIAL")),
            "{method} {path}: {e}"
        );
    }
    let (s, e) = ovh.call("GET", "/stackMysql/cl_nosuchstack").await;
    assert_eq!((s, e["errorCode"].as_str()), (404, Some("NOT_FOUND")), "{e}");

    // Delete your cluster.
    let (s, gone) = ovh.call("DELETE", &format!("/stackMysql/{id}")).await;
    assert_eq!(s, 200, "{gone}");
    assert_eq!(gone["msg"], "cluster deleted");
    eventually(Duration::from_secs(120), "stack gone", || async {
        let (s, _) = ovh.call("GET", &format!("/stackMysql/{id}")).await;
        (s == 404).then_some(())
    })
    .await;
    let (s, _) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(s, 404);

    // A deleted application signs nothing any more.
    let out = app.cli(&["ovh-app", "delete", &ovh.key]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (s, e) = ovh.call("GET", "/stackMysql").await;
    assert_eq!((s, e["errorCode"].as_str()), (403, Some("INVALID_KEY")), "{e}");
}
