//! Trove instances: Marina clusters. Create takes the seed's body (`name`,
//! `flavorRef` as id or URL, `port`, `dbtype`) and the newer Trove one
//! (`volume`, `databases`, `users`, `datastore`, `access`); `building` until
//! the cluster serves, then `running` with its `hostname` (the writer
//! endpoint). Actions: `restart` (the rolling reboot), `reset-password`,
//! `resize` (`{"flavorRef"}`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use marina_common::Error;
use marina_common::model::{
    ClusterRecord, ClusterStatus, CreateClusterInput, CreateDatabaseInput, CreateRuleInput, CreateSecurityGroupInput,
    CreateUserInput, OperationType, Scope,
};
use marina_core::Marina;
use marina_core::auth::AuthContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::flavors::{flavor_id, size_of};
use super::{Base, TroveLink};
use crate::error::ApiResult;
use crate::extract::{Auth, Json, own_tenant};
use crate::transport::Scheme;

/// A flavor reference in an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlavorRef {
    pub id: String,
    pub links: Vec<TroveLink>,
}

/// A security group reference in an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRef {
    pub id: String,
    pub links: Vec<TroveLink>,
}

/// `{"type", "version"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Datastore {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: String,
}

/// `{"size"}` in GiB.
#[derive(Debug, Serialize, ToSchema)]
pub struct Volume {
    pub size: u32,
}

/// `{"username", "password"}` (in the create answer only).
#[derive(Serialize, ToSchema)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

marina_common::debug_redacted!(Credential { username } redact { password });

/// An instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instance {
    pub id: String,
    pub name: String,
    /// `building`, `running`, `rebooting`, `resizing`, `deleting` or `error`.
    pub status: String,
    pub created: String,
    pub updated: String,
    pub flavor: FlavorRef,
    /// The writer endpoint's address once `running`, else empty.
    pub hostname: String,
    pub port: u16,
    pub links: Vec<TroveLink>,
    pub security_groups: Vec<GroupRef>,
    pub datastore: Datastore,
    pub volume: Volume,
    /// The writer endpoint's address once `running`.
    pub ip: Vec<String>,
    pub region: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// `{"instance": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneInstance {
    pub instance: Instance,
}

/// `{"instances": […], "links": []}` (never paged).
#[derive(Debug, Serialize, ToSchema)]
pub struct Instances {
    pub instances: Vec<Instance>,
    pub links: Vec<TroveLink>,
}

async fn instance(app: &Marina, base: &Base, c: &ClusterRecord) -> Result<Instance, Error> {
    let running_op = match c.status {
        ClusterStatus::Creating | ClusterStatus::Deleting | ClusterStatus::Deleted | ClusterStatus::Failed => None,
        _ => app.running_operation(&c.id).await?.map(|o| o.op_type),
    };
    // A cluster turns active only once its endpoints are routed, so
    // `running` (a hostname to connect to) is safe to act on at once.
    let status = match (c.status, running_op) {
        (ClusterStatus::Creating, _) => "building",
        (ClusterStatus::Deleting | ClusterStatus::Deleted, _) => "deleting",
        (ClusterStatus::Failed, _) => "error",
        (_, Some(OperationType::RebootCluster | OperationType::RebootNode)) => "rebooting",
        (_, Some(OperationType::ResizeCluster | OperationType::ResizeNode)) => "resizing",
        _ => "running",
    };
    let serving = c.endpoints_ready && status != "building";
    let size = app.size(&c.size_id);
    let flavor = flavor_id(app, &c.size_id);
    let groups = app.cluster_security_group_ids(&c.id).await?;
    Ok(Instance {
        id: c.id.clone(),
        name: c.name.clone(),
        status: status.into(),
        created: c.created_at.clone(),
        updated: c.updated_at.clone(),
        flavor: FlavorRef {
            links: base.links("flavors", &flavor),
            id: flavor,
        },
        hostname: if serving { c.writer_host.clone() } else { String::new() },
        port: c.endpoint_port,
        links: base.links("instances", &c.id),
        security_groups: groups
            .into_iter()
            .map(|id| GroupRef {
                links: base.links("security-groups", &id),
                id,
            })
            .collect(),
        datastore: Datastore {
            kind: "mariadb",
            version: c.version.clone(),
        },
        volume: Volume {
            size: size.map_or(0, |s| s.disk_gib),
        },
        ip: if serving {
            vec![c.writer_host.clone()]
        } else {
            Vec::new()
        },
        region: "marina",
        credential: None,
    })
}

/// The tenant's instances (never paged).
#[utoipa::path(get, path = "/v1.0/{tenant_id}/instances", tag = "compat: trove", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), responses((status = 200, body = Instances), (status = 401, body = Object)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<Instances>> {
    auth.require(Scope::Read)?;
    own_tenant(&auth, "tenant", &tenant_id)?;
    let base = Base::new(&headers, scheme, &tenant_id);
    let mut instances = Vec::new();
    for (c, _) in app.all_clusters(&auth.tenant_id).await? {
        instances.push(instance(&app, &base, &c).await?);
    }
    Ok(axum::Json(Instances {
        instances,
        links: Vec::new(),
    }))
}

/// The same list (`GET …/instances/detail`, as newer clients ask).
#[utoipa::path(get, path = "/v1.0/{tenant_id}/instances/detail", tag = "compat: trove", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), responses((status = 200, body = Instances), (status = 401, body = Object)))]
pub async fn detail(
    state: State<Arc<Marina>>,
    auth: Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    path: Path<String>,
) -> ApiResult<axum::Json<Instances>> {
    list(state, auth, headers, scheme, path).await
}

/// `{"name", "version"}` of the seed's `dbtype` and Trove's `datastore`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DbType {
    #[serde(alias = "type")]
    pub name: Option<String>,
    pub version: Option<String>,
}

/// `{"name"}` in Trove's lists of databases.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NamedDatabase {
    pub name: String,
}

/// A user of a Trove create.
#[derive(Deserialize, ToSchema)]
pub struct TroveUser {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub databases: Vec<NamedDatabase>,
}

marina_common::debug_redacted!(TroveUser { name, host, databases } redact { password });

/// `{"is_public", "allowed_cidrs"}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Access {
    #[serde(default)]
    pub is_public: Option<bool>,
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
}

/// The instance of a create (fields Marina has no use for, such as `nics`
/// or `availability_zone`, are accepted and ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct InstanceInput {
    pub name: String,
    /// A flavor id (`103`) or URL (`…/flavors/103`).
    #[serde(rename = "flavorRef")]
    #[schema(value_type = String)]
    pub flavor_ref: serde_json::Value,
    /// Accepted; the instance listens on Marina's endpoint port.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub port: Option<serde_json::Value>,
    #[serde(default)]
    pub dbtype: Option<DbType>,
    #[serde(default)]
    pub datastore: Option<DbType>,
    /// Accepted; the disk comes with the flavor.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub volume: Option<serde_json::Value>,
    #[serde(default)]
    pub databases: Vec<NamedDatabase>,
    #[serde(default)]
    pub users: Vec<TroveUser>,
    /// `allowed_cidrs` become a security group of the instance.
    #[serde(default)]
    pub access: Option<Access>,
    /// Marina's extension: nodes in the cluster (default 1).
    #[serde(default)]
    pub nodes: Option<u32>,
}

/// `{"instance": …}` of a create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateBody {
    pub instance: InstanceInput,
}

/// Marina's name for a Trove name: lower case, `_` and spaces as `-`, a
/// letter first (`My_Instance` → `my-instance`).
pub fn marina_name(name: &str) -> String {
    let mut out: String = name
        .trim()
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            '_' | ' ' | '.' => '-',
            c => c,
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "i-");
    }
    // At most 63 characters (not bytes: a name is any text until validated).
    out.chars().take(63).collect()
}

/// A security group admitting `access.allowed_cidrs` on the endpoint port
/// (none without CIDRs; creating it needs the `admin` scope).
async fn access_group(app: &Marina, auth: &AuthContext, name: &str, access: &Access) -> Result<Option<String>, Error> {
    if access.allowed_cidrs.is_empty() {
        return Ok(None);
    }
    for cidr in &access.allowed_cidrs {
        marina_core::security_groups::validate_cidr(cidr)?;
    }
    let sg = app
        .create_security_group(
            auth,
            CreateSecurityGroupInput {
                // Unique: a group stays when its instance is deleted.
                name: format!(
                    "trove-{}-{}",
                    name.get(..48).unwrap_or(name),
                    marina_common::ids::random_secret(3)
                ),
                description: Some(format!("allowed_cidrs of Trove instance {name}")),
            },
        )
        .await?;
    let port = u32::from(app.config.endpoints.port);
    for cidr in &access.allowed_cidrs {
        let rule = CreateRuleInput {
            cidr: cidr.clone(),
            from_port: port,
            to_port: port,
        };
        if let Err(e) = app.add_rule(auth, &sg.id, rule).await {
            let _ = app.delete_security_group(auth, &sg.id).await;
            return Err(e);
        }
    }
    Ok(Some(sg.id))
}

/// Creates an instance: 201, `building`, with the admin `credential` (the
/// only time it is shown).
#[utoipa::path(post, path = "/v1.0/{tenant_id}/instances", tag = "compat: trove", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), request_body = CreateBody,
    responses((status = 201, body = OneInstance), (status = 400, body = Object), (status = 404, body = Object)))]
pub async fn create(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    Path(tenant_id): Path<String>,
    Json(body): Json<CreateBody>,
) -> ApiResult<(StatusCode, axum::Json<OneInstance>)> {
    auth.require(Scope::Write)?;
    own_tenant(&auth, "tenant", &tenant_id)?;
    let i = body.instance;
    let flavor = match &i.flavor_ref {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(Error::InvalidRequest("flavorRef must be a flavor id or URL".into()).into()),
    };
    let size = size_of(&app, &flavor).map_err(|_| Error::InvalidRequest(format!("unknown flavorRef {flavor:?}")))?;
    let kind = i
        .datastore
        .as_ref()
        .or(i.dbtype.as_ref())
        .and_then(|d| d.name.as_deref());
    if let Some(k) = kind.filter(|k| !k.eq_ignore_ascii_case("mysql") && !k.eq_ignore_ascii_case("mariadb")) {
        return Err(
            Error::InvalidRequest(format!("datastore {k:?} is not served; Marina serves mysql (MariaDB)")).into(),
        );
    }
    let name = marina_name(&i.name);
    let input = CreateClusterInput {
        name: name.clone(),
        size_id: size.id.clone(),
        nodes: i.nodes.unwrap_or(1),
        version: None,
        security_group_ids: Vec::new(),
        replication: None,
        restore: None,
        databases: i
            .databases
            .into_iter()
            .map(|d| CreateDatabaseInput { name: d.name })
            .collect(),
        users: i
            .users
            .into_iter()
            .map(|u| CreateUserInput {
                name: u.name,
                password: Some(u.password),
                databases: u.databases.into_iter().map(|d| d.name).collect(),
                host: u.host,
            })
            .collect(),
        placement: None,
    };
    let group = access_group(&app, &auth, &name, &i.access.unwrap_or_default()).await?;
    let input = CreateClusterInput {
        security_group_ids: group.iter().cloned().collect(),
        ..input
    };
    let created = match app.create_cluster(&auth.tenant_id, input).await {
        Ok(c) => c,
        Err(e) => {
            if let Some(g) = group {
                let _ = app.delete_security_group(&auth, &g).await;
            }
            return Err(e.into());
        }
    };
    let base = Base::new(&headers, scheme, &tenant_id);
    let mut view = instance(&app, &base, &created.cluster).await?;
    view.credential = Some(Credential {
        username: "admin".into(),
        password: created.admin_password,
    });
    Ok((StatusCode::CREATED, axum::Json(OneInstance { instance: view })))
}

/// One instance.
#[utoipa::path(get, path = "/v1.0/{tenant_id}/instances/{instance_id}", tag = "compat: trove",
    security(("bearer" = [])), params(("tenant_id" = String, Path), ("instance_id" = String, Path)),
    responses((status = 200, body = OneInstance), (status = 404, body = Object)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<OneInstance>> {
    auth.require(Scope::Read)?;
    own_tenant(&auth, "tenant", &tenant_id)?;
    let c = app.cluster(&auth.tenant_id, &id).await?;
    let base = Base::new(&headers, scheme, &tenant_id);
    Ok(axum::Json(OneInstance {
        instance: instance(&app, &base, &c).await?,
    }))
}

/// Deletes an instance: 204 (the delete runs on).
#[utoipa::path(delete, path = "/v1.0/{tenant_id}/instances/{instance_id}", tag = "compat: trove",
    security(("bearer" = [])), params(("tenant_id" = String, Path), ("instance_id" = String, Path)),
    responses((status = 204), (status = 404, body = Object), (status = 409, body = Object)))]
pub async fn delete(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::Write)?;
    own_tenant(&auth, "tenant", &tenant_id)?;
    app.delete_cluster(&auth.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An instance action: exactly one of `restart`, `reset-password`, `resize`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub restart: Option<serde_json::Value>,
    #[serde(default, rename = "reset-password")]
    #[schema(value_type = Option<Object>)]
    pub reset_password: Option<serde_json::Value>,
    #[serde(default)]
    pub resize: Option<ResizeAction>,
}

/// `{"flavorRef"}` of a resize.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResizeAction {
    #[serde(rename = "flavorRef")]
    #[schema(value_type = String)]
    pub flavor_ref: serde_json::Value,
}

/// `{"password"}` of a reset.
#[derive(Serialize, ToSchema)]
pub struct NewPassword {
    pub password: String,
}

marina_common::debug_redacted!(NewPassword {  } redact { password });

/// `restart` → 204 (a rolling reboot), `reset-password` → 200
/// `{"password"}` (shown once), `resize` → 202 (a rolling resize).
#[utoipa::path(post, path = "/v1.0/{tenant_id}/instances/{instance_id}/action", tag = "compat: trove",
    security(("bearer" = [])), params(("tenant_id" = String, Path), ("instance_id" = String, Path)),
    request_body = ActionBody,
    responses((status = 200, body = NewPassword), (status = 202), (status = 204), (status = 400, body = Object),
        (status = 404, body = Object), (status = 409, body = Object)))]
pub async fn action(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((tenant_id, id)): Path<(String, String)>,
    Json(body): Json<ActionBody>,
) -> ApiResult<Response> {
    auth.require(Scope::Write)?;
    own_tenant(&auth, "tenant", &tenant_id)?;
    match (body.restart, body.reset_password, body.resize) {
        (Some(_), None, None) => {
            app.reboot_cluster(&auth.tenant_id, &id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (None, Some(_), None) => {
            let password = app.reset_admin_password(&auth.tenant_id, &id).await?;
            Ok(axum::Json(NewPassword { password }).into_response())
        }
        (None, None, Some(r)) => {
            let flavor = match &r.flavor_ref {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let size =
                size_of(&app, &flavor).map_err(|_| Error::InvalidRequest(format!("unknown flavorRef {flavor:?}")))?;
            app.resize_cluster(&auth.tenant_id, &id, &size.id).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => Err(Error::InvalidRequest("give exactly one action: restart, reset-password or resize".into()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::marina_name;

    #[test]
    fn trove_names_become_marina_names() {
        assert_eq!(marina_name("My_Instance"), "my-instance");
        assert_eq!(marina_name("My_2nd_Instance"), "my-2nd-instance");
        assert_eq!(marina_name("2fast"), "i-2fast");
        assert_eq!(marina_name(&"a".repeat(80)).len(), 63);
        assert!(marina_common::ids::validate_name(&marina_name("Orders DB.v2")).is_ok());
        // Multi-byte characters: cut at a character, never inside one (this
        // panicked), and the result is then refused by validation.
        let long = "é".repeat(40);
        assert_eq!(marina_name(&long).chars().count(), 42);
        assert_eq!(marina_name(&"é".repeat(80)).chars().count(), 63);
        assert!(marina_common::ids::validate_name(&marina_name(&long)).is_err());
    }
}
