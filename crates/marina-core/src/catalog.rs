//! Databases and users inside a cluster (Trove's API), and the live views of
//! a node (process list, variables, status variables).
//!
//! Rules:
//! - The cluster is looked up first (404 for another tenant's), then names
//!   are validated by `marina_engine::catalog` before any SQL exists (400
//!   `invalid_request`); the statements run over the management
//!   connection on the primary and replicate to the replicas.
//! - These calls are synchronous: each is one atomic statement (or a
//!   `CREATE USER` with its grants) on the primary, with nothing to resume
//!   after a crash — a retried request finds the object (409) or not. They are
//!   audited like every mutating call, and allowed while another operation
//!   runs, as long as the primary answers.
//! - A generated password is shown once in the answer and never stored.

use marina_common::model::*;
use marina_common::{Error, ids};
use marina_engine::AdminError;
use marina_engine::catalog::{self, NodeView};

use crate::Marina;
use crate::operations::admin_err;

/// Cluster statuses in which the primary takes catalog changes.
const OPEN: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded, ClusterStatus::Updating];

// MariaDB error numbers.
const ER_DB_CREATE_EXISTS: u16 = 1007;
const ER_DB_DROP_EXISTS: u16 = 1008;
const ER_CANNOT_USER: u16 = 1396;

/// The databases and accounts of a cluster create, validated (400 before
/// anything exists); `None` when there are none. Initial accounts need their
/// password: it is kept only as a hash, so it could not be shown later.
pub(crate) fn initial_catalog(input: &CreateClusterInput) -> Result<Option<InitialCatalog>, Error> {
    if input.databases.is_empty() && input.users.is_empty() {
        return Ok(None);
    }
    if input.restore.is_some() {
        return Err(Error::InvalidRequest(
            "databases and users cannot be given with restore: the data comes from the backup".into(),
        ));
    }
    let mut databases = Vec::new();
    for d in &input.databases {
        catalog::validate_database(&d.name).map_err(Error::InvalidRequest)?;
        databases.push(d.name.clone());
    }
    let mut users = Vec::new();
    for u in &input.users {
        catalog::validate_user(&u.name).map_err(Error::InvalidRequest)?;
        let host = u.host.clone().unwrap_or_else(|| "%".into());
        catalog::validate_host(&host).map_err(Error::InvalidRequest)?;
        for db in &u.databases {
            catalog::validate_database(db).map_err(Error::InvalidRequest)?;
        }
        let password = u.password.as_deref().ok_or_else(|| {
            Error::InvalidRequest(format!(
                "user {}: a password is required when creating a cluster",
                u.name
            ))
        })?;
        catalog::validate_password(password).map_err(Error::InvalidRequest)?;
        users.push(InitialUser {
            name: u.name.clone(),
            host,
            password_hash: marina_engine::users::native_password_hash(password),
            databases: u.databases.clone(),
        });
    }
    Ok(Some(InitialCatalog { databases, users }))
}

impl Marina {
    /// Creates a cluster's initial databases and accounts on its primary
    /// (the create operation's `create_catalog` step; idempotent: what
    /// exists already is kept).
    pub(crate) async fn create_initial_catalog(
        &self,
        addr: &marina_engine::NodeAddr,
        initial: &InitialCatalog,
    ) -> Result<(), Error> {
        for db in &initial.databases {
            match self
                .admin
                .run_statements(addr, &[catalog::create_database_sql(db)])
                .await
            {
                Ok(())
                | Err(AdminError::Refused {
                    code: ER_DB_CREATE_EXISTS,
                    ..
                }) => {}
                Err(e) => return Err(admin_err(e)),
            }
        }
        for u in &initial.users {
            let stmts = catalog::create_user_hashed_sql(&u.name, &u.host, &u.password_hash, &u.databases);
            match self.admin.run_statements(addr, &stmts).await {
                Ok(())
                | Err(AdminError::Refused {
                    code: ER_CANNOT_USER, ..
                }) => {}
                Err(e) => return Err(admin_err(e)),
            }
        }
        Ok(())
    }

    /// The primary's management address of a cluster that takes changes.
    async fn catalog_primary(&self, tenant_id: &str, cluster_id: &str) -> Result<marina_engine::NodeAddr, Error> {
        Ok(self.catalog_target(tenant_id, cluster_id).await?.2)
    }

    /// A cluster that takes changes, its secrets and its primary's
    /// management address.
    async fn catalog_target(
        &self,
        tenant_id: &str,
        cluster_id: &str,
    ) -> Result<(ClusterRecord, ClusterSecrets, marina_engine::NodeAddr), Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        if !OPEN.contains(&c.status) {
            return Err(Error::Conflict(format!(
                "cluster {} is {}; databases and users are managed in a serving cluster",
                c.name, c.status
            )));
        }
        let nodes = self.store.list_nodes(&c.id).await?;
        let p = nodes
            .iter()
            .find(|n| n.role == NodeRole::Primary)
            .ok_or_else(|| Error::Unavailable("the cluster has no primary".into()))?;
        let secrets = self.cluster_secrets(&c)?;
        let addr = self.mgmt_addr(p, &secrets);
        Ok((c, secrets, addr))
    }

    /// `POST …/databases`.
    pub async fn create_database(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        input: CreateDatabaseInput,
    ) -> Result<DatabaseView, Error> {
        let addr = self.catalog_primary(tenant_id, cluster_id).await?;
        catalog::validate_database(&input.name).map_err(Error::InvalidRequest)?;
        self.admin
            .run_statements(&addr, &[catalog::create_database_sql(&input.name)])
            .await
            .map_err(|e| match e {
                AdminError::Refused { code, .. } if code == ER_DB_CREATE_EXISTS => {
                    Error::Conflict(format!("database {} already exists", input.name))
                }
                other => admin_err(other),
            })?;
        Ok(DatabaseView {
            name: input.name,
            object: "database",
        })
    }

    /// `GET …/databases`.
    pub async fn list_databases(&self, tenant_id: &str, cluster_id: &str) -> Result<Vec<DatabaseView>, Error> {
        let addr = self.catalog_primary(tenant_id, cluster_id).await?;
        let rows = self
            .admin
            .rows(&addr, catalog::LIST_DATABASES_SQL)
            .await
            .map_err(admin_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(|(_, v)| v))
            .map(|name| DatabaseView {
                name,
                object: "database",
            })
            .collect())
    }

    /// `DELETE …/databases/{name}`.
    pub async fn delete_database(&self, tenant_id: &str, cluster_id: &str, name: &str) -> Result<(), Error> {
        let addr = self.catalog_primary(tenant_id, cluster_id).await?;
        catalog::validate_database(name).map_err(Error::InvalidRequest)?;
        self.admin
            .run_statements(&addr, &[catalog::drop_database_sql(name)])
            .await
            .map_err(|e| match e {
                AdminError::Refused { code, .. } if code == ER_DB_DROP_EXISTS => Error::not_found("database", name),
                other => admin_err(other),
            })
    }

    /// `POST …/users`: the account and the password (generated when absent,
    /// shown only here).
    pub async fn create_user(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        input: CreateUserInput,
    ) -> Result<(UserView, String), Error> {
        let addr = self.catalog_primary(tenant_id, cluster_id).await?;
        catalog::validate_user(&input.name).map_err(Error::InvalidRequest)?;
        let host = input.host.unwrap_or_else(|| "%".into());
        catalog::validate_host(&host).map_err(Error::InvalidRequest)?;
        for db in &input.databases {
            catalog::validate_database(db).map_err(Error::InvalidRequest)?;
        }
        let password = match input.password {
            Some(p) => {
                catalog::validate_password(&p).map_err(Error::InvalidRequest)?;
                p
            }
            None => ids::random_password(24),
        };
        let stmts = catalog::create_user_sql(&input.name, &host, &password, &input.databases);
        self.admin.run_statements(&addr, &stmts).await.map_err(|e| match e {
            AdminError::Refused { code, .. } if code == ER_CANNOT_USER => {
                Error::Conflict(format!("user {}@{host} already exists", input.name))
            }
            other => admin_err(other),
        })?;
        let mut databases = input.databases;
        databases.sort();
        databases.dedup();
        Ok((
            UserView {
                name: input.name,
                object: "user",
                host,
                databases,
            },
            password,
        ))
    }

    /// `GET …/users`: the customer's accounts (not Marina's, not `admin`).
    pub async fn list_users(&self, tenant_id: &str, cluster_id: &str) -> Result<Vec<UserView>, Error> {
        let addr = self.catalog_primary(tenant_id, cluster_id).await?;
        self.users_at(&addr).await
    }

    /// The customer's accounts on the node at `addr`.
    async fn users_at(&self, addr: &marina_engine::NodeAddr) -> Result<Vec<UserView>, Error> {
        let rows = self
            .admin
            .rows(addr, &catalog::list_users_sql())
            .await
            .map_err(admin_err)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut v = r.into_iter().map(|(_, v)| v.unwrap_or_default());
                let name = v.next().unwrap_or_default();
                let host = v.next().unwrap_or_default();
                let databases = v
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(catalog::db_from_grant_pattern)
                    .collect();
                UserView {
                    name,
                    object: "user",
                    host,
                    databases,
                }
            })
            .collect())
    }

    /// `DELETE …/users/{name}` (`host`: that account only; default every
    /// account of that name).
    pub async fn delete_user(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        name: &str,
        host: Option<&str>,
    ) -> Result<(), Error> {
        let addr = self.catalog_primary(tenant_id, cluster_id).await?;
        catalog::validate_user(name).map_err(Error::InvalidRequest)?;
        if let Some(h) = host {
            catalog::validate_host(h).map_err(Error::InvalidRequest)?;
        }
        let accounts: Vec<String> = self
            .users_at(&addr)
            .await?
            .into_iter()
            .filter(|u| u.name == name && host.is_none_or(|h| h == u.host))
            .map(|u| u.host)
            .collect();
        if accounts.is_empty() {
            return Err(Error::not_found("user", name));
        }
        let stmts: Vec<String> = accounts.iter().map(|h| catalog::drop_user_sql(name, h)).collect();
        self.admin.run_statements(&addr, &stmts).await.map_err(|e| match e {
            AdminError::Refused { code, .. } if code == ER_CANNOT_USER => Error::not_found("user", name),
            other => admin_err(other),
        })
    }

    /// `POST …/reset-password`: a new password for the customer's `admin`
    /// account, returned once. The sealed hash is stored first (every node
    /// start applies it), then the primary changes the account, which
    /// replicates.
    pub async fn reset_admin_password(&self, tenant_id: &str, cluster_id: &str) -> Result<String, Error> {
        let (c, mut secrets, addr) = self.catalog_target(tenant_id, cluster_id).await?;
        let password = ids::random_password(24);
        secrets.admin_hash = marina_engine::users::native_password_hash(&password);
        self.store_cluster_secrets(&c.id, &secrets).await?;
        self.admin
            .run_statements(&addr, &[catalog::set_admin_password_sql(&secrets.admin_hash)])
            .await
            .map_err(admin_err)?;
        Ok(password)
    }

    /// `GET …/nodes/{node_id}/processlist|variables|status-variables`: rows
    /// read live from the node.
    pub async fn node_live_view(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        node_id: &str,
        view: NodeView,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let node = self.cluster_node(&c, node_id).await?;
        let addr = self.mgmt_addr(&node, &self.cluster_secrets(&c)?);
        let rows = self.admin.rows(&addr, view.sql()).await.map_err(admin_err)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|(k, v)| {
                        (
                            k.to_lowercase(),
                            v.map_or(serde_json::Value::Null, serde_json::Value::String),
                        )
                    })
                    .collect()
            })
            .collect())
    }
}
