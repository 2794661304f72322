//! Service routes: versions, health, the OpenAPI document, the current tenant.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use marina_common::Error;
use marina_common::model::Scope;
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::Auth;
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
    Ok(axum::Json(TenantView {
        id: t.id,
        object: "tenant",
        name: t.name,
        created_at: t.created_at,
    }))
}
