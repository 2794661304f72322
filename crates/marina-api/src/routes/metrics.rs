//! `GET /metrics`: Prometheus text exposition of the control plane's counters.
//! Operator tenant only (series name every tenant's clusters).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use marina_common::model::Scope;
use marina_core::Marina;

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
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&app)))
}

/// Escapes a label value (`\`, `"` and newlines).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render(app: &Marina) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP marina_auth_failures_total API requests refused for a missing, unknown or revoked token.\n\
         # TYPE marina_auth_failures_total counter\n\
         marina_auth_failures_total {}",
        app.auth_failures.load(Ordering::Relaxed)
    );
    let refusals = app.refusals.snapshot();
    let _ = writeln!(
        out,
        "# HELP marina_endpoint_connections_refused_total New endpoint connections refused by the cluster's security groups.\n\
         # TYPE marina_endpoint_connections_refused_total counter"
    );
    for (cluster, kind, n) in refusals.iter().filter(|r| r.1 != "node") {
        let _ = writeln!(
            out,
            "marina_endpoint_connections_refused_total{{cluster_id=\"{}\",endpoint=\"{kind}\"}} {n}",
            label(cluster)
        );
    }
    let _ = writeln!(
        out,
        "# HELP marina_node_port_packets_dropped_total Connection attempts (SYN packets) to node ports from outside the cluster, dropped in kernel mode.\n\
         # TYPE marina_node_port_packets_dropped_total counter"
    );
    for (cluster, _, n) in refusals.iter().filter(|r| r.1 == "node") {
        let _ = writeln!(
            out,
            "marina_node_port_packets_dropped_total{{cluster_id=\"{}\"}} {n}",
            label(cluster)
        );
    }
    out
}
