//! Clusters and their nodes, operations and events.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use marina_common::Error;
use marina_common::model::{CreateClusterInput, Scope};
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, ListParams, Query};
use crate::views::*;

type Accepted<T> = ApiResult<(StatusCode, axum::Json<T>)>;

/// A cluster's view with its security groups and replica lag from the monitor.
pub(crate) async fn cluster_view(
    app: &Marina,
    c: &marina_common::model::ClusterRecord,
    nodes: &[marina_common::model::NodeRecord],
) -> ApiResult<ClusterView> {
    let mut v = ClusterView::new(c, nodes);
    v.security_group_ids = app.cluster_security_group_ids(&c.id).await?;
    for n in v.nodes.iter_mut() {
        if let Some(lag) = app.monitor.node(&n.id).and_then(|h| h.lag_seconds()) {
            n.lag_seconds = Some(lag);
        }
    }
    Ok(v)
}

/// Creates a cluster; the `admin` password is in this answer only.
#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", security(("bearer" = [])),
    request_body = CreateClusterInput,
    responses((status = 202, body = ClusterCreated), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn create(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Json(input): Json<CreateClusterInput>,
) -> Accepted<ClusterCreated> {
    auth.require(Scope::Write)?;
    let created = app.create_cluster(&auth.tenant_id, input).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ClusterCreated {
            cluster: cluster_view(&app, &created.cluster, &created.nodes).await?,
            operation: created.operation,
            credentials: Credentials {
                username: "admin".into(),
                password: created.admin_password,
            },
        }),
    ))
}

/// The tenant's clusters.
#[utoipa::path(get, path = "/v1/clusters", tag = "clusters", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = ClusterList)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<ClusterList>> {
    auth.require(Scope::Read)?;
    let page = app.list_clusters(&auth.tenant_id, q.page()?).await?;
    let mut data = Vec::with_capacity(page.items.len());
    for (c, n) in &page.items {
        data.push(cluster_view(&app, c, n).await?);
    }
    Ok(axum::Json(ClusterList::new(data, page.next_cursor)))
}

/// One cluster.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}", tag = "clusters", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = ClusterView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ClusterView>> {
    auth.require(Scope::Read)?;
    let (c, nodes) = app.get_cluster(&auth.tenant_id, &id).await?;
    Ok(axum::Json(cluster_view(&app, &c, &nodes).await?))
}

/// Deletes a cluster: every process, port, endpoint and file goes.
#[utoipa::path(delete, path = "/v1/clusters/{cluster_id}", tag = "clusters", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 202, body = OperationAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Accepted<OperationAccepted> {
    auth.require(Scope::Write)?;
    let operation = app.delete_cluster(&auth.tenant_id, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(OperationAccepted { operation })))
}

/// The cluster's nodes.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes", tag = "clusters", security(("bearer" = [])),
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = NodeList), (status = 404, body = ErrorBody)))]
pub async fn nodes(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<NodeList>> {
    auth.require(Scope::Read)?;
    let (_, nodes) = app.get_cluster(&auth.tenant_id, &id).await?;
    Ok(axum::Json(NodeList::new(
        nodes.iter().map(NodeView::from).collect(),
        None,
    )))
}

/// One node.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/nodes/{node_id}", tag = "clusters", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, body = NodeView), (status = 404, body = ErrorBody)))]
pub async fn node(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, node_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<NodeView>> {
    auth.require(Scope::Read)?;
    let (_, nodes) = app.get_cluster(&auth.tenant_id, &id).await?;
    let n = nodes
        .iter()
        .find(|n| n.id == node_id)
        .ok_or_else(|| Error::not_found("node", &node_id))?;
    Ok(axum::Json(NodeView::from(n)))
}

/// The cluster's operations, newest first.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/operations", tag = "clusters", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ListParams),
    responses((status = 200, body = OperationList), (status = 404, body = ErrorBody)))]
pub async fn operations(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<OperationList>> {
    auth.require(Scope::Read)?;
    let c = app.cluster(&auth.tenant_id, &id).await?;
    let page = app.store.list_operations(&c.id, q.page()?).await?;
    Ok(axum::Json(OperationList::new(page.items, page.next_cursor)))
}

/// The cluster's events, newest first.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}/events", tag = "clusters", security(("bearer" = [])),
    params(("cluster_id" = String, Path), ListParams),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<EventList>> {
    auth.require(Scope::Read)?;
    let c = app.cluster(&auth.tenant_id, &id).await?;
    let page = app.store.list_events(&c.id, q.page()?).await?;
    Ok(axum::Json(EventList::new(page.items, page.next_cursor)))
}
