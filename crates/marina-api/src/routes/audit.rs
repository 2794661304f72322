//! The tenant's audit log.

use std::sync::Arc;

use axum::extract::State;
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::{Auth, ListParams, Query};
use crate::views::*;

/// Mutating API calls of the caller's tenant, newest first (scope `admin`).
#[utoipa::path(get, path = "/v1/audit-events", tag = "tenants", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = AuditEventList), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<AuditEventList>> {
    let page = app.audit_events(&auth, q.page()?).await?;
    Ok(axum::Json(AuditEventList::new(page.items, page.next_cursor)))
}
