//! signal18 replication-manager's health checks and cluster status (seed
//! `003_…`) at its own paths, with its exact status codes and texts, for
//! load balancers (`option httpchk GET /clusters/<name>/servers/<id>/master-status`).
//! A cluster is named by its name (or id); a server by its node id, `host:port`,
//! or the `{serverHost}/{serverPort}` path form. Without a token (when
//! `public_health_checks` is on) a name resolves only if no two tenants share
//! it. Thin: the verdict is Marina's `is-primary` / `is-replica` check. See
//! `docs/compat/replication-manager.md`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use marina_common::model::ClusterStatus;
use marina_core::Marina;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::ha::health_caller;

/// What a check asks about a server.
#[derive(Clone, Copy)]
enum Want {
    Master,
    Slave,
}

async fn check(
    app: &Marina,
    headers: &HeaderMap,
    cluster: &str,
    server: &str,
    port: Option<u16>,
    want: Want,
) -> Response {
    let tenant = match health_caller(app, headers).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let no_cluster = || (StatusCode::INTERNAL_SERVER_ERROR, "No cluster!").into_response();
    let Ok(Some(c)) = app.cluster_by_name(tenant.as_deref(), cluster).await else {
        return no_cluster();
    };
    let Ok(Some(n)) = app.node_by_name(&c, server, port).await else {
        return no_cluster();
    };
    let primary = matches!(want, Want::Master);
    match app.health_check(Some(&c.tenant_id), &c.id, &n.id, primary).await {
        Ok(true) if primary => (StatusCode::OK, "200 -Valid Master!").into_response(),
        Ok(true) => (StatusCode::OK, "200 -Valid Slave!").into_response(),
        Ok(false) if primary => (StatusCode::SERVICE_UNAVAILABLE, "503 -Not a Valid Master!").into_response(),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "503 -Not a Valid Slave!").into_response(),
        Err(_) => no_cluster(),
    }
}

macro_rules! health_routes {
    ($($name:ident, $port_name:ident, $suffix:literal, $want:expr, $what:literal;)+) => {$(
        #[doc = concat!("replication-manager `", $suffix, "`: ", $what)]
        #[utoipa::path(get, path = concat!("/clusters/{clusterName}/servers/{serverName}/", $suffix),
            tag = "compat: replication-manager",
            params(("clusterName" = String, Path), ("serverName" = String, Path, description = "node id or host:port")),
            responses((status = 200, body = String), (status = 500, body = String), (status = 503, body = String)))]
        pub async fn $name(
            State(app): State<Arc<Marina>>,
            headers: HeaderMap,
            Path((cluster, server)): Path<(String, String)>,
        ) -> Response {
            check(&app, &headers, &cluster, &server, None, $want).await
        }

        #[doc = concat!("replication-manager `", $suffix, "` by host and port: ", $what)]
        #[utoipa::path(get, path = concat!("/clusters/{clusterName}/servers/{serverHost}/{serverPort}/", $suffix),
            tag = "compat: replication-manager",
            params(("clusterName" = String, Path), ("serverHost" = String, Path), ("serverPort" = u16, Path)),
            responses((status = 200, body = String), (status = 500, body = String), (status = 503, body = String)))]
        pub async fn $port_name(
            State(app): State<Arc<Marina>>,
            headers: HeaderMap,
            Path((cluster, host, port)): Path<(String, String, u16)>,
        ) -> Response {
            check(&app, &headers, &cluster, &host, Some(port), $want).await
        }
    )+};
}

health_routes! {
    master_status, master_status_by_port, "master-status", Want::Master, "200 `200 -Valid Master!` or 503 `503 -Not a Valid Master!`";
    slave_status, slave_status_by_port, "slave-status", Want::Slave, "200 `200 -Valid Slave!` or 503 `503 -Not a Valid Slave!`";
    is_master, is_master_by_port, "is-master", Want::Master, "200 `200 -Valid Master!` or 503 `503 -Not a Valid Master!`";
    is_slave, is_slave_by_port, "is-slave", Want::Slave, "200 `200 -Valid Slave!` or 503 `503 -Not a Valid Slave!`";
}

/// `{"alive": "running" | "errors"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alive {
    pub alive: &'static str,
}

/// replication-manager's cluster status: `running` while the cluster serves
/// with every node as intended, `errors` otherwise; 400 `No cluster found : <name>`.
#[utoipa::path(get, path = "/api/clusters/{clusterName}/status", tag = "compat: replication-manager",
    params(("clusterName" = String, Path)),
    responses((status = 200, body = Alive), (status = 400, body = String)))]
pub async fn cluster_status(
    State(app): State<Arc<Marina>>,
    headers: HeaderMap,
    Path(cluster): Path<String>,
) -> Response {
    let tenant = match health_caller(&app, &headers).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.cluster_by_name(tenant.as_deref(), &cluster).await {
        Ok(Some(c)) => {
            let alive = if c.status == ClusterStatus::Active {
                "running"
            } else {
                "errors"
            };
            axum::Json(Alive { alive }).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, format!("No cluster found : {cluster}")).into_response(),
    }
}
