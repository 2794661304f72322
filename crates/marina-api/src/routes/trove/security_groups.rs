//! Trove security groups and rules: Marina's, in the seed's shapes (a rule
//! is `{"id", "ip_range": {"cidr"}}` inside its group, and
//! `{"id", "security_group_id", "cidr", "from_port", "to_port", "created"}`
//! on its own). Rules are addressed by their id alone, as in the seed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use marina_common::Error;
use marina_common::model::{CreateRuleInput, SecurityGroup, SecurityGroupRule};
use marina_core::Marina;
use marina_core::auth::AuthContext;
use marina_store::PageRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Base, TroveLink};
use crate::error::ApiResult;
use crate::extract::{Auth, Json, own_tenant};
use crate::transport::Scheme;

/// `{"cidr"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IpRange {
    pub cidr: String,
}

/// A rule inside its group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRule {
    pub id: String,
    pub ip_range: IpRange,
    pub from_port: u16,
    pub to_port: u16,
}

/// A security group.
#[derive(Debug, Serialize, ToSchema)]
pub struct TroveGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: Vec<GroupRule>,
    pub links: Vec<TroveLink>,
    pub created: String,
}

/// `{"security-groups": […]}` (never paged).
#[derive(Debug, Serialize, ToSchema)]
pub struct Groups {
    #[serde(rename = "security-groups")]
    pub groups: Vec<TroveGroup>,
}

/// `{"security-group": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneGroup {
    #[serde(rename = "security-group")]
    pub group: TroveGroup,
}

/// A rule on its own.
#[derive(Debug, Serialize, ToSchema)]
pub struct TroveRule {
    pub id: String,
    pub security_group_id: String,
    pub cidr: String,
    pub from_port: u16,
    pub to_port: u16,
    pub created: String,
}

/// `{"security_group_rule": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneRule {
    pub security_group_rule: TroveRule,
}

/// The rule of a create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RuleInput {
    pub security_group_id: String,
    pub cidr: String,
    pub from_port: u32,
    pub to_port: u32,
}

/// `{"security_group_rule": …}` of a create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRuleBody {
    pub security_group_rule: RuleInput,
}

fn group(base: &Base, g: SecurityGroup) -> TroveGroup {
    TroveGroup {
        links: base.links("security-groups", &g.id),
        rules: g
            .rules
            .into_iter()
            .map(|r| GroupRule {
                id: r.id,
                ip_range: IpRange { cidr: r.cidr },
                from_port: r.from_port,
                to_port: r.to_port,
            })
            .collect(),
        id: g.id,
        name: g.name,
        description: g.description,
        created: g.created_at,
    }
}

fn rule(r: SecurityGroupRule) -> TroveRule {
    TroveRule {
        id: r.id,
        security_group_id: r.security_group_id,
        cidr: r.cidr,
        from_port: r.from_port,
        to_port: r.to_port,
        created: r.created_at,
    }
}

/// Every group of the tenant.
async fn all_groups(app: &Marina, auth: &AuthContext) -> Result<Vec<SecurityGroup>, Error> {
    marina_store::all_pages(|cursor| async move {
        let page = PageRequest {
            limit: marina_store::PAGE_ALL,
            cursor: cursor.as_deref(),
        };
        app.list_security_groups(auth, page).await
    })
    .await
}

/// A rule of the tenant by its id alone.
async fn find_rule(app: &Marina, auth: &AuthContext, rule_id: &str) -> Result<SecurityGroupRule, Error> {
    all_groups(app, auth)
        .await?
        .into_iter()
        .flat_map(|g| g.rules)
        .find(|r| r.id == rule_id)
        .ok_or_else(|| Error::not_found("security group rule", rule_id))
}

/// The tenant's security groups.
#[utoipa::path(get, path = "/v1.0/{tenant_id}/security-groups", tag = "compat: trove", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), responses((status = 200, body = Groups), (status = 401, body = Object)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<Groups>> {
    own_tenant(&auth, "tenant", &tenant_id)?;
    let base = Base::new(&headers, scheme, &tenant_id);
    let groups = all_groups(&app, &auth).await?;
    Ok(axum::Json(Groups {
        groups: groups.into_iter().map(|g| group(&base, g)).collect(),
    }))
}

/// One security group.
#[utoipa::path(get, path = "/v1.0/{tenant_id}/security-groups/{security_group_id}", tag = "compat: trove",
    security(("bearer" = [])), params(("tenant_id" = String, Path), ("security_group_id" = String, Path)),
    responses((status = 200, body = OneGroup), (status = 404, body = Object)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<OneGroup>> {
    own_tenant(&auth, "tenant", &tenant_id)?;
    let g = app.security_group(&auth, &id).await?;
    Ok(axum::Json(OneGroup {
        group: group(&Base::new(&headers, scheme, &tenant_id), g),
    }))
}

/// Adds a rule to a group (admin scope, as natively).
#[utoipa::path(post, path = "/v1.0/{tenant_id}/security-group-rules", tag = "compat: trove",
    security(("bearer" = [])), params(("tenant_id" = String, Path)), request_body = CreateRuleBody,
    responses((status = 201, body = OneRule), (status = 400, body = Object), (status = 404, body = Object)))]
pub async fn create_rule(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(tenant_id): Path<String>,
    Json(body): Json<CreateRuleBody>,
) -> ApiResult<(StatusCode, axum::Json<OneRule>)> {
    own_tenant(&auth, "tenant", &tenant_id)?;
    let r = body.security_group_rule;
    let made = app
        .add_rule(
            &auth,
            &r.security_group_id,
            CreateRuleInput {
                cidr: r.cidr,
                from_port: r.from_port,
                to_port: r.to_port,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(OneRule {
            security_group_rule: rule(made),
        }),
    ))
}

/// One rule.
#[utoipa::path(get, path = "/v1.0/{tenant_id}/security-group-rules/{rule_id}", tag = "compat: trove",
    security(("bearer" = [])), params(("tenant_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 200, body = OneRule), (status = 404, body = Object)))]
pub async fn get_rule(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<OneRule>> {
    own_tenant(&auth, "tenant", &tenant_id)?;
    Ok(axum::Json(OneRule {
        security_group_rule: rule(find_rule(&app, &auth, &id).await?),
    }))
}

/// Deletes a rule: 204.
#[utoipa::path(delete, path = "/v1.0/{tenant_id}/security-group-rules/{rule_id}", tag = "compat: trove",
    security(("bearer" = [])), params(("tenant_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 204), (status = 404, body = Object)))]
pub async fn delete_rule(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    own_tenant(&auth, "tenant", &tenant_id)?;
    let r = find_rule(&app, &auth, &id).await?;
    app.delete_rule(&auth, &r.security_group_id, &r.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
