//! Operations.

use std::sync::Arc;

use axum::extract::{Path, State};
use marina_common::model::{Operation, Scope};
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::views::*;

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
