//! Node lifecycle: add and remove nodes, and the per-node actions (reboot,
//! start, stop, maintenance, read-only). Every call is an operation (202).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use marina_common::model::{AddNodeInput, Operation, RebootInput, ResizeNodeInput, Scope, ToggleInput};
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, JsonOrEmpty};
use crate::views::*;

type Accepted = ApiResult<(StatusCode, axum::Json<OperationAccepted>)>;

fn accepted(operation: Operation) -> Accepted {
    Ok((StatusCode::ACCEPTED, axum::Json(OperationAccepted { operation })))
}

/// Adds a replica, cloned from a live node.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/nodes", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path)), request_body(content = AddNodeInput, description = "optional"),
    responses((status = 202, body = NodeAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn add(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    JsonOrEmpty(input): JsonOrEmpty<AddNodeInput>,
) -> ApiResult<(StatusCode, axum::Json<NodeAccepted>)> {
    auth.require(Scope::Write)?;
    let (node, operation) = app.add_node(&auth.tenant_id, &id, input).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(NodeAccepted {
            node: NodeView::from(&node),
            operation,
        }),
    ))
}

/// Removes a node (the primary is switched over first; never the last node).
#[utoipa::path(delete, path = "/v1/clusters/{cluster_id}/nodes/{node_id}", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 202, body = OperationAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.remove_node(&auth.tenant_id, &id, &node_id).await?)
}

/// Restarts `mariadbd` cleanly (the primary: after a switchover unless `force`).
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/reboot", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)), request_body(content = RebootInput, description = "optional"),
    responses((status = 202, body = OperationAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reboot(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
    JsonOrEmpty(input): JsonOrEmpty<RebootInput>,
) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.reboot_node(&auth.tenant_id, &id, &node_id, input).await?)
}

/// Starts a stopped node; it rejoins replication.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/start", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 202, body = OperationAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.start_node(&auth.tenant_id, &id, &node_id).await?)
}

/// Stops a replica (its data stays; it leaves the reader endpoint and the failover candidates).
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/stop", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 202, body = OperationAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.stop_node(&auth.tenant_id, &id, &node_id).await?)
}

/// Takes a replica out of the reader endpoint and the failover candidates (or back).
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/maintenance", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)), request_body = ToggleInput,
    responses((status = 202, body = OperationAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn maintenance(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
    Json(input): Json<ToggleInput>,
) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.set_maintenance(&auth.tenant_id, &id, &node_id, input).await?)
}

/// Sets the primary's `read_only` (manual failover mode only).
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/read-only", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)), request_body = ToggleInput,
    responses((status = 202, body = OperationAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn read_only(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
    Json(input): Json<ToggleInput>,
) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.set_node_read_only(&auth.tenant_id, &id, &node_id, input).await?)
}

/// Resizes one node (a primary after a switchover), online where MariaDB allows.
#[utoipa::path(patch, path = "/v1/clusters/{cluster_id}/nodes/{node_id}", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)), request_body = ResizeNodeInput,
    responses((status = 202, body = OperationAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn resize(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
    Json(input): Json<ResizeNodeInput>,
) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.resize_node(&auth.tenant_id, &id, &node_id, input).await?)
}

/// Restarts every node cleanly, rolling: replicas, a switchover, the old primary.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/reboot", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 202, body = OperationAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reboot_cluster(State(app): State<Arc<Marina>>, Auth(auth): Auth, Path(id): Path<String>) -> Accepted {
    auth.require(Scope::Write)?;
    accepted(app.reboot_cluster(&auth.tenant_id, &id).await?)
}
