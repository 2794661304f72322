//! `/metrics` (issue #8): after real traffic — API calls, a cluster create, a
//! connection through the writer endpoint, a switchover — the exposition has
//! the families an operator needs with bounded labels, and Prometheus's own
//! `promtool check metrics` (Debian package `prometheus`) finds nothing wrong.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

/// The value of the first sample whose line starts with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_requests_operations_promotions_endpoints_and_nodes() {
    let app = TestApp::start().await;
    let (c, pw) = app.create_cluster("metered", 2).await;
    let id = c["id"].as_str().unwrap().to_string();
    wait_all_active(&app, &id).await;
    let (host, port) = writer(&c);
    let conn = mysql(&host, port, "admin", &pw).await.unwrap();
    drop(conn);
    let (s, _) = app.get("/v1/clusters/cl_doesnotexist").await;
    assert_eq!(s, 404);
    let (s, _) = app.get("/no/such/route").await;
    assert_eq!(s, 404);
    let (s, op) = app.post(&format!("/v1/clusters/{id}/switchover"), json!({})).await;
    assert_eq!(s, 202, "{op}");
    let done = app
        .wait_op(op["operation"]["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(done["status"], "succeeded");
    wait_all_active(&app, &id).await;

    // The gauges follow the monitor's next probes of the new topology.
    let primary_id = primary(&cluster(&app, &id).await)["id"].as_str().unwrap().to_string();
    let writable = format!(r#"marina_node_read_only{{cluster_id="{id}",node_id="{primary_id}"}} 0"#);
    let text = eventually(Duration::from_secs(10), "node gauges of the new topology", || async {
        let t = app.metrics().await;
        let up = t
            .lines()
            .filter(|l| l.starts_with("marina_node_up{") && l.contains(&id) && l.ends_with(" 1"))
            .count();
        let lag = t
            .lines()
            .any(|l| l.starts_with("marina_node_replication_lag_seconds{") && l.contains(&id));
        // The create and the switchover write node states themselves; the
        // monitor's own probes may come a moment later.
        let probed = value(&t, "marina_probe_duration_seconds_count").is_some_and(|n| n > 0.0);
        (up == 2 && lag && probed && t.lines().any(|l| l == writable)).then_some(t)
    })
    .await;

    // Requests by route template, never by raw path.
    assert!(
        value(
            &text,
            r#"marina_http_requests_total{route="/v1/clusters",method="POST",status="202"}"#
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            r#"marina_http_requests_total{route="/v1/clusters/{cluster_id}",method="GET",status="404"}"#
        )
        .is_some()
    );
    assert!(
        value(
            &text,
            r#"marina_http_requests_total{route="(unmatched)",method="GET",status="404"}"#
        )
        .is_some()
    );
    assert!(!text.contains("route=\"/v1/clusters/cl_"), "a raw path became a label");
    assert!(!text.contains("/no/such/route"));
    assert!(!text.contains(&pw), "a secret in the metrics");
    assert!(
        value(
            &text,
            r#"marina_http_request_duration_seconds_count{route="/v1/clusters",method="POST"}"#
        )
        .unwrap()
            >= 1.0
    );
    // Operations, promotions, probes.
    assert_eq!(
        value(
            &text,
            r#"marina_operations_total{type="create_cluster",result="succeeded"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"marina_operations_total{type="switchover",result="succeeded"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"marina_switchovers_total{{cluster_id="{id}",result="succeeded"}}"#)
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "marina_switchover_duration_seconds_count"), Some(1.0));
    assert!(value(&text, "marina_probe_duration_seconds_count").unwrap() > 0.0);
    // Endpoint connections and per-node gauges.
    assert!(
        value(
            &text,
            &format!(r#"marina_endpoint_connections_accepted_total{{cluster_id="{id}",endpoint="writer"}}"#)
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"marina_node_role{{cluster_id="{id}",node_id="{primary_id}",role="primary"}}"#)
        ),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            &format!(r#"marina_node_queries_total{{cluster_id="{id}",node_id="{primary_id}"}}"#)
        )
        .unwrap()
            > 0.0
    );
    assert!(
        value(
            &text,
            &format!(r#"marina_node_connections{{cluster_id="{id}",node_id="{primary_id}"}}"#)
        )
        .unwrap()
            >= 1.0
    );

    // Prometheus's own linter.
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-deps.sh --test installs the prometheus package)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}\n{text}"
    );

    // Every series the Grafana dashboard queries is one Marina exports.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("marina_") {
                    let base = word.trim_end_matches("_bucket");
                    assert!(
                        families.contains(&base),
                        "the dashboard queries {word}, which is not exported"
                    );
                    queried += 1;
                }
            }
        }
    }
    assert!(queried >= 16, "{queried}");

    // A tenant's token may not read them.
    let (_, t) = app.post("/v1/tenants", json!({"name": "other"})).await;
    let (s, _) = app
        .request(
            reqwest::Method::GET,
            "/metrics",
            None,
            Some(t["secret"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s, 403);
}
