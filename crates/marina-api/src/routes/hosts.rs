//! Hosts: the machines nodes run on (operator's tenant only): list, show,
//! cordon, uncordon, drain.

use std::sync::Arc;

use axum::extract::{Path, State};
use marina_common::model::Scope;
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::views::*;

/// Every host with its nodes and memory (the operator's tenant only).
#[utoipa::path(get, path = "/v1/hosts", tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = HostList), (status = 403, body = ErrorBody)))]
pub async fn list(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<axum::Json<HostList>> {
    app.require_operator(&auth, Scope::Read, "list hosts").await?;
    let data = app.list_hosts().await?.into_iter().map(HostView::from).collect();
    Ok(axum::Json(HostList::new(data, None)))
}

/// One host (the operator's tenant only).
#[utoipa::path(get, path = "/v1/hosts/{host_id}", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    app.require_operator(&auth, Scope::Read, "read hosts").await?;
    Ok(axum::Json(HostView::from(app.get_host(&id).await?)))
}

/// Cordons a host: it keeps its nodes and takes no new one.
#[utoipa::path(post, path = "/v1/hosts/{host_id}/cordon", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn cordon(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    app.require_operator(&auth, Scope::Admin, "cordon hosts").await?;
    Ok(axum::Json(HostView::from(app.cordon_host(&id).await?)))
}

/// Uncordons a host: it takes new nodes again.
#[utoipa::path(post, path = "/v1/hosts/{host_id}/uncordon", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn uncordon(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    app.require_operator(&auth, Scope::Admin, "uncordon hosts").await?;
    Ok(axum::Json(HostView::from(app.uncordon_host(&id).await?)))
}

/// Drains a host: it takes no new node and its nodes move to other hosts
/// (a host with nodes is refused until another host can take them).
#[utoipa::path(post, path = "/v1/hosts/{host_id}/drain", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn drain(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    app.require_operator(&auth, Scope::Admin, "drain hosts").await?;
    Ok(axum::Json(HostView::from(app.drain_host(&id).await?)))
}
