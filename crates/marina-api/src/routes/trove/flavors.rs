//! Trove flavors: Marina's node sizes with numeric ids, 100 + the size's
//! place in the catalog (the default catalog gives the seed's 100 `xsmall`
//! … 105 `2xlarge`); `ram` in GiB as the seed shows it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use marina_common::Error;
use marina_common::model::Scope;
use marina_common::size::NodeSize;
use marina_core::Marina;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Base, TroveLink};
use crate::error::ApiResult;
use crate::extract::{Auth, own_tenant};
use crate::transport::Scheme;

/// The first flavor id.
const FIRST_ID: usize = 100;

/// A flavor.
#[derive(Debug, Serialize, ToSchema)]
pub struct Flavor {
    pub id: u64,
    /// The id as a string (newer Trove clients read it).
    pub str_id: String,
    pub links: Vec<TroveLink>,
    pub name: String,
    /// GiB.
    #[schema(value_type = f64)]
    pub ram: serde_json::Value,
    pub vcpu: u32,
    /// The same, as newer Trove clients name it.
    pub vcpus: u32,
    /// GiB of disk.
    pub disk: u32,
}

/// `{"flavors": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Flavors {
    pub flavors: Vec<Flavor>,
}

/// `{"flavor": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneFlavor {
    pub flavor: Flavor,
}

/// A flavor's id.
pub fn flavor_id(app: &Marina, size_id: &str) -> String {
    app.sizes
        .iter()
        .position(|s| s.id == size_id)
        .map_or_else(|| size_id.to_string(), |i| (FIRST_ID + i).to_string())
}

/// The size of a flavor reference: an id (`103`), a flavor URL
/// (`…/flavors/103`) or a size name.
pub fn size_of<'a>(app: &'a Marina, reference: &str) -> Result<&'a NodeSize, Error> {
    let last = reference.trim_end_matches('/').rsplit('/').next().unwrap_or(reference);
    let by_id = last
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(FIRST_ID))
        .and_then(|i| app.sizes.get(i));
    by_id
        .or_else(|| app.size(last))
        .ok_or_else(|| Error::not_found("flavor", reference))
}

fn flavor(app: &Marina, base: &Base, s: &NodeSize) -> Flavor {
    let id = flavor_id(app, &s.id);
    let ram = if s.memory.fract() == 0.0 {
        serde_json::Value::from(s.memory as u64)
    } else {
        serde_json::Value::from(s.memory)
    };
    Flavor {
        id: id.parse().unwrap_or_default(),
        str_id: id.clone(),
        links: base.links("flavors", &id),
        name: s.id.clone(),
        ram,
        vcpu: s.vcpu,
        vcpus: s.vcpu,
        disk: s.disk_gib,
    }
}

fn all(app: &Marina, base: &Base) -> Flavors {
    Flavors {
        flavors: app.sizes.iter().map(|s| flavor(app, base, s)).collect(),
    }
}

/// All flavors.
#[utoipa::path(get, path = "/v1.0/{tenant_id}/flavors", tag = "compat: trove", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), responses((status = 200, body = Flavors), (status = 401, body = Object)))]
pub async fn list(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<Flavors>> {
    auth.require(Scope::Read)?;
    own_tenant(&auth, "tenant", &tenant_id)?;
    Ok(axum::Json(all(&app, &Base::new(&headers, scheme, &tenant_id))))
}

/// All flavors, in detail (the same fields).
#[utoipa::path(get, path = "/v1.0/{tenant_id}/flavors/detail", tag = "compat: trove", security(("bearer" = [])),
    params(("tenant_id" = String, Path)), responses((status = 200, body = Flavors), (status = 401, body = Object)))]
pub async fn detail(
    state: State<Arc<Marina>>,
    auth: Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    path: Path<String>,
) -> ApiResult<axum::Json<Flavors>> {
    list(state, auth, headers, scheme, path).await
}

/// One flavor (by id or name).
#[utoipa::path(get, path = "/v1.0/{tenant_id}/flavors/{flavor_id}", tag = "compat: trove", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("flavor_id" = String, Path)),
    responses((status = 200, body = OneFlavor), (status = 404, body = Object)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    headers: HeaderMap,
    scheme: Option<axum::Extension<Scheme>>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<OneFlavor>> {
    auth.require(Scope::Read)?;
    own_tenant(&auth, "tenant", &tenant_id)?;
    let size = size_of(&app, &id)?;
    Ok(axum::Json(OneFlavor {
        flavor: flavor(&app, &Base::new(&headers, scheme, &tenant_id), size),
    }))
}
