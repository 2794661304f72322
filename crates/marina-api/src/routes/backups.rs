//! Backups: take one of a cluster, list a cluster's, read and delete one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use marina_common::model::{CreateBackupInput, Scope};
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonOrEmpty, ListParams, Query};
use crate::views::*;

/// Takes a backup (`physical` by default) from a healthy replica.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/backups", tag = "backups", security(("bearer" = [])),
    params(("cluster_id" = String, Path)), request_body = CreateBackupInput,
    responses((status = 202, body = BackupCreated), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(cluster_id): Path<String>,
    JsonOrEmpty(input): JsonOrEmpty<CreateBackupInput>,
) -> ApiResult<(StatusCode, axum::Json<BackupCreated>)> {
    auth.require(Scope::Write)?;
    let (b, operation) = app.create_backup(&auth.tenant_id, &cluster_id, input).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(BackupCreated {
            backup: BackupView::from(&b),
            operation,
        }),
    ))
}

/// A cluster's backups, newest first.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/backups", tag = "backups", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ListParams),
    responses((status = 200, body = BackupList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(cluster_id): Path<String>,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<BackupList>> {
    auth.require(Scope::Read)?;
    let page = app.cluster_backups(&auth.tenant_id, &cluster_id, q.page()?).await?;
    Ok(axum::Json(BackupList::new(
        page.items.iter().map(BackupView::from).collect(),
        page.next_cursor,
    )))
}

/// A backup (also after its cluster was deleted).
#[utoipa::path(get, path = "/v1/backups/{backup_id}", tag = "backups", security(("bearer" = [])),
    params(("backup_id" = String, Path)),
    responses((status = 200, body = BackupView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<BackupView>> {
    auth.require(Scope::Read)?;
    Ok(axum::Json(BackupView::from(&app.backup(&auth.tenant_id, &id).await?)))
}

/// Deletes a finished backup and its stored data.
#[utoipa::path(delete, path = "/v1/backups/{backup_id}", tag = "backups", security(("bearer" = [])),
    params(("backup_id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(State(app): State<Arc<Marina>>, Auth(auth): Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    auth.require(Scope::Write)?;
    app.delete_backup(&auth.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rebuilds a replica from a fresh copy of the primary (default) or from the
/// cluster's latest physical backup, then reattaches it with GTID.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/reseed", tag = "backups", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    request_body(content = marina_common::model::ReseedInput, description = "optional"),
    responses((status = 202, body = OperationAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reseed(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((cluster_id, node_id)): Path<(String, String)>,
    JsonOrEmpty(input): JsonOrEmpty<marina_common::model::ReseedInput>,
) -> ApiResult<(StatusCode, axum::Json<OperationAccepted>)> {
    auth.require(Scope::Write)?;
    let operation = app
        .request_reseed(&auth.tenant_id, &cluster_id, &node_id, input)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(OperationAccepted { operation })))
}

/// The span of time a cluster can be restored to (needs archived binlogs).
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/restore-window", tag = "backups", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = RestoreWindow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn restore_window(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(cluster_id): Path<String>,
) -> ApiResult<axum::Json<RestoreWindow>> {
    auth.require(Scope::Read)?;
    let c = app.cluster(&auth.tenant_id, &cluster_id).await?;
    match marina_core::binlog_archive::restore_window(&app, &c).await? {
        Some((earliest, latest)) => Ok(axum::Json(RestoreWindow {
            cluster_id: c.id,
            earliest,
            latest,
        })),
        None => Err(marina_common::Error::Conflict(format!(
            "cluster {} has no restore window: point-in-time recovery needs backup_policy.binlog_archive, a backup \
             taken since archiving started, and one archived binlog",
            c.id
        ))
        .into()),
    }
}
