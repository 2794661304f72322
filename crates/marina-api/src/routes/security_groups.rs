//! Security groups and their rules.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use marina_common::model::{CreateRuleInput, CreateSecurityGroupInput, SecurityGroup, SecurityGroupRule};
use marina_core::Marina;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, ListParams, Query};
use crate::views::*;

/// Creates a security group (no rules yet: it admits nothing until it has some).
#[utoipa::path(post, path = "/v1/security-groups", tag = "security-groups", security(("bearer" = [])),
    request_body = CreateSecurityGroupInput,
    responses((status = 201, body = SecurityGroup), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Json(input): Json<CreateSecurityGroupInput>,
) -> ApiResult<(StatusCode, axum::Json<SecurityGroup>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_security_group(&auth, input).await?),
    ))
}

/// The tenant's security groups with their rules.
#[utoipa::path(get, path = "/v1/security-groups", tag = "security-groups", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = SecurityGroupList)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<SecurityGroupList>> {
    let page = app.list_security_groups(&auth, q.page()?).await?;
    Ok(axum::Json(SecurityGroupList::new(page.items, page.next_cursor)))
}

/// One security group.
#[utoipa::path(get, path = "/v1/security-groups/{sg_id}", tag = "security-groups", security(("bearer" = [])),
    params(("sg_id" = String, Path)),
    responses((status = 200, body = SecurityGroup), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SecurityGroup>> {
    Ok(axum::Json(app.security_group(&auth, &id).await?))
}

/// Deletes a security group (409 while a cluster uses it).
#[utoipa::path(delete, path = "/v1/security-groups/{sg_id}", tag = "security-groups", security(("bearer" = [])),
    params(("sg_id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(State(app): State<Arc<Marina>>, Auth(auth): Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_security_group(&auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a rule: connections from `cidr` to endpoint ports `from_port..=to_port` are admitted.
#[utoipa::path(post, path = "/v1/security-groups/{sg_id}/rules", tag = "security-groups", security(("bearer" = [])),
    params(("sg_id" = String, Path)), request_body = CreateRuleInput,
    responses((status = 201, body = SecurityGroupRule), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_rule(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    Json(input): Json<CreateRuleInput>,
) -> ApiResult<(StatusCode, axum::Json<SecurityGroupRule>)> {
    Ok((StatusCode::CREATED, axum::Json(app.add_rule(&auth, &id, input).await?)))
}

/// Deletes a rule.
#[utoipa::path(delete, path = "/v1/security-groups/{sg_id}/rules/{rule_id}", tag = "security-groups",
    security(("bearer" = [])), params(("sg_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete_rule(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((id, rule)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.delete_rule(&auth, &id, &rule).await?;
    Ok(StatusCode::NO_CONTENT)
}
