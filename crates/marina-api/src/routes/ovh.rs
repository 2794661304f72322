//! OVH RunAbove "Managed Stacks" MySQL API (seed `000_…`) at its own paths
//! under `/1.0`, translated onto Marina's services: a stack is a cluster.
//! Requests are signed as OVH's API signs them (`marina_core::ovh` checks
//! them): `X-Ovh-Application` (an application registered with
//! `POST /v1/ovh-applications` / `marina ovh-app create`), `X-Ovh-Consumer`
//! (a Marina token), `X-Ovh-Timestamp`, `X-Ovh-Signature`. Errors are OVH's
//! `{"errorCode", "httpCode", "message"}` (see `dialect`). Also here: the
//! native routes that manage the applications. See `docs/compat/ovh.md`.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use marina_common::Error;
use marina_common::model::{ClusterStatus, CreateClusterInput, CreateOvhApplicationInput, OvhApplication, Scope};
use marina_core::Marina;
use marina_core::auth::AuthContext;
use marina_core::ovh::{OvhRefusal, SignedRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Json};

/// A request whose OVH signature was checked: the caller and the raw body.
pub struct Signed {
    pub auth: AuthContext,
    pub body: axum::body::Bytes,
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(crate::dialect::ovh_body(status, code, message))).into_response()
}

impl FromRequest<Arc<Marina>> for Signed {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<Marina>) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = crate::extract::body_bytes(body)
            .await
            .map_err(IntoResponse::into_response)?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let url = format!(
            "{}{}",
            super::service::url_base(&parts.headers, parts.extensions.get().copied()),
            parts.uri.path_and_query().map_or("", |p| p.as_str())
        );
        let signed = SignedRequest {
            application: header("x-ovh-application"),
            consumer: header("x-ovh-consumer"),
            timestamp: header("x-ovh-timestamp"),
            signature: header("x-ovh-signature"),
            method: parts.method.as_str(),
            url: &url,
            body: &body,
        };
        match app.ovh_authenticate(signed).await {
            Ok(auth) => {
                if let Some(slot) = parts.extensions.get::<crate::audit::AuditSlot>() {
                    slot.set(&auth);
                }
                Ok(Signed { auth, body })
            }
            Err(r) => {
                tracing::warn!(path = %parts.uri.path(), refusal = ?r, "OVH request refused");
                let refused = !matches!(r, OvhRefusal::Failed(_));
                let mut resp = match r {
                    OvhRefusal::InvalidKey => refusal(StatusCode::FORBIDDEN, "INVALID_KEY", "Invalid application key"),
                    OvhRefusal::QueryTimeOut => refusal(StatusCode::BAD_REQUEST, "QUERY_TIME_OUT", "Query out of time"),
                    OvhRefusal::InvalidSignature => {
                        refusal(StatusCode::BAD_REQUEST, "INVALID_SIGNATURE", "Invalid signature")
                    }
                    OvhRefusal::InvalidCredential => refusal(
                        StatusCode::FORBIDDEN,
                        "INVALID_CREDENTIAL",
                        "This credential does not exist",
                    ),
                    OvhRefusal::Failed(e) => ApiError(e).into_response(),
                };
                if refused {
                    resp.extensions_mut().insert(crate::observe::AuthRefused);
                }
                Err(resp)
            }
        }
    }
}

/// `{"msg": …}`, with what Marina adds to a create (the cluster and its
/// admin credentials, shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct Msg {
    #[schema(example = "cluster created")]
    pub msg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<crate::views::Credentials>,
}

/// Optional body of a stack create (the seed sends none).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StackInput {
    /// Cluster name (default `stack-<random>`).
    pub name: Option<String>,
    /// Node size (default: the catalog's first).
    pub size_id: Option<String>,
    /// Nodes (default 2: a primary and a replica).
    pub nodes: Option<u32>,
}

/// `{"id": …}` in the product list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Product {
    pub id: String,
}

/// `{"products": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Products {
    pub products: Vec<Product>,
}

/// A node of a stack.
#[derive(Debug, Serialize, ToSchema)]
pub struct StackNode {
    pub addr: String,
    pub product_id: String,
    /// An extension: the node's port, id and role.
    pub port: u16,
    pub node_id: String,
    pub role: String,
}

/// A stack.
#[derive(Debug, Serialize, ToSchema)]
pub struct StackView {
    pub active: bool,
    pub nodes: Vec<StackNode>,
    pub product_id: String,
}

/// The server clock, unix seconds (no signature).
#[utoipa::path(get, path = "/1.0/auth/time", tag = "compat: ovh", responses((status = 200, body = i64)))]
pub async fn time() -> axum::Json<i64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    axum::Json(now)
}

/// Creates a stack (a cluster): `{"msg": "cluster created"}`, plus its id and
/// the admin credentials (shown once).
#[utoipa::path(post, path = "/1.0/stackMysql", tag = "compat: ovh", request_body(content = Option<StackInput>),
    responses((status = 200, body = Msg), (status = 400, body = Object), (status = 403, body = Object)))]
pub async fn create(State(app): State<Arc<Marina>>, s: Signed) -> ApiResult<axum::Json<Msg>> {
    s.auth.require(Scope::Write)?;
    let input: StackInput = if s.body.iter().all(u8::is_ascii_whitespace) {
        StackInput::default()
    } else {
        serde_json::from_slice(&s.body).map_err(|e| Error::InvalidRequest(format!("invalid request body: {e}")))?
    };
    let size_id = match input.size_id {
        Some(s) => s,
        None => app
            .sizes
            .first()
            .map(|s| s.id.clone())
            .ok_or_else(|| Error::internal("the size catalog is empty"))?,
    };
    let created = app
        .create_cluster(
            &s.auth.tenant_id,
            CreateClusterInput {
                name: input
                    .name
                    .unwrap_or_else(|| format!("stack-{}", marina_common::ids::random_secret(4))),
                size_id,
                nodes: input.nodes.unwrap_or(2),
                version: None,
                security_group_ids: Vec::new(),
                replication: None,
                restore: None,
                databases: Vec::new(),
                users: Vec::new(),
                placement: None,
            },
        )
        .await?;
    Ok(axum::Json(Msg {
        msg: "cluster created",
        id: Some(created.cluster.id),
        credentials: Some(crate::views::Credentials {
            username: "admin".into(),
            password: created.admin_password,
        }),
    }))
}

/// The stacks: `{"products": [{"id"}]}`.
#[utoipa::path(get, path = "/1.0/stackMysql", tag = "compat: ovh",
    responses((status = 200, body = Products), (status = 403, body = Object)))]
pub async fn list(State(app): State<Arc<Marina>>, s: Signed) -> ApiResult<axum::Json<Products>> {
    s.auth.require(Scope::Read)?;
    let products = app
        .all_clusters(&s.auth.tenant_id)
        .await?
        .into_iter()
        .map(|(c, _)| Product { id: c.id })
        .collect();
    Ok(axum::Json(Products { products }))
}

/// One stack: `active` once the cluster serves, its nodes' addresses.
#[utoipa::path(get, path = "/1.0/stackMysql/{id}", tag = "compat: ovh", params(("id" = String, Path)),
    responses((status = 200, body = StackView), (status = 404, body = Object)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Path(id): Path<String>,
    s: Signed,
) -> ApiResult<axum::Json<StackView>> {
    s.auth.require(Scope::Read)?;
    let (c, nodes) = app.get_cluster(&s.auth.tenant_id, &id).await?;
    Ok(axum::Json(StackView {
        active: matches!(c.status, ClusterStatus::Active | ClusterStatus::Degraded),
        nodes: nodes
            .iter()
            .map(|n| StackNode {
                addr: n.host.clone(),
                product_id: c.id.clone(),
                port: n.port,
                node_id: n.id.clone(),
                role: n.role.to_string(),
            })
            .collect(),
        product_id: c.id,
    }))
}

/// The monitoring status: per node (by id), probe name → result.
#[utoipa::path(get, path = "/1.0/stackMysql/{id}/status", tag = "compat: ovh", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn status(
    State(app): State<Arc<Marina>>,
    Path(id): Path<String>,
    s: Signed,
) -> ApiResult<axum::Json<serde_json::Map<String, serde_json::Value>>> {
    s.auth.require(Scope::Read)?;
    let view = app.cluster_status(&s.auth.tenant_id, &id).await?;
    let mut out = serde_json::Map::new();
    for n in view.nodes {
        let mut probes = match serde_json::to_value(&n.probes) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        probes.insert("role".into(), n.role.as_str().into());
        probes.insert("status".into(), n.status.as_str().into());
        out.insert(n.node_id, serde_json::Value::Object(probes));
    }
    Ok(axum::Json(out))
}

/// Deletes a stack: `{"msg": "cluster deleted"}` (the delete runs on).
#[utoipa::path(delete, path = "/1.0/stackMysql/{id}", tag = "compat: ovh", params(("id" = String, Path)),
    responses((status = 200, body = Msg), (status = 404, body = Object), (status = 409, body = Object)))]
pub async fn delete(State(app): State<Arc<Marina>>, Path(id): Path<String>, s: Signed) -> ApiResult<axum::Json<Msg>> {
    s.auth.require(Scope::Write)?;
    app.delete_cluster(&s.auth.tenant_id, &id).await?;
    Ok(axum::Json(Msg {
        msg: "cluster deleted",
        id: None,
        credentials: None,
    }))
}

/// A new OVH application: its key and, this once, its secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedOvhApplication {
    pub application: OvhApplication,
    pub application_secret: String,
}

marina_common::debug_redacted!(CreatedOvhApplication { application } redact { application_secret });

/// Registers an OVH application (admin scope).
#[utoipa::path(post, path = "/v1/ovh-applications", tag = "compat: ovh", security(("bearer" = [])),
    request_body = CreateOvhApplicationInput,
    responses((status = 201, body = CreatedOvhApplication), (status = 400, body = crate::views::ErrorBody),
        (status = 403, body = crate::views::ErrorBody)))]
pub async fn create_app(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Json(input): Json<CreateOvhApplicationInput>,
) -> ApiResult<(StatusCode, axum::Json<CreatedOvhApplication>)> {
    let (application, application_secret) = app.create_ovh_app(&auth, input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedOvhApplication {
            application,
            application_secret,
        }),
    ))
}

/// The tenant's OVH applications (admin scope; never their secrets).
#[utoipa::path(get, path = "/v1/ovh-applications", tag = "compat: ovh", security(("bearer" = [])),
    responses((status = 200, body = crate::views::OvhApplicationList), (status = 403, body = crate::views::ErrorBody)))]
pub async fn list_apps(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
) -> ApiResult<axum::Json<crate::views::OvhApplicationList>> {
    let data = app.list_ovh_apps(&auth).await?;
    Ok(axum::Json(crate::views::OvhApplicationList::new(data, None)))
}

/// Deletes an OVH application (admin scope).
#[utoipa::path(delete, path = "/v1/ovh-applications/{application_key}", tag = "compat: ovh",
    security(("bearer" = [])), params(("application_key" = String, Path)),
    responses((status = 204), (status = 404, body = crate::views::ErrorBody)))]
pub async fn delete_app(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_ovh_app(&auth, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
