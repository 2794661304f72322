//! Cloud 66's API v3 (seed `002_…`) at its own paths, translated onto
//! Marina's services: a stack is a cluster (its `uid` is the cluster id), its
//! one service is `mariadb`, whose containers are the nodes; an action is a
//! Marina operation (its `id` is the operation id) and `service_restart` is
//! the rolling cluster reboot. `Authorization: Bearer <Marina token>`; reads
//! need the `read` scope, actions `write`. Responses use Cloud 66's envelope
//! (`{"response": …}`, lists with `count` and `pagination`); errors its
//! `{"error", "error_description"}` (see `dialect`). See `docs/compat/cloud66.md`.

use std::sync::Arc;

use axum::extract::{Path, State};
use marina_common::Error;
use marina_common::model::{
    ClusterRecord, ClusterStatus, NodeRecord, NodeStatus, Operation, OperationStatus, OperationType, Scope,
};
use marina_core::Marina;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Auth, FormOrJson};

/// The one service of a stack.
const SERVICE: &str = "mariadb";

/// `{"response": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct C66One<T: ToSchema> {
    pub response: T,
}

/// A list: `{"response": […], "count", "pagination"}` (one page holds all).
#[derive(Debug, Serialize, ToSchema)]
pub struct C66List<T: ToSchema> {
    pub response: Vec<T>,
    pub count: usize,
    pub pagination: Pagination,
}

/// Cloud 66's pagination block.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    pub previous: Option<u32>,
    pub next: Option<u32>,
    pub current: u32,
    pub per_page: usize,
    pub count: usize,
    pub pages: u32,
}

fn one<T: ToSchema>(response: T) -> axum::Json<C66One<T>> {
    axum::Json(C66One { response })
}

fn list<T: ToSchema>(response: Vec<T>) -> axum::Json<C66List<T>> {
    let count = response.len();
    axum::Json(C66List {
        response,
        count,
        pagination: Pagination {
            previous: None,
            next: None,
            current: 1,
            per_page: count.max(1),
            count,
            pages: 1,
        },
    })
}

/// A stack (a Marina cluster).
#[derive(Debug, Serialize, ToSchema)]
pub struct Stack {
    pub uid: String,
    pub name: String,
    pub environment: &'static str,
    pub cloud: &'static str,
    /// The writer endpoint's address.
    pub fqdn: String,
    pub language: &'static str,
    pub framework: &'static str,
    /// 1 deployed, 2 deployment failed, 6 deploying.
    pub status: u8,
    /// 1 building, 2 impaired, 3 healthy, 4 failed.
    pub health: u8,
    pub maintenance_mode: bool,
    pub has_loadbalancer: bool,
    /// An operation is changing the stack.
    pub is_busy: bool,
    pub created_at: String,
    pub updated_at: String,
    pub last_activity: String,
    /// Marina's cluster status (an extension).
    pub marina_status: String,
}

fn stack(c: &ClusterRecord) -> Stack {
    let (status, health) = match c.status {
        ClusterStatus::Creating => (6, 1),
        ClusterStatus::Failed => (2, 4),
        ClusterStatus::Degraded | ClusterStatus::FailingOver => (1, 2),
        _ => (1, 3),
    };
    Stack {
        uid: c.id.clone(),
        name: c.name.clone(),
        environment: "production",
        cloud: "marina",
        fqdn: c.writer_host.clone(),
        language: "mariadb",
        framework: "mariadb",
        status,
        health,
        maintenance_mode: false,
        has_loadbalancer: true,
        is_busy: !matches!(
            c.status,
            ClusterStatus::Active | ClusterStatus::Degraded | ClusterStatus::Failed
        ),
        created_at: c.created_at.clone(),
        updated_at: c.updated_at.clone(),
        last_activity: c.updated_at.clone(),
        marina_status: c.status.to_string(),
    }
}

/// A container of the service (a node).
#[derive(Debug, Serialize, ToSchema)]
pub struct Container {
    pub uid: String,
    pub name: String,
    pub server_uid: String,
    pub server_name: String,
    pub service_name: &'static str,
    pub image: String,
    pub port_list: String,
    /// 1 healthy, 2 unhealthy.
    pub health_state: u8,
    pub private_ip: String,
    pub started_at: String,
    pub created_at: String,
    pub updated_at: String,
    /// `primary` or `replica` (an extension).
    pub role: String,
    /// Marina's node status (an extension).
    pub marina_status: String,
}

/// A service of a stack.
#[derive(Debug, Serialize, ToSchema)]
pub struct Service {
    pub name: &'static str,
    pub source_type: &'static str,
    pub image_name: String,
    pub containers: Vec<Container>,
}

fn service(c: &ClusterRecord, nodes: &[NodeRecord]) -> Service {
    let image = format!("mariadb:{}", c.version);
    Service {
        name: SERVICE,
        source_type: "image",
        image_name: image.clone(),
        containers: nodes
            .iter()
            .map(|n| Container {
                uid: n.id.clone(),
                name: format!("{SERVICE}.{}", n.ordinal),
                server_uid: n.id.clone(),
                server_name: n.host.clone(),
                service_name: SERVICE,
                image: image.clone(),
                port_list: n.port.to_string(),
                health_state: if n.status == NodeStatus::Active { 1 } else { 2 },
                private_ip: n.host.clone(),
                started_at: n.updated_at.clone(),
                created_at: n.created_at.clone(),
                updated_at: n.updated_at.clone(),
                role: n.role.to_string(),
                marina_status: n.status.to_string(),
            })
            .collect(),
    }
}

/// An asynchronous action (a Marina operation).
#[derive(Debug, Serialize, ToSchema)]
pub struct Action {
    /// The operation's id, polled at `…/action/{id}`.
    pub id: String,
    /// The same id (the seed's walkthrough polls the `resource_id`).
    pub resource_id: String,
    pub resource_type: &'static str,
    /// `service_restart`, or Marina's operation type.
    pub action: String,
    pub started_via: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `null` while running.
    pub finished_success: Option<bool>,
    pub finished_message: Option<String>,
}

fn action(op: &Operation) -> Action {
    let finished_success = match op.status {
        OperationStatus::Succeeded => Some(true),
        OperationStatus::Failed => Some(false),
        _ => None,
    };
    Action {
        id: op.id.clone(),
        resource_id: op.id.clone(),
        resource_type: "Stack",
        action: match op.op_type {
            OperationType::RebootCluster => "service_restart".into(),
            other => other.to_string(),
        },
        started_via: "api",
        started_at: op.started_at.clone().unwrap_or_else(|| op.created_at.clone()),
        finished_at: op.finished_at.clone(),
        finished_success,
        finished_message: op.error.as_ref().map(|e| e.message.clone()),
    }
}

/// Body of a stack action (a form, as `curl -d command=…` sends it, or JSON).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ActionInput {
    /// `service_restart` (a rolling restart of every node).
    pub command: String,
}

/// The stacks (`/api/3/stacks.json`).
#[utoipa::path(get, path = "/api/3/stacks.json", tag = "compat: cloud66", security(("bearer" = [])),
    responses((status = 200, body = C66List<Stack>), (status = 401, body = Object)))]
pub async fn stacks_json(state: State<Arc<Marina>>, auth: Auth) -> ApiResult<axum::Json<C66List<Stack>>> {
    stacks(state, auth).await
}

/// The stacks.
#[utoipa::path(get, path = "/api/3/stacks", tag = "compat: cloud66", security(("bearer" = [])),
    responses((status = 200, body = C66List<Stack>), (status = 401, body = Object)))]
pub async fn stacks(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<axum::Json<C66List<Stack>>> {
    auth.require(Scope::Read)?;
    let all = app.all_clusters(&auth.tenant_id).await?;
    Ok(list(all.iter().map(|(c, _)| stack(c)).collect()))
}

/// One stack.
#[utoipa::path(get, path = "/api/3/stacks/{uid}", tag = "compat: cloud66", security(("bearer" = [])),
    params(("uid" = String, Path)),
    responses((status = 200, body = C66One<Stack>), (status = 404, body = Object)))]
pub async fn get_stack(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(uid): Path<String>,
) -> ApiResult<axum::Json<C66One<Stack>>> {
    auth.require(Scope::Read)?;
    let c = app.cluster(&auth.tenant_id, &uid).await?;
    Ok(one(stack(&c)))
}

/// The stack's services: `mariadb`, whose containers are the nodes.
#[utoipa::path(get, path = "/api/3/stacks/{uid}/services", tag = "compat: cloud66", security(("bearer" = [])),
    params(("uid" = String, Path)),
    responses((status = 200, body = C66List<Service>), (status = 404, body = Object)))]
pub async fn services(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(uid): Path<String>,
) -> ApiResult<axum::Json<C66List<Service>>> {
    auth.require(Scope::Read)?;
    let (c, nodes) = app.get_cluster(&auth.tenant_id, &uid).await?;
    Ok(list(vec![service(&c, &nodes)]))
}

/// Starts an action: `service_restart` restarts every node, replicas first,
/// the primary after a switchover.
#[utoipa::path(post, path = "/api/3/stacks/{uid}/action", tag = "compat: cloud66", security(("bearer" = [])),
    params(("uid" = String, Path)), request_body = ActionInput,
    responses((status = 200, body = C66One<Action>), (status = 400, body = Object), (status = 404, body = Object),
        (status = 409, body = Object)))]
pub async fn start_action(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(uid): Path<String>,
    FormOrJson(input): FormOrJson<ActionInput>,
) -> ApiResult<axum::Json<C66One<Action>>> {
    auth.require(Scope::Write)?;
    let op = match input.command.as_str() {
        "service_restart" => app.reboot_cluster(&auth.tenant_id, &uid).await?,
        other => {
            return Err(Error::InvalidRequest(format!(
                "command {other:?} is not supported; Marina runs service_restart"
            ))
            .into());
        }
    };
    Ok(one(action(&op)))
}

/// An action's progress.
#[utoipa::path(get, path = "/api/3/stacks/{uid}/action/{id}", tag = "compat: cloud66", security(("bearer" = [])),
    params(("uid" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = C66One<Action>), (status = 404, body = Object)))]
pub async fn get_action(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((uid, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<C66One<Action>>> {
    auth.require(Scope::Read)?;
    let c = app.cluster(&auth.tenant_id, &uid).await?;
    let op = app.operation(&auth.tenant_id, &id).await?;
    if op.cluster_id.as_deref() != Some(c.id.as_str()) {
        return Err(Error::not_found("action", id).into());
    }
    Ok(one(action(&op)))
}
