//! HP Cloud RDB for MySQL / OpenStack Trove (seed `001_…`) at its own paths
//! under `/v1.0/{tenant_id}`, translated onto Marina's services: an instance
//! is a cluster, a flavor a node size, security groups and rules are
//! Marina's. `X-Auth-Token` (a Marina token) authenticates; a `tenant_id`
//! other than the token's tenant is 404, like any other tenant's resource.
//! Errors are OpenStack's `{"itemNotFound": {"message", "code"}}` (see
//! `dialect`). See `docs/compat/trove.md`.
//!
//! - `instances`: list, create (the seed's and the newer Trove body), get,
//!   delete, actions (`restart`, `reset-password`).
//! - `flavors`: the catalog with ids 100, 101, … in catalog order (the
//!   default catalog gives the seed's 100–105).
//! - `security_groups`: groups and their rules.

pub mod flavors;
pub mod instances;
pub mod security_groups;

use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::service::url_base;
use crate::transport::Scheme;

/// `{"href", "rel": "self"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TroveLink {
    pub href: String,
    pub rel: &'static str,
}

/// Where a request's links point: `scheme://host/v1.0/{tenant_id}`.
pub struct Base(pub String);

impl Base {
    pub fn new(headers: &HeaderMap, scheme: Option<axum::Extension<Scheme>>, tenant_id: &str) -> Base {
        Base(format!("{}/v1.0/{tenant_id}", url_base(headers, scheme.map(|s| s.0))))
    }

    /// `[{"href": <base>/<kind>/<id>, "rel": "self"}]`.
    pub fn links(&self, kind: &str, id: &str) -> Vec<TroveLink> {
        vec![TroveLink {
            href: format!("{}/{kind}/{id}", self.0),
            rel: "self",
        }]
    }
}
