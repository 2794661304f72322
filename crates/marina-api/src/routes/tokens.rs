//! Tokens and tenants.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use marina_common::model::{CreateTenantInput, CreateTokenInput};
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, ListParams, Query};
use crate::views::*;

/// Creates a token; its secret is in this answer only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateTokenInput,
    responses((status = 201, body = TokenCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Json(input): Json<CreateTokenInput>,
) -> ApiResult<(StatusCode, axum::Json<TokenCreated>)> {
    let (token, secret) = app.create_token(&auth, input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TokenCreated {
            token: TokenView::from(&token),
            secret,
        }),
    ))
}

/// The tenant's tokens (never their secrets).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = TokenList), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<TokenList>> {
    let page = app.list_tokens(&auth, q.page()?).await?;
    Ok(axum::Json(TokenList::new(
        page.items.iter().map(TokenView::from).collect(),
        page.next_cursor,
    )))
}

/// Revokes a token: its secret is refused from the next request on.
#[utoipa::path(delete, path = "/v1/tokens/{token_id}", tag = "tokens", security(("bearer" = [])),
    params(("token_id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke(State(app): State<Arc<Marina>>, Auth(auth): Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.revoke_token(&auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a tenant and its first admin token (operator only).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), request_body = CreateTenantInput,
    responses((status = 201, body = TenantCreated), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_tenant(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Json(input): Json<CreateTenantInput>,
) -> ApiResult<(StatusCode, axum::Json<TenantCreated>)> {
    let (t, token, secret) = app.create_tenant(&auth, input).await?;
    let tenant = TenantView {
        id: t.id,
        object: "tenant",
        name: t.name,
        created_at: t.created_at,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(TenantCreated {
            tenant,
            token: TokenView::from(&token),
            secret,
        }),
    ))
}
