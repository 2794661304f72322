//! Databases and users inside a cluster, and the live views of a node
//! (process list, variables, status variables).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use marina_common::model::{CreateDatabaseInput, CreateUserInput, DatabaseView, Scope};
use marina_core::Marina;
use marina_core::NodeLiveView as NodeView;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{Auth, Json};
use crate::views::*;

/// Creates a database.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/databases", tag = "databases", security(("bearer" = [])),
    params(("cluster_id" = String, Path)), request_body = CreateDatabaseInput,
    responses((status = 201, body = DatabaseView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create_database(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    Json(input): Json<CreateDatabaseInput>,
) -> ApiResult<(StatusCode, axum::Json<DatabaseView>)> {
    auth.require(Scope::Write)?;
    let db = app.create_database(&auth.tenant_id, &id, input).await?;
    Ok((StatusCode::CREATED, axum::Json(db)))
}

/// The cluster's databases (system schemas left out).
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/databases", tag = "databases", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = DatabaseList), (status = 404, body = ErrorBody)))]
pub async fn list_databases(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DatabaseList>> {
    auth.require(Scope::Read)?;
    Ok(axum::Json(DatabaseList::new(
        app.list_databases(&auth.tenant_id, &id).await?,
        None,
    )))
}

/// Drops a database.
#[utoipa::path(delete, path = "/v1/clusters/{cluster_id}/databases/{name}", tag = "databases", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_database(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::Write)?;
    app.delete_database(&auth.tenant_id, &id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates an account with all privileges on the given databases; the
/// password (given or generated) is shown only in this answer.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/users", tag = "databases", security(("bearer" = [])),
    params(("cluster_id" = String, Path)), request_body = CreateUserInput,
    responses((status = 201, body = UserCreated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    Json(input): Json<CreateUserInput>,
) -> ApiResult<(StatusCode, axum::Json<UserCreated>)> {
    auth.require(Scope::Write)?;
    let (user, password) = app.create_user(&auth.tenant_id, &id, input).await?;
    Ok((StatusCode::CREATED, axum::Json(UserCreated { user, password })))
}

/// The customer's accounts (Marina's and `admin` left out).
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/users", tag = "databases", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = UserList), (status = 404, body = ErrorBody)))]
pub async fn list_users(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserList>> {
    auth.require(Scope::Read)?;
    Ok(axum::Json(UserList::new(
        app.list_users(&auth.tenant_id, &id).await?,
        None,
    )))
}

/// `?host=`: which account of that name (default: all of them).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HostParam {
    pub host: Option<String>,
}

/// Drops an account.
#[utoipa::path(delete, path = "/v1/clusters/{cluster_id}/users/{name}", tag = "databases", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("name" = String, Path), HostParam),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<HostParam>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::Write)?;
    app.delete_user(&auth.tenant_id, &id, &name, q.host.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn live(app: &Marina, tenant: &str, id: &str, node: &str, view: NodeView) -> ApiResult<axum::Json<RowList>> {
    Ok(axum::Json(RowList::new(
        app.node_live_view(tenant, id, node, view).await?,
        None,
    )))
}

/// The node's process list, read live (Marina's own sessions show no statement).
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/processlist", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, body = RowList), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn processlist(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node)): Path<(String, String)>,
) -> ApiResult<axum::Json<RowList>> {
    auth.require(Scope::Read)?;
    live(&app, &auth.tenant_id, &id, &node, NodeView::ProcessList).await
}

/// The node's global variables (`SHOW GLOBAL VARIABLES`), read live.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/variables", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, body = RowList), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn variables(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node)): Path<(String, String)>,
) -> ApiResult<axum::Json<RowList>> {
    auth.require(Scope::Read)?;
    live(&app, &auth.tenant_id, &id, &node, NodeView::Variables).await
}

/// The node's status variables (`SHOW GLOBAL STATUS`), read live.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes/{node_id}/status-variables", tag = "nodes", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, body = RowList), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn status_variables(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node)): Path<(String, String)>,
) -> ApiResult<axum::Json<RowList>> {
    auth.require(Scope::Read)?;
    live(&app, &auth.tenant_id, &id, &node, NodeView::StatusVariables).await
}

/// `{"credentials": {"username": "admin", "password"}}` (shown once).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ResetPassword {
    pub credentials: Credentials,
}

/// Gives the customer's `admin` account a new password, shown once.
#[utoipa::path(post, path = "/v1/clusters/{cluster_id}/reset-password", tag = "databases", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = ResetPassword), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reset_password(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ResetPassword>> {
    auth.require(Scope::Write)?;
    let password = app.reset_admin_password(&auth.tenant_id, &id).await?;
    Ok(axum::Json(ResetPassword {
        credentials: Credentials {
            username: "admin".into(),
            password,
        },
    }))
}
