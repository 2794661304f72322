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
        (
            h["object"].clone(),
            h["zone"].clone(),
            h["status"].clone(),
            h["local"].clone()
        ),
        (json!("host"), json!("a"), json!("active"), json!(true))
    );
    assert_eq!(h["memory_bytes"], json!(64u64 << 30), "{h}");
    assert_eq!(h["nodes"], 0);
    assert!(
        h["cpus"].as_u64().unwrap() >= 1 && h["disk_bytes"].as_u64().unwrap() > 0,
        "{h}"
    );

    // Nodes show their host and zone; the host counts them.
    let (c, _) = app.create_cluster("placed", 2).await;
    for n in c["nodes"].as_array().unwrap() {
        assert_eq!(
            (n["host_id"].as_str(), n["zone"].as_str()),
            (Some(id.as_str()), Some("a")),
            "{n}"
        );
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

    // Another tenant may not list hosts, and a host is not there for it.
    let (s, t) = app.post("/v1/tenants", json!({"name": "team-h"})).await;
    assert_eq!(s, 201, "{t}");
    let other = t["secret"].as_str().unwrap().to_string();
    for (method, path, want) in [
        (reqwest::Method::GET, "/v1/hosts".to_string(), 403),
        (reqwest::Method::GET, format!("/v1/hosts/{id}"), 404),
        (reqwest::Method::POST, format!("/v1/hosts/{id}/cordon"), 404),
    ] {
        let (s, e) = app.request(method, &path, None, Some(&other)).await;
        assert_eq!(s, want, "{path}: {e}");
    }
    let (s, h) = app.get(&format!("/v1/hosts/{id}")).await;
    assert_eq!(
        (s, h["status"].clone()),
        (200, json!("active")),
        "another tenant changed it: {h}"
    );

    // Cordoned: it keeps its nodes and takes no new one.
    let (s, h) = app.post(&format!("/v1/hosts/{id}/cordon"), json!({})).await;
    assert_eq!((s, h["status"].clone()), (200, json!("cordoned")), "{h}");
    let (s, e) = app
        .post("/v1/clusters", json!({"name": "refused", "size_id": "xsmall"}))
        .await;
    assert_eq!(s, 409, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("no active host"),
        "{e}"
    );
    // A host with nodes cannot be drained while no other host can take them.
    let (s, e) = app.post(&format!("/v1/hosts/{id}/drain"), json!({})).await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = app.post("/v1/hosts/hs_nothere00000000/cordon", json!({})).await;
    assert_eq!(s, 404, "{e}");

    // The CLI: list, show, uncordon; then the host takes nodes again.
    let o = app.cli(&["host", "list"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains(&id) && out.contains("cordoned") && out.contains("2.0/64 GiB"),
        "{out}"
    );
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

/// An agent joins with a one-time join token: `marina agent --join` makes
/// its key (0600, never sent), gets a certificate the control plane's CA
/// signed, and its host is listed `down` (not heard yet) in the token's zone. A token
/// works once; a made-up, used or malformed one is 401; join tokens are
/// the operator's; bad facts are 400; and a second `marina agent` run does
/// not join again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_joins_once_with_a_join_token() {
    let app = TestApp::start().await;
    let o = app.cli(&["host", "join-token", "create", "--zone", "b", "--output", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let created: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mrn_join_") && secret.len() == 9 + 64, "{created}");
    assert_eq!(created["token"]["zone"], "b");

    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let agent_dir = dir.path().join("agent");
    // It joins, then serves on 127.0.0.1; the address it reports is
    // another loopback address where nothing listens, so its host stays
    // `down` (no traffic leaves the machine).
    let agent = || {
        AgentProc::spawn(
            &agent_dir,
            "127.0.0.1:0",
            &["--join", &app.url, "--address", "127.0.0.2"],
            &[("MARINA_JOIN_TOKEN", &secret)],
        )
        .0
    };
    let first = agent();
    let out = first.output();
    assert!(out.contains("joined as host hs_") && out.contains("zone b"), "{out}");
    let mode = |p: &str| std::fs::metadata(agent_dir.join(p)).unwrap().permissions().mode() & 0o777;
    // Others may pass through (node uids reach their directories), not list.
    assert_eq!(mode("."), 0o701);
    for f in ["key.pem", "cert.pem", "ca.pem", "host.json"] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
    let cert = std::fs::read_to_string(agent_dir.join("cert.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let key = std::fs::read_to_string(agent_dir.join("key.pem")).unwrap();
    assert!(
        !app.log().contains(key.lines().nth(1).unwrap()),
        "the key reached the control plane's log"
    );
    assert!(!app.log().contains(&secret), "the join token was logged");

    let (_, list) = app.get("/v1/hosts").await;
    let joined = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["local"] == false)
        .cloned()
        .expect("the joined host is listed");
    assert_eq!(
        (
            joined["zone"].clone(),
            joined["status"].clone(),
            joined["address"].clone()
        ),
        (json!("b"), json!("down"), json!("127.0.0.2")),
        "{joined}"
    );
    // A second run has joined already: it says so and sends nothing.
    drop(first);
    let out = agent().output();
    assert!(out.contains("has joined as host"), "{out}");

    // The token was used; unknown and malformed tokens are refused alike.
    let facts = |token: &str, key: &str| {
        json!({"join_token": token, "name": "h2", "address": "127.0.0.3", "memory_bytes": 1u64 << 33,
               "disk_bytes": 1u64 << 36, "cpus": 2, "version": "0.1.0", "public_key": key})
    };
    let point = {
        use base64::Engine;
        let mut p = vec![4u8];
        p.extend([7u8; 64]);
        base64::engine::general_purpose::STANDARD.encode(p)
    };
    let unknown = format!("mrn_join_{}", "ab".repeat(32));
    for token in [secret.as_str(), unknown.as_str(), "mrn_join_x", "", "mrn_0000"] {
        let (s, e) = app
            .request(
                reqwest::Method::POST,
                "/v1/hosts/join",
                Some(facts(token, &point)),
                None,
            )
            .await;
        assert_eq!(s, 401, "{token:?}: {e}");
        assert_eq!(e["error"]["code"], "unauthenticated", "{e}");
    }
    // Bad facts are 400 before any token is looked at.
    let (_, fresh) = app.post("/v1/hosts/join-tokens", json!({})).await;
    let fresh = fresh["secret"].as_str().unwrap().to_string();
    for (field, value) in [
        ("name", json!("../etc")),
        ("address", json!("not-an-ip")),
        ("cpus", json!(0)),
        ("public_key", json!("AAAA")),
        ("public_key", json!("%%%")),
        ("zone", json!("Zone A")),
        ("version", json!("x".repeat(65))),
        ("agent_port", json!(0)),
        ("agent_port", json!(65536)),
        ("agent_port", json!(-1)),
        ("agent_port", json!("7301")),
    ] {
        let mut body = facts(&fresh, &point);
        body[field] = value;
        let (s, e) = app
            .request(reqwest::Method::POST, "/v1/hosts/join", Some(body), None)
            .await;
        assert_eq!(s, 400, "{field}: {e}");
    }
    // The fresh token was not used by those: it still joins.
    let (s, j) = app
        .request(
            reqwest::Method::POST,
            "/v1/hosts/join",
            Some(facts(&fresh, &point)),
            None,
        )
        .await;
    assert_eq!(s, 201, "{j}");
    assert_eq!(j["host"]["zone"], "default", "{j}");

    // Join tokens are the operator's; bad requests are 400.
    let (_, t) = app.post("/v1/tenants", json!({"name": "team-j"})).await;
    let other = t["secret"].as_str().unwrap().to_string();
    let (s, e) = app
        .request(
            reqwest::Method::POST,
            "/v1/hosts/join-tokens",
            Some(json!({})),
            Some(&other),
        )
        .await;
    assert_eq!(s, 403, "{e}");
    for bad in [json!({"ttl_secs": 5}), json!({"zone": "Z!"}), json!({"nope": 1})] {
        let (s, e) = app.post("/v1/hosts/join-tokens", bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
}
