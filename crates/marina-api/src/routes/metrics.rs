//! `GET /metrics`: Prometheus text exposition (operator tenant only: series
//! name every tenant's clusters). Names follow Prometheus conventions
//! (`marina_` prefix, seconds, `_total` counters); labels are bounded (route
//! templates, types, results, cluster and node ids). `promtool check metrics`
//! passes on it (tested).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use marina_common::model::Scope;
use marina_core::Marina;
use marina_core::metrics::Histogram;

use crate::error::ApiResult;
use crate::extract::Auth;

/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 403, body = crate::views::ErrorBody)))]
pub async fn metrics(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<impl IntoResponse> {
    app.require_operator(&auth, Scope::Read, "read metrics").await?;
    let mut out = Exposition::default();
    families(&app, &mut out).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], out.text))
}

/// Escapes a label value (`\`, `"` and newlines).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `{a="x",b="y"}` (empty for no labels).
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
    format!("{{{}}}", inner.join(","))
}

/// The text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, pairs: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = writeln!(self.text, "{name}{} {value}", labels(pairs));
    }

    fn histogram(&mut self, name: &str, pairs: &[(&str, &str)], h: &Histogram) {
        for (le, n) in h.cumulative() {
            let mut with_le: Vec<(&str, &str)> = pairs.to_vec();
            with_le.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with_le, n);
        }
        self.sample(&format!("{name}_sum"), pairs, h.sum);
        self.sample(&format!("{name}_count"), pairs, h.count);
    }
}

async fn families(app: &Marina, out: &mut Exposition) -> Result<(), marina_common::Error> {
    let m = &app.metrics;

    let (requests, latency) = m.http_snapshot();
    out.family(
        "marina_http_requests_total",
        "counter",
        "API requests answered, by route template, method and status.",
    );
    for ((route, method, status), n) in &requests {
        let status = status.to_string();
        out.sample(
            "marina_http_requests_total",
            &[("route", route), ("method", method), ("status", &status)],
            n,
        );
    }
    out.family(
        "marina_http_request_duration_seconds",
        "histogram",
        "API request latency, by route template and method.",
    );
    for ((route, method), h) in &latency {
        out.histogram(
            "marina_http_request_duration_seconds",
            &[("route", route), ("method", method)],
            h,
        );
    }
    out.family(
        "marina_auth_failures_total",
        "counter",
        "API requests refused for a missing, unknown or revoked token.",
    );
    out.sample(
        "marina_auth_failures_total",
        &[],
        app.auth_failures.load(Ordering::Relaxed),
    );

    let (activations, durations) = m.background_snapshot();
    out.family(
        "marina_background_task_activations_total",
        "counter",
        "Background-task activations finished, by task and result (ok, failed, panicked).",
    );
    for ((task, result), n) in &activations {
        out.sample(
            "marina_background_task_activations_total",
            &[("task", task), ("result", result)],
            n,
        );
    }
    out.family(
        "marina_background_task_duration_seconds",
        "histogram",
        "Background-task activation durations, by task.",
    );
    for (task, h) in &durations {
        out.histogram("marina_background_task_duration_seconds", &[("task", task)], h);
    }

    let (ops, durations) = m.operations_snapshot();
    out.family(
        "marina_operations_total",
        "counter",
        "Operations finished, by type and result.",
    );
    for ((t, result), n) in &ops {
        out.sample("marina_operations_total", &[("type", t), ("result", result)], n);
    }
    out.family(
        "marina_operation_duration_seconds",
        "histogram",
        "Operation durations from request to end, by type.",
    );
    for (t, h) in &durations {
        out.histogram("marina_operation_duration_seconds", &[("type", t)], h);
    }

    let (promotions, promotion_durations) = m.promotions_snapshot();
    for (kind, what) in [("failover", "Failovers"), ("switchover", "Switchovers")] {
        let name = format!("marina_{kind}s_total");
        out.family(&name, "counter", &format!("{what} finished, by cluster and result."));
        for ((_, cluster, result), n) in promotions.iter().filter(|((k, _, _), _)| k == kind) {
            out.sample(&name, &[("cluster_id", cluster), ("result", result)], n);
        }
        let name = format!("marina_{kind}_duration_seconds");
        out.family(
            &name,
            "histogram",
            &format!("{what}: time from request (or detection) to the end."),
        );
        let empty = Histogram::new(marina_core::metrics::SLOW_BUCKETS);
        out.histogram(&name, &[], promotion_durations.get(kind).unwrap_or(&empty));
    }

    let (probe_latency, probe_failures) = m.probes_snapshot();
    out.family(
        "marina_probe_duration_seconds",
        "histogram",
        "Round trip of the monitor's successful node probes.",
    );
    out.histogram("marina_probe_duration_seconds", &[], &probe_latency);
    out.family(
        "marina_probe_failures_total",
        "counter",
        "Monitor probes that failed, by cluster.",
    );
    for (cluster, n) in &probe_failures {
        out.sample("marina_probe_failures_total", &[("cluster_id", cluster)], n);
    }

    out.family(
        "marina_endpoint_connections_accepted_total",
        "counter",
        "New endpoint connections admitted and routed to a node, by cluster and endpoint.",
    );
    for (cluster, kind, n) in app.accepted_connections().await {
        out.sample(
            "marina_endpoint_connections_accepted_total",
            &[("cluster_id", &cluster), ("endpoint", kind)],
            n,
        );
    }
    let refusals = app.refusals.snapshot();
    out.family(
        "marina_endpoint_connections_refused_total",
        "counter",
        "New endpoint connections refused by the cluster's security groups.",
    );
    for (cluster, kind, n) in refusals.iter().filter(|r| r.1 != "node") {
        out.sample(
            "marina_endpoint_connections_refused_total",
            &[("cluster_id", cluster), ("endpoint", kind)],
            n,
        );
    }
    out.family(
        "marina_node_port_packets_dropped_total",
        "counter",
        "Connection attempts (SYN packets) to node ports from outside the cluster, dropped in kernel mode.",
    );
    for (cluster, _, n) in refusals.iter().filter(|r| r.1 == "node") {
        out.sample("marina_node_port_packets_dropped_total", &[("cluster_id", cluster)], n);
    }

    node_families(app, out).await
}

/// Per-node gauges from the monitor's latest probes.
async fn node_families(app: &Marina, out: &mut Exposition) -> Result<(), marina_common::Error> {
    let nodes = app.node_gauges().await?;
    type Pick = fn(&marina_core::metrics::NodeGauge) -> Option<f64>;
    let gauges: [(&str, &str, &str, Pick); 5] = [
        (
            "marina_node_up",
            "gauge",
            "1 when the monitor's latest probe of the node succeeded.",
            |n| Some(if n.up { 1.0 } else { 0.0 }),
        ),
        (
            "marina_node_read_only",
            "gauge",
            "1 when the node is read-only (latest successful probe).",
            |n| n.read_only.map(|r| if r { 1.0 } else { 0.0 }),
        ),
        (
            "marina_node_replication_lag_seconds",
            "gauge",
            "Replica lag behind its primary (Seconds_Behind_Master).",
            |n| n.lag_seconds,
        ),
        (
            "marina_node_connections",
            "gauge",
            "Client connections open on the node (Threads_connected).",
            |n| n.connections.map(|c| c as f64),
        ),
        (
            "marina_node_queries_total",
            "counter",
            "Statements the node has run (Questions; resets when the node restarts).",
            |n| n.queries.map(|q| q as f64),
        ),
    ];
    for (name, kind, help, pick) in gauges {
        out.family(name, kind, help);
        for n in &nodes {
            if let Some(v) = pick(n) {
                out.sample(name, &[("cluster_id", &n.cluster_id), ("node_id", &n.node_id)], v);
            }
        }
    }
    out.family(
        "marina_node_role",
        "gauge",
        "1 for the node's current role (primary or replica).",
    );
    let mut roles: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for n in &nodes {
        roles.insert((&n.cluster_id, &n.node_id), n.role);
    }
    for ((cluster, node), role) in roles {
        out.sample(
            "marina_node_role",
            &[("cluster_id", cluster), ("node_id", node), ("role", role)],
            1,
        );
    }
    Ok(())
}
