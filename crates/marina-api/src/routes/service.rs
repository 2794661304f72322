//! Service routes: versions, health, the OpenAPI document, the current tenant.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use marina_common::Error;
use marina_common::model::Scope;
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::{Auth, ListParams, Query};
use crate::views::*;

/// The scheme clients reached this server with (`https` behind TLS).
type SchemeExt = Option<axum::Extension<crate::transport::Scheme>>;

fn base_url(headers: &HeaderMap, scheme: &SchemeExt) -> String {
    url_base(headers, scheme.as_ref().map(|s| s.0))
}

/// `scheme://host` as the client called it (its `Host` header).
pub fn url_base(headers: &HeaderMap, scheme: Option<crate::transport::Scheme>) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:7300");
    let scheme = scheme.map_or("http", |s| s.0);
    format!("{scheme}://{host}")
}

fn v1(headers: &HeaderMap, scheme: &SchemeExt) -> Version {
    Version {
        id: "v1".into(),
        status: "CURRENT".into(),
        updated: None,
        links: vec![Link {
            href: format!("{}/v1", base_url(headers, scheme)),
            rel: "self".into(),
        }],
    }
}

/// The Trove / HP Cloud compatible API (`/v1.0/{tenant_id}/…`).
fn v1_0(headers: &HeaderMap, scheme: &SchemeExt) -> Version {
    Version {
        id: "v1.0".into(),
        status: "CURRENT".into(),
        updated: Some("2012-09-25T00:00:00Z".into()),
        links: vec![Link {
            href: format!("{}/v1.0", base_url(headers, scheme)),
            rel: "self".into(),
        }],
    }
}

/// API versions: Marina's `v1` and the Trove-compatible `v1.0`.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = Versions)))]
pub async fn versions(headers: HeaderMap, scheme: SchemeExt) -> axum::Json<Versions> {
    axum::Json(Versions {
        versions: vec![v1(&headers, &scheme), v1_0(&headers, &scheme)],
    })
}

/// The Trove-compatible API version (seed `001_…`; no token needed).
#[utoipa::path(get, path = "/v1.0", tag = "compat: trove", responses((status = 200, body = VersionDoc)))]
pub async fn trove_version(headers: HeaderMap, scheme: SchemeExt) -> axum::Json<VersionDoc> {
    axum::Json(VersionDoc {
        version: v1_0(&headers, &scheme),
    })
}

/// The v1 API.
#[utoipa::path(get, path = "/v1", tag = "service", responses((status = 200, body = VersionDoc)))]
pub async fn version(headers: HeaderMap, scheme: SchemeExt) -> axum::Json<VersionDoc> {
    axum::Json(VersionDoc {
        version: v1(&headers, &scheme),
    })
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi(State(_app): State<Arc<Marina>>) -> axum::Json<serde_json::Value> {
    axum::Json(crate::server::openapi_json().clone())
}

/// The caller's tenant.
#[utoipa::path(get, path = "/v1/tenants/current", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody)))]
pub async fn current_tenant(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<axum::Json<TenantView>> {
    auth.require(Scope::Read)?;
    let t = app
        .store
        .get_tenant(&auth.tenant_id)
        .await?
        .ok_or_else(|| Error::not_found("tenant", &auth.tenant_id))?;
    Ok(axum::Json(TenantView::from(t)))
}

/// Every tenant, oldest first (the operator's tenant only).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = TenantList), (status = 403, body = ErrorBody)))]
pub async fn list_tenants(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<TenantList>> {
    app.require_operator(&auth, Scope::Read, "list tenants").await?;
    let page = app.store.list_tenants(q.page()?).await?;
    let data = page.items.into_iter().map(TenantView::from).collect();
    Ok(axum::Json(TenantList::new(data, page.next_cursor)))
}

/// One tenant: the caller's own, or any for the operator's tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)))]
pub async fn get_tenant(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TenantView>> {
    auth.require(Scope::Read)?;
    if id != auth.tenant_id {
        app.require_operator(&auth, Scope::Read, "read other tenants")
            .await
            .map_err(|_| Error::not_found("tenant", &id))?;
    }
    let t = app
        .store
        .get_tenant(&id)
        .await?
        .ok_or_else(|| Error::not_found("tenant", &id))?;
    Ok(axum::Json(TenantView::from(t)))
}

/// Every background task of the control plane: its last activation (why,
/// when, how long, result, error) and its status (the operator's tenant only).
#[utoipa::path(get, path = "/v1/background-tasks", tag = "service", security(("bearer" = [])),
    responses((status = 200, body = BackgroundTaskList), (status = 403, body = ErrorBody)))]
pub async fn background_tasks(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
) -> ApiResult<axum::Json<BackgroundTaskList>> {
    app.require_operator(&auth, Scope::Read, "read background tasks")
        .await?;
    Ok(axum::Json(BackgroundTaskList::new(app.background_tasks(), None)))
}
