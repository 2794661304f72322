//! High availability: status, switchover, failover, the failover-mode patch and
//! the load-balancer health checks.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use marina_common::model::{PatchClusterInput, PromoteInput, Scope};
use marina_core::Marina;
use marina_core::monitor::StatusView;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Json, JsonOrEmpty};
use crate::routes::clusters::cluster_view;
use crate::views::*;

/// Changes a cluster's settings (failover, security groups, backup policy):
/// 200 with the cluster. With `size_id` every node is resized (rolling): the
/// other fields are applied first, then 202 with the cluster and the resize
/// operation.
#[utoipa::path(patch, path = "/v1/clusters/{cluster_id}", tag = "clusters", security(("bearer" = [])),
    params(("cluster_id" = String, Path)), request_body = PatchClusterInput,
    responses((status = 200, body = ClusterView), (status = 202, body = ClusterUpdating), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn patch(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    Json(input): Json<PatchClusterInput>,
) -> ApiResult<Response> {
    auth.require(Scope::Write)?;
    let size = input.size_id.clone();
    if let Some(s) = &size
        && app.size(s).is_none()
    {
        return Err(marina_common::Error::InvalidRequest(format!("unknown size_id {s:?}")).into());
    }
    let (c, nodes) = app.patch_cluster(&auth.tenant_id, &id, input).await?;
    let Some(size) = size else {
        return Ok(axum::Json(cluster_view(&app, &c, &nodes).await?).into_response());
    };
    let operation = app.resize_cluster(&auth.tenant_id, &id, &size).await?;
    let (c, nodes) = app.get_cluster(&auth.tenant_id, &id).await?;
    let cluster = cluster_view(&app, &c, &nodes).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(ClusterUpdating { cluster, operation })).into_response())
}

/// The monitor's latest probes of every node.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/status", tag = "high-availability", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = StatusView), (status = 404, body = ErrorBody)))]
pub async fn status(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<StatusView>> {
    auth.require(Scope::Read)?;
    Ok(axum::Json(app.cluster_status(&auth.tenant_id, &id).await?))
}

/// A node's last 15 minutes (queries/s, connections, lag), one sample per
/// 2 s at most, kept in memory by the monitor (empty after a restart).
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/history", tag = "high-availability",
    security(("bearer" = [])), params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, body = NodeHistory), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<NodeHistory>> {
    auth.require(Scope::Read)?;
    let c = app.cluster(&auth.tenant_id, &id).await?;
    let node = app.cluster_node(&c, &node_id).await?;
    Ok(axum::Json(NodeHistory {
        samples: app.monitor.history.samples(&node.id),
        node_id: node.id,
        step_seconds: marina_core::monitor::history::STEP_SECS,
        window_seconds: marina_core::monitor::history::WINDOW_SECS,
    }))
}

/// `GET …/nodes/{node_id}/history`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NodeHistory {
    pub node_id: String,
    pub step_seconds: f64,
    pub window_seconds: f64,
    pub samples: Vec<marina_core::monitor::history::Sample>,
}

/// Planned, lossless change of primary.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/switchover", tag = "high-availability", security(("bearer" = [])),
    params(("cluster_id" = String, Path)), request_body(content = PromoteInput, description = "optional"),
    responses((status = 202, body = OperationAccepted), (status = 409, body = ErrorBody)))]
pub async fn switchover(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    JsonOrEmpty(input): JsonOrEmpty<PromoteInput>,
) -> ApiResult<(StatusCode, axum::Json<OperationAccepted>)> {
    auth.require(Scope::Write)?;
    let operation = app.request_switchover(&auth.tenant_id, &id, input).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(OperationAccepted { operation })))
}

/// Forced promotion of a replica.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/failover", tag = "high-availability", security(("bearer" = [])),
    params(("cluster_id" = String, Path)), request_body(content = PromoteInput, description = "optional"),
    responses((status = 202, body = OperationAccepted), (status = 409, body = ErrorBody)))]
pub async fn failover(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    JsonOrEmpty(input): JsonOrEmpty<PromoteInput>,
) -> ApiResult<(StatusCode, axum::Json<OperationAccepted>)> {
    auth.require(Scope::Write)?;
    let operation = app.request_failover(&auth.tenant_id, &id, input).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(OperationAccepted { operation })))
}

/// Who asks a health check: `None` (any tenant) when health checks are
/// public and no token is sent, else the token's tenant (401/403 as usual).
pub(crate) async fn health_caller(app: &Marina, headers: &HeaderMap) -> Result<Option<String>, Response> {
    if app.config.public_health_checks && crate::extract::bearer(headers).is_none() {
        return Ok(None);
    }
    match app.authenticate(crate::extract::bearer(headers)).await {
        Ok(a) => match a.require(Scope::Read) {
            Ok(()) => Ok(Some(a.tenant_id)),
            Err(e) => Err(ApiError(e).into_response()),
        },
        Err(e) => Err(ApiError(e).into_response()),
    }
}

async fn health(app: &Arc<Marina>, headers: &HeaderMap, cluster: &str, node: &str, primary: bool) -> Response {
    let tenant = match health_caller(app, headers).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (yes, no) = if primary {
        ("primary", "not primary")
    } else {
        ("replica", "not replica")
    };
    match app.health_check(tenant.as_deref(), cluster, node, primary).await {
        Ok(true) => (StatusCode::OK, yes).into_response(),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, no).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// `200 primary` when the node is the writable primary now, else `503 not primary`.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/is-primary", tag = "high-availability",
    security(("bearer" = [])), params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, description = "primary", body = String), (status = 503, description = "not primary", body = String)))]
pub async fn is_primary(
    State(app): State<Arc<Marina>>,
    headers: HeaderMap,
    Path((cluster, node)): Path<(String, String)>,
) -> Response {
    health(&app, &headers, &cluster, &node, true).await
}

/// `200 replica` when the node is a healthy replica now, else `503 not replica`.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/is-replica", tag = "high-availability",
    security(("bearer" = [])), params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, description = "replica", body = String), (status = 503, description = "not replica", body = String)))]
pub async fn is_replica(
    State(app): State<Arc<Marina>>,
    headers: HeaderMap,
    Path((cluster, node)): Path<(String, String)>,
) -> Response {
    health(&app, &headers, &cluster, &node, false).await
}
