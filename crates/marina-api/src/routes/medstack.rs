//! MedStack Control's infrastructure API (seed `004_…`) at its own paths,
//! translated onto Marina's services: a company is a tenant, clusters and
//! nodes are Marina's, node sizes are Marina's with `node_size_` ids.
//! `Authorization: Basic base64(<token id>:<token secret>)` (MedStack's
//! token key and value) authenticates. See `docs/compat/medstack.md`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use marina_common::Error;
use marina_common::model::{
    AddNodeInput, ClusterRecord, NodeRecord, OperationType, RebootInput, ResizeNodeInput, Scope,
};
use marina_common::size::NodeSize;
use marina_core::Marina;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, own_tenant};

const SIZE_PREFIX: &str = "node_size_";

/// A company (a Marina tenant).
#[derive(Debug, Serialize, ToSchema)]
pub struct Company {
    pub id: String,
    #[schema(example = "company")]
    pub object: &'static str,
    pub name: String,
}

/// A node size, MedStack's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct MsNodeSize {
    pub id: String,
    #[schema(example = "node_size")]
    pub object: &'static str,
    pub title: String,
    pub vcpu: u32,
    pub memory: f64,
}

/// A cluster, MedStack's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct MsCluster {
    pub id: String,
    #[schema(example = "cluster")]
    pub object: &'static str,
    pub label: String,
    pub status: String,
    pub created_at: String,
}

/// A node, MedStack's shape: `public_ip_address` and `operating_system`
/// appear once it is `active`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MsNode {
    pub id: String,
    #[schema(example = "node")]
    pub object: &'static str,
    pub cluster_id: String,
    /// `creating`, `active`, `resizing`, `rebooting`, `deleting`, or Marina's node status.
    pub status: String,
    pub size: MsNodeSize,
    pub public_ip_address: Option<String>,
    pub operating_system: Option<String>,
    pub created_at: String,
}

/// `{"object": "list", "data": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MsList<T: ToSchema> {
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<T>,
}

fn list<T: ToSchema>(data: Vec<T>) -> axum::Json<MsList<T>> {
    axum::Json(MsList { object: "list", data })
}

/// Body of node create and resize.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MsSizeInput {
    /// A `node_size_…` id from the cluster's node sizes.
    pub size_id: String,
}

fn ms_size(s: &NodeSize) -> MsNodeSize {
    MsNodeSize {
        id: format!("{SIZE_PREFIX}{}", s.id),
        object: "node_size",
        title: s.title.clone(),
        vcpu: s.vcpu,
        memory: s.memory,
    }
}

/// Marina's size id of a MedStack size id (a bare Marina id is accepted too).
fn size_id(ms: &str) -> String {
    ms.strip_prefix(SIZE_PREFIX).unwrap_or(ms).to_string()
}

/// The operating system nodes run on (this host's, from os-release).
fn operating_system() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

async fn ms_node(app: &Marina, c: &ClusterRecord, n: &NodeRecord) -> Result<MsNode, Error> {
    let running = app
        .running_operation(&c.id)
        .await?
        .filter(|o| o.node_id.as_deref() == Some(n.id.as_str()));
    let status = match running.map(|o| o.op_type) {
        Some(OperationType::AddNode) => "creating".to_string(),
        Some(OperationType::ResizeNode) => "resizing".to_string(),
        Some(OperationType::RebootNode) => "rebooting".to_string(),
        Some(OperationType::RemoveNode) => "deleting".to_string(),
        _ => n.status.to_string(),
    };
    let active = status == "active";
    let size = app
        .size(&n.size_id)
        .map(ms_size)
        .ok_or_else(|| Error::internal(format!("node {} has unknown size {}", n.id, n.size_id)))?;
    Ok(MsNode {
        id: n.id.clone(),
        object: "node",
        cluster_id: c.id.clone(),
        status,
        size,
        public_ip_address: active.then(|| n.host.clone()),
        operating_system: if active { operating_system() } else { None },
        created_at: n.created_at.clone(),
    })
}

async fn node_of(app: &Marina, tenant: &str, cluster_id: &str, node_id: &str) -> Result<MsNode, Error> {
    let (c, nodes) = app.get_cluster(tenant, cluster_id).await?;
    let n = nodes
        .iter()
        .find(|n| n.id == node_id)
        .ok_or_else(|| Error::not_found("node", node_id))?;
    ms_node(app, &c, n).await
}

/// The company the token belongs to.
#[utoipa::path(get, path = "/v1/companies/current", tag = "compat: medstack", security(("basic" = [])),
    responses((status = 200, body = Company), (status = 401, body = crate::views::ErrorBody)))]
pub async fn current_company(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<axum::Json<Company>> {
    auth.require(Scope::Read)?;
    let name = app.tenant_name(&auth.tenant_id).await?;
    Ok(axum::Json(Company {
        id: auth.tenant_id,
        object: "company",
        name,
    }))
}

/// The company's clusters.
#[utoipa::path(get, path = "/v1/companies/{company_id}/clusters", tag = "compat: medstack", security(("basic" = [])),
    params(("company_id" = String, Path)),
    responses((status = 200, body = MsList<MsCluster>), (status = 404, body = crate::views::ErrorBody)))]
pub async fn clusters(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(company_id): Path<String>,
) -> ApiResult<axum::Json<MsList<MsCluster>>> {
    auth.require(Scope::Read)?;
    own_tenant(&auth, "company", &company_id)?;
    let out = app
        .all_clusters(&auth.tenant_id)
        .await?
        .into_iter()
        .map(|(c, _)| MsCluster {
            id: c.id,
            object: "cluster",
            label: c.name,
            status: c.status.to_string(),
            created_at: c.created_at,
        })
        .collect();
    Ok(list(out))
}

/// The node sizes available to a cluster.
#[utoipa::path(get, path = "/v1/companies/{company_id}/clusters/{cluster_id}/node-sizes", tag = "compat: medstack",
    security(("basic" = [])), params(("company_id" = String, Path), ("cluster_id" = String, Path)),
    responses((status = 200, body = MsList<MsNodeSize>), (status = 404, body = crate::views::ErrorBody)))]
pub async fn node_sizes(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((company_id, cluster_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<MsList<MsNodeSize>>> {
    auth.require(Scope::Read)?;
    own_tenant(&auth, "company", &company_id)?;
    app.cluster(&auth.tenant_id, &cluster_id).await?;
    Ok(list(app.sizes.iter().map(ms_size).collect()))
}

/// Creates a node (a replica): 202, `creating`, then `active`.
#[utoipa::path(post, path = "/v1/companies/{company_id}/clusters/{cluster_id}/nodes", tag = "compat: medstack",
    security(("basic" = [])), params(("company_id" = String, Path), ("cluster_id" = String, Path)),
    request_body = MsSizeInput,
    responses((status = 202, body = MsNode), (status = 400, body = crate::views::ErrorBody),
        (status = 404, body = crate::views::ErrorBody), (status = 409, body = crate::views::ErrorBody)))]
pub async fn create_node(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((company_id, cluster_id)): Path<(String, String)>,
    Json(input): Json<MsSizeInput>,
) -> ApiResult<(StatusCode, axum::Json<MsNode>)> {
    auth.require(Scope::Write)?;
    own_tenant(&auth, "company", &company_id)?;
    let input = AddNodeInput {
        size_id: Some(size_id(&input.size_id)),
    };
    let (node, _) = app.add_node(&auth.tenant_id, &cluster_id, input).await?;
    let n = node_of(&app, &auth.tenant_id, &cluster_id, &node.id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(n)))
}

/// One node.
#[utoipa::path(get, path = "/v1/companies/{company_id}/clusters/{cluster_id}/nodes/{node_id}", tag = "compat: medstack",
    security(("basic" = [])), params(("company_id" = String, Path), ("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, body = MsNode), (status = 404, body = crate::views::ErrorBody)))]
pub async fn get_node(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((company_id, cluster_id, node_id)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<MsNode>> {
    auth.require(Scope::Read)?;
    own_tenant(&auth, "company", &company_id)?;
    Ok(axum::Json(node_of(&app, &auth.tenant_id, &cluster_id, &node_id).await?))
}

/// Resizes a node: 202 with `resizing` and the old size, then `active`
/// with the new one.
#[utoipa::path(patch, path = "/v1/companies/{company_id}/clusters/{cluster_id}/nodes/{node_id}", tag = "compat: medstack",
    security(("basic" = [])), params(("company_id" = String, Path), ("cluster_id" = String, Path), ("node_id" = String, Path)),
    request_body = MsSizeInput,
    responses((status = 202, body = MsNode), (status = 400, body = crate::views::ErrorBody),
        (status = 404, body = crate::views::ErrorBody), (status = 409, body = crate::views::ErrorBody)))]
pub async fn resize_node(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((company_id, cluster_id, node_id)): Path<(String, String, String)>,
    Json(input): Json<MsSizeInput>,
) -> ApiResult<(StatusCode, axum::Json<MsNode>)> {
    auth.require(Scope::Write)?;
    own_tenant(&auth, "company", &company_id)?;
    let input = ResizeNodeInput {
        size_id: size_id(&input.size_id),
    };
    // Read before the operation starts: it may store the new size before
    // this handler could read the node again.
    let mut before = node_of(&app, &auth.tenant_id, &cluster_id, &node_id).await?;
    app.resize_node(&auth.tenant_id, &cluster_id, &node_id, input).await?;
    before.status = "resizing".to_string();
    before.public_ip_address = None;
    before.operating_system = None;
    Ok((StatusCode::ACCEPTED, axum::Json(before)))
}

/// Reboots a node (a `GET`, as MedStack documents it).
#[utoipa::path(get, path = "/v1/companies/{company_id}/clusters/{cluster_id}/nodes/{node_id}/reboot",
    tag = "compat: medstack", security(("basic" = [])),
    params(("company_id" = String, Path), ("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 202, body = MsNode), (status = 404, body = crate::views::ErrorBody),
        (status = 409, body = crate::views::ErrorBody)))]
pub async fn reboot_node(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((company_id, cluster_id, node_id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, axum::Json<MsNode>)> {
    auth.require(Scope::Write)?;
    own_tenant(&auth, "company", &company_id)?;
    app.reboot_node(&auth.tenant_id, &cluster_id, &node_id, RebootInput::default())
        .await?;
    let n = node_of(&app, &auth.tenant_id, &cluster_id, &node_id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(n)))
}

/// Destroys a node (the primary is switched over first).
#[utoipa::path(delete, path = "/v1/companies/{company_id}/clusters/{cluster_id}/nodes/{node_id}", tag = "compat: medstack",
    security(("basic" = [])), params(("company_id" = String, Path), ("cluster_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 202, body = MsNode), (status = 404, body = crate::views::ErrorBody),
        (status = 409, body = crate::views::ErrorBody)))]
pub async fn delete_node(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((company_id, cluster_id, node_id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, axum::Json<MsNode>)> {
    auth.require(Scope::Write)?;
    own_tenant(&auth, "company", &company_id)?;
    app.remove_node(&auth.tenant_id, &cluster_id, &node_id).await?;
    let n = node_of(&app, &auth.tenant_id, &cluster_id, &node_id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(n)))
}
