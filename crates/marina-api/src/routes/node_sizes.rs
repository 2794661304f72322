//! Node sizes (flavors).

use std::sync::Arc;

use axum::extract::{Path, State};
use marina_common::Error;
use marina_common::model::Scope;
use marina_common::size::NodeSize;
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::views::*;

/// The node-size catalog.
#[utoipa::path(get, path = "/v1/node-sizes", tag = "node-sizes", security(("bearer" = [])),
    responses((status = 200, body = NodeSizeList), (status = 401, body = ErrorBody)))]
pub async fn list(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<axum::Json<NodeSizeList>> {
    auth.require(Scope::Read)?;
    Ok(axum::Json(NodeSizeList::new(app.sizes.clone(), None)))
}

/// One node size.
#[utoipa::path(get, path = "/v1/node-sizes/{size_id}", tag = "node-sizes", security(("bearer" = [])),
    params(("size_id" = String, Path)),
    responses((status = 200, body = NodeSize), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(size_id): Path<String>,
) -> ApiResult<axum::Json<NodeSize>> {
    auth.require(Scope::Read)?;
    let s = app
        .size(&size_id)
        .cloned()
        .ok_or_else(|| Error::not_found("node size", size_id))?;
    Ok(axum::Json(s))
}
