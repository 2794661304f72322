//! Operations: one, and the tenant's list filtered by cluster and status.

use std::sync::Arc;

use axum::extract::{Path, State};
use marina_common::model::{Operation, OperationStatus, Scope};
use marina_core::Marina;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{Auth, ListParams, Query};
use crate::views::*;

/// `?cluster_id=&status=&limit=&cursor=` of `GET /v1/operations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OperationFilter {
    /// Only this cluster's operations.
    pub cluster_id: Option<String>,
    /// Only operations in this status.
    #[param(value_type = Option<String>, example = "running")]
    pub status: Option<OperationStatus>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's operations, newest first.
#[utoipa::path(get, path = "/v1/operations", tag = "operations", security(("bearer" = [])), params(OperationFilter),
    responses((status = 200, body = OperationList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Query(q): Query<OperationFilter>,
) -> ApiResult<axum::Json<OperationList>> {
    auth.require(Scope::Read)?;
    let cluster = match &q.cluster_id {
        Some(id) => Some(app.cluster(&auth.tenant_id, id).await?.id),
        None => None,
    };
    let params = ListParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let page = app
        .store
        .list_tenant_operations(&auth.tenant_id, cluster.as_deref(), q.status, params.page()?)
        .await?;
    Ok(axum::Json(OperationList::new(page.items, page.next_cursor)))
}

/// One operation with its steps.
#[utoipa::path(get, path = "/v1/operations/{operation_id}", tag = "operations", security(("bearer" = [])),
    params(("operation_id" = String, Path)),
    responses((status = 200, body = Operation), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Operation>> {
    auth.require(Scope::Read)?;
    Ok(axum::Json(app.operation(&auth.tenant_id, &id).await?))
}
