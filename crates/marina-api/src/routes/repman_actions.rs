//! replication-manager's protected actions (seed `003_…`), translated onto
//! Marina's operations: cluster `switchover`, `failover` and
//! `replication/bootstrap/{topology}`; server `start`, `stop`,
//! `backup-physical`, `backup-logical`, `maintenance` (a toggle),
//! `reseed/{backupMethod}`, `toogle-read-only` (the seed's spelling; a
//! toggle). replication-manager answers its actions with 200 and sends them as
//! GET; Marina takes GET and POST, answers 200 with the operation it started
//! (an extension to poll), and needs the `write` scope.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use marina_common::Error;
use marina_common::model::{
    BackupMethod, CreateBackupInput, NodeRole, NodeStatus, Operation, PromoteInput, ReseedFrom, ReseedInput, Scope,
    ToggleInput,
};
use marina_core::Marina;

use super::repman_api::{cluster_of, server_of};
use crate::error::ApiResult;
use crate::extract::Auth;

fn started(op: Operation) -> Response {
    (StatusCode::OK, axum::Json(op)).into_response()
}

/// Switchover to the most suitable replica: 200; 400 `Master failed` when
/// the primary is not healthy (fail over instead).
#[utoipa::path(method(get, post), path = "/api/clusters/{clusterName}/actions/switchover", tag = "compat: replication-manager",
    security(("bearer" = [])), params(("clusterName" = String, Path)),
    responses((status = 200, body = Operation), (status = 400, body = String), (status = 403, body = String),
        (status = 500, body = String)))]
pub async fn switchover(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    auth.require(Scope::Write)?;
    let c = cluster_of(&app, &auth, &name).await?;
    let nodes = app.store.list_nodes(&c.id).await?;
    let primary_ok = nodes
        .iter()
        .any(|n| n.role == NodeRole::Primary && n.status == NodeStatus::Active);
    if !primary_ok {
        return Ok((StatusCode::BAD_REQUEST, "Master failed").into_response());
    }
    let op = app
        .request_switchover(&auth.tenant_id, &c.id, PromoteInput { target_node_id: None })
        .await?;
    Ok(started(op))
}

/// Manual failover to the most suitable replica: 200.
#[utoipa::path(method(get, post), path = "/api/clusters/{clusterName}/actions/failover", tag = "compat: replication-manager",
    security(("bearer" = [])), params(("clusterName" = String, Path)),
    responses((status = 200, body = Operation), (status = 403, body = String), (status = 500, body = String)))]
pub async fn failover(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    auth.require(Scope::Write)?;
    let c = cluster_of(&app, &auth, &name).await?;
    let op = app
        .request_failover(&auth.tenant_id, &c.id, PromoteInput { target_node_id: None })
        .await?;
    Ok(started(op))
}

/// Replication bootstrap. Marina bootstraps `master-slave` (GTID,
/// semi-sync) itself when it creates a cluster and keeps it so; the call
/// checks that every replica replicates from the primary (200) and rebuilds
/// a failed one from the primary (200 with the reseed operation). Any other
/// topology is 400: Marina does not run it.
#[utoipa::path(method(get, post), path = "/api/clusters/{clusterName}/actions/replication/bootstrap/{topology}",
    tag = "compat: replication-manager", security(("bearer" = [])),
    params(("clusterName" = String, Path), ("topology" = String, Path, description = "master-slave")),
    responses((status = 200, body = Object), (status = 400, body = String), (status = 403, body = String),
        (status = 500, body = String)))]
pub async fn bootstrap(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((name, topology)): Path<(String, String)>,
) -> ApiResult<Response> {
    auth.require(Scope::Write)?;
    let c = cluster_of(&app, &auth, &name).await?;
    if topology != "master-slave" {
        return Err(Error::InvalidRequest(format!(
            "topology {topology} is not supported: Marina clusters are master-slave (GTID, semi-sync)"
        ))
        .into());
    }
    let nodes = app.store.list_nodes(&c.id).await?;
    match nodes
        .iter()
        .find(|n| n.role == NodeRole::Replica && n.status == NodeStatus::Failed)
    {
        Some(failed) => {
            let input = ReseedInput {
                from: Some(ReseedFrom::Primary),
            };
            Ok(started(
                app.request_reseed(&auth.tenant_id, &c.id, &failed.id, input).await?,
            ))
        }
        None => Ok((
            StatusCode::OK,
            axum::Json(serde_json::json!({"topology": "master-slave"})),
        )
            .into_response()),
    }
}

/// A server action: `start`, `stop`, `backup-physical`, `backup-logical`,
/// `maintenance` (toggles), `toogle-read-only` (toggles).
#[utoipa::path(method(get, post), path = "/api/clusters/{clusterName}/servers/{serverName}/actions/{action}",
    tag = "compat: replication-manager", security(("bearer" = [])),
    params(("clusterName" = String, Path), ("serverName" = String, Path, description = "node id or host:port"),
        ("action" = String, Path, description = "start, stop, backup-physical, backup-logical, maintenance, toogle-read-only")),
    responses((status = 200, body = Operation), (status = 400, body = String), (status = 403, body = String),
        (status = 500, body = String)))]
pub async fn server_action(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((name, server, action)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    auth.require(Scope::Write)?;
    let c = cluster_of(&app, &auth, &name).await?;
    let node = server_of(&app, &c, &server).await?;
    let t = auth.tenant_id.as_str();
    let op = match action.as_str() {
        "start" => app.start_node(t, &c.id, &node.id).await?,
        "stop" => app.stop_node(t, &c.id, &node.id).await?,
        "backup-physical" | "backup-logical" => {
            let method = if action == "backup-physical" {
                BackupMethod::Physical
            } else {
                BackupMethod::Logical
            };
            let input = CreateBackupInput { method: Some(method) };
            app.create_backup(t, &c.id, input).await?.1
        }
        "maintenance" => {
            let enabled = node.status != NodeStatus::Maintenance;
            app.set_maintenance(t, &c.id, &node.id, ToggleInput { enabled }).await?
        }
        "toogle-read-only" => {
            // Writable now → make it read-only, and the other way round.
            let status = app.cluster_status(t, &c.id).await?;
            let enabled = status
                .nodes
                .iter()
                .find(|v| v.node_id == node.id)
                .is_none_or(|v| v.probes.writable);
            app.set_node_read_only(t, &c.id, &node.id, ToggleInput { enabled })
                .await?
        }
        other => {
            return Err(Error::InvalidRequest(format!(
                "server action {other} is not supported; Marina serves start, stop, backup-physical, \
                 backup-logical, maintenance, reseed/{{method}}, toogle-read-only"
            ))
            .into());
        }
    };
    Ok(started(op))
}

/// Rebuilds a server: `physicalmaster`/`logicalmaster` from the primary,
/// `physicalbackup`/`logicalbackup` from the latest physical backup.
#[utoipa::path(method(get, post), path = "/api/clusters/{clusterName}/servers/{serverName}/actions/reseed/{backupMethod}",
    tag = "compat: replication-manager", security(("bearer" = [])),
    params(("clusterName" = String, Path), ("serverName" = String, Path), ("backupMethod" = String, Path,
        description = "physicalmaster, logicalmaster, physicalbackup or logicalbackup")),
    responses((status = 200, body = Operation), (status = 400, body = String), (status = 403, body = String),
        (status = 500, body = String)))]
pub async fn reseed(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((name, server, method)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    auth.require(Scope::Write)?;
    let from = match method.as_str() {
        "physicalmaster" | "logicalmaster" => ReseedFrom::Primary,
        "physicalbackup" | "logicalbackup" => ReseedFrom::Backup,
        other => {
            return Err(Error::InvalidRequest(format!(
                "reseed method {other} is not supported; use physicalmaster, logicalmaster, physicalbackup or logicalbackup"
            ))
            .into());
        }
    };
    let c = cluster_of(&app, &auth, &name).await?;
    let node = server_of(&app, &c, &server).await?;
    let op = app
        .request_reseed(&auth.tenant_id, &c.id, &node.id, ReseedInput { from: Some(from) })
        .await?;
    Ok(started(op))
}
