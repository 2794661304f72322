//! The storage layer: the `Store` trait every service talks to, and its SQLite
//! implementation. All SQL of Marina lives in this crate.
//!
//! Rules:
//! - Writes that change a cluster are guarded: they name the statuses the caller
//!   expects, and "someone else got there first" is `Ok(None)` / `Ok(false)`, not an
//!   error. Every guarded write bumps the cluster's `generation`.
//! - Methods that take a `tenant_id` only ever see that tenant's rows; a foreign id
//!   behaves exactly like a missing one.
//! - The trait has no SQLite-specific types, so a PostgreSQL backend can be added
//!   without touching the services (`$n` placeholders already work on both).

mod error;
mod sqlite;

pub use error::StoreError;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use marina_common::model::*;

/// A write the monitor makes from a plan (`NodeStore::monitor_write`): each
/// names what the monitor saw, and lands only if that still holds.
#[derive(Debug, Clone, Copy)]
pub enum MonitorWrite<'a> {
    /// A node's status, from `from` to `to`.
    NodeStatus {
        node_id: &'a str,
        role: NodeRole,
        from: NodeStatus,
        to: NodeStatus,
    },
    /// A node is `failed`, with its reason.
    FailNode {
        node_id: &'a str,
        role: NodeRole,
        reason: &'a str,
    },
    /// A rejoined old primary's rejoin limit (and status reason) is cleared.
    ClearRejoinLimit { node_id: &'a str, role: NodeRole },
    /// An old primary's data-path fence is lifted.
    Unfence { node_id: &'a str, role: NodeRole },
    /// The cluster's status (one of the serving ones) becomes `to`.
    ClusterStatus { to: ClusterStatus },
}

/// A page of a list, with the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Paging parameters (already validated by the caller).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub limit: u32,
    pub cursor: Option<&'a str>,
}

/// Every item of a paged list: `fetch` is called with each page's cursor
/// (`None` first) and asked for `PAGE_ALL` items, until the last page.
pub async fn all_pages<T, E, F, Fut>(mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, E>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = fetch(cursor).await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// The page size `all_pages` callers ask for.
pub const PAGE_ALL: u32 = 500;

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Marina persists: one trait per resource (so a backend is written
/// one file per resource), gathered in `Store`. Bring the traits into scope with
/// `use marina_store::prelude::*`.
pub trait Store:
    TenantStore
    + ClusterStore
    + NodeStore
    + OperationStore
    + EventStore
    + SecurityGroupStore
    + AuditStore
    + BackupStore
    + HostStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: TenantStore
        + ClusterStore
        + NodeStore
        + OperationStore
        + EventStore
        + SecurityGroupStore
        + AuditStore
        + BackupStore
        + HostStore
        + Send
        + Sync
        + 'static
{
}

/// The store traits, for `use marina_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        AuditStore, BackupStore, ClusterStore, EventStore, HostStore, NodeStore, OperationStore, SecurityGroupStore,
        Store, TenantStore,
    };
}

/// What a token revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    Revoked,
    /// No live token of the tenant has that id.
    NotFound,
    /// It is the tenant's last live admin token: revoking it would leave no
    /// way to manage the tenant (nothing changed).
    LastAdmin,
}

/// Tenants and API tokens.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Whether no tenant exists yet (first start).
    async fn is_empty(&self) -> StoreResult<bool>;
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn get_tenant(&self, id: &str) -> StoreResult<Option<Tenant>>;
    /// Every tenant, oldest first.
    async fn list_tenants(&self, page: PageRequest<'_>) -> StoreResult<Page<Tenant>>;
    async fn create_token(&self, token: &TokenRecord, secret_hash: &str) -> StoreResult<()>;
    /// The live (not revoked) token with this secret hash.
    async fn find_token(&self, secret_hash: &str) -> StoreResult<Option<TokenRecord>>;
    async fn touch_token(&self, id: &str, at: &str) -> StoreResult<()>;
    /// The tenant's live tokens, oldest first.
    async fn list_tokens(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<TokenRecord>>;
    /// Revokes a live token of the tenant, unless it is the tenant's last
    /// live token with the `admin` scope (checked in the same write).
    async fn revoke_token(&self, tenant_id: &str, id: &str, at: &str) -> StoreResult<Revoke>;
    /// The operator's tenant (the one `bootstrap` created), if any.
    async fn operator_tenant(&self) -> StoreResult<Option<Tenant>>;
    /// Adds an OVH application with its sealed secret.
    async fn create_ovh_app(&self, app: &OvhApplication, secret_sealed: &str) -> StoreResult<()>;
    /// An OVH application by key, with its sealed secret (any tenant: the key
    /// names the tenant).
    async fn find_ovh_app(&self, app_key: &str) -> StoreResult<Option<(OvhApplication, String)>>;
    /// The tenant's OVH applications, oldest first.
    async fn list_ovh_apps(&self, tenant_id: &str) -> StoreResult<Vec<OvhApplication>>;
    /// Deletes one of the tenant's OVH applications; false when there is none.
    async fn delete_ovh_app(&self, tenant_id: &str, app_key: &str) -> StoreResult<bool>;
}

/// Clusters; every write that changes one is guarded.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Inserts a new cluster, its nodes, its security-group attachments and its
    /// create operation in one transaction. A taken name, endpoint address or port is `Conflict`.
    async fn create_cluster(
        &self,
        cluster: &ClusterRecord,
        nodes: &[NodeRecord],
        op: &Operation,
        security_group_ids: &[String],
    ) -> StoreResult<()>;
    /// A cluster that is not deleted; `tenant_id: None` is for background tasks.
    async fn get_cluster(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<ClusterRecord>>;
    async fn get_cluster_by_name(&self, tenant_id: &str, name: &str) -> StoreResult<Option<ClusterRecord>>;
    async fn list_clusters(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<ClusterRecord>>;
    /// Every cluster that is not deleted, all tenants (reconcilers).
    async fn live_clusters(&self) -> StoreResult<Vec<ClusterRecord>>;
    /// Guarded status change: applies only when the current status is one of
    /// `expected`. Returns the updated cluster, or `None` if the guard failed.
    async fn update_cluster_status(
        &self,
        id: &str,
        expected: &[ClusterStatus],
        status: ClusterStatus,
        endpoints_ready: Option<bool>,
    ) -> StoreResult<Option<ClusterRecord>>;
    /// Guarded start of an operation on a cluster: its status becomes `status`
    /// and `op` is inserted in one transaction, unless the current status is not
    /// one of `expected` (then `false`).
    async fn begin_cluster_operation(
        &self,
        id: &str,
        expected: &[ClusterStatus],
        status: ClusterStatus,
        op: &Operation,
    ) -> StoreResult<bool>;
    /// Guarded start of adding a node: like `begin_cluster_operation`, and
    /// `node` is inserted (the cluster's `node_count` follows) in the same
    /// transaction. A taken port is `Conflict`.
    async fn begin_add_node(
        &self,
        id: &str,
        expected: &[ClusterStatus],
        status: ClusterStatus,
        node: &NodeRecord,
        op: &Operation,
    ) -> StoreResult<bool>;
    /// Sets a cluster's size (the size new nodes get).
    async fn set_cluster_size(&self, id: &str, size_id: &str) -> StoreResult<()>;
    /// Replaces a cluster's sealed secrets (a reset admin password).
    async fn set_cluster_secrets(&self, id: &str, secrets_enc: &str) -> StoreResult<()>;
    /// Removes a node row (its port is free again); `node_count` follows.
    async fn remove_node(&self, id: &str, node_id: &str) -> StoreResult<()>;
    /// Holds or releases writes at the writer endpoint (switchover).
    async fn set_writer_paused(&self, id: &str, paused: bool) -> StoreResult<()>;
    /// Sets a cluster's failover mode.
    async fn set_failover_mode(&self, id: &str, mode: FailoverMode) -> StoreResult<()>;
    /// Sets whether diverged replicas are reseeded automatically.
    async fn set_auto_reseed(&self, id: &str, on: bool) -> StoreResult<()>;
    /// Records whether the user holds the primary read-only.
    async fn set_primary_read_only(&self, id: &str, on: bool) -> StoreResult<()>;
    /// Guarded start of a delete: the status becomes `deleting` and the delete
    /// operation is inserted in one transaction, unless the status is not one of
    /// `expected` (then `false`).
    async fn begin_cluster_delete(&self, id: &str, expected: &[ClusterStatus], op: &Operation) -> StoreResult<bool>;
    /// Final step of a delete: nodes rows removed (ports released) and the cluster
    /// marked `deleted` (name and endpoint addresses released). Guarded: only a
    /// `deleting` cluster is finished (`false` otherwise).
    async fn finish_cluster_delete(&self, id: &str) -> StoreResult<bool>;
    /// Every endpoint host of live clusters.
    async fn used_endpoint_hosts(&self) -> StoreResult<Vec<String>>;
}

/// Nodes of clusters.
#[async_trait]
pub trait NodeStore: Send + Sync {
    async fn list_nodes(&self, cluster_id: &str) -> StoreResult<Vec<NodeRecord>>;
    /// Every node of live clusters.
    async fn all_nodes(&self) -> StoreResult<Vec<NodeRecord>>;
    async fn update_node(&self, id: &str, role: NodeRole, status: NodeStatus) -> StoreResult<()>;
    /// Marks a node `failed` with its reason, in one write (a reader never
    /// sees the status without the reason).
    async fn fail_node(&self, id: &str, reason: &str) -> StoreResult<()>;
    /// Sets a node's status reason and rejoin limit.
    async fn set_node_ha(&self, id: &str, status_reason: Option<&str>, rejoin_gtid: Option<&str>) -> StoreResult<()>;
    /// One of the monitor's writes, applied only while the cluster's
    /// `generation` is still the one the monitor read (no operation began,
    /// no mode changed since) and the node still has the role (and, for a
    /// status, the status) the monitor saw. Returns whether it applied.
    async fn monitor_write(&self, cluster_id: &str, generation: i64, write: &MonitorWrite<'_>) -> StoreResult<bool>;
    /// Cuts a node off at the data path, or lifts that (`NodeRecord::fenced`).
    async fn set_node_fenced(&self, id: &str, fenced: bool) -> StoreResult<()>;
    /// Sets a node's size (resize).
    async fn set_node_size(&self, id: &str, size_id: &str) -> StoreResult<()>;
    /// Ports held by nodes.
    async fn used_ports(&self) -> StoreResult<Vec<u16>>;
}

/// Durable operations and their steps.
#[async_trait]
pub trait OperationStore: Send + Sync {
    async fn get_operation(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<Operation>>;
    async fn list_operations(&self, cluster_id: &str, page: PageRequest<'_>) -> StoreResult<Page<Operation>>;
    /// The tenant's operations, newest first, optionally of one cluster and
    /// in one status.
    async fn list_tenant_operations(
        &self,
        tenant_id: &str,
        cluster_id: Option<&str>,
        status: Option<OperationStatus>,
        page: PageRequest<'_>,
    ) -> StoreResult<Page<Operation>>;
    /// Operations that are `pending` or `running`, oldest first.
    async fn unfinished_operations(&self) -> StoreResult<Vec<Operation>>;
    async fn start_operation(&self, id: &str, at: &str) -> StoreResult<()>;
    /// Records the node an operation acts on (e.g. the elected candidate).
    async fn set_operation_node(&self, id: &str, node_id: &str) -> StoreResult<()>;
    /// How many operations of `op_type` on the cluster were created at or after
    /// `since` and did not fail, and when the newest of them was created.
    async fn count_operations_since(
        &self,
        cluster_id: &str,
        op_type: OperationType,
        since: &str,
    ) -> StoreResult<(u32, Option<String>)>;
    /// When each operation of `op_type` on the cluster created at or after
    /// `since` that did not fail was created, newest first.
    async fn operation_times_since(
        &self,
        cluster_id: &str,
        op_type: OperationType,
        since: &str,
    ) -> StoreResult<Vec<String>>;
    async fn update_step(&self, op_id: &str, idx: usize, status: StepStatus, at: &str) -> StoreResult<()>;
    /// Records why an unfinished operation failed, before its failure handler
    /// runs: an operation resumed with an error only runs that handler.
    async fn record_operation_error(&self, id: &str, error: &OperationError) -> StoreResult<()>;
    async fn finish_operation(
        &self,
        id: &str,
        status: OperationStatus,
        error: Option<&OperationError>,
        at: &str,
    ) -> StoreResult<()>;
}

/// The per-cluster event log.
#[async_trait]
pub trait EventStore: Send + Sync {
    async fn insert_event(&self, tenant_id: &str, cluster_id: &str, event: &Event) -> StoreResult<()>;
    async fn list_events(&self, cluster_id: &str, page: PageRequest<'_>) -> StoreResult<Page<Event>>;
}

/// The audit log of mutating API calls.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn insert_audit_event(&self, e: &AuditEvent) -> StoreResult<()>;
    /// A tenant's audit events, newest first.
    async fn list_audit_events(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<AuditEvent>>;
    /// Removes events created before `before` (RFC 3339); returns how many.
    async fn prune_audit_events(&self, before: &str) -> StoreResult<u64>;
}

/// Backups (their records; the data lives in a blob store).
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Inserts a backup and the operation taking it, in one transaction; with
    /// `slot = Some((expected, new))` the cluster's schedule slot moves from
    /// `expected` to `new` in the same transaction (Conflict if it moved).
    async fn create_backup(
        &self,
        b: &BackupRecord,
        op: &Operation,
        slot: Option<(Option<&str>, &str)>,
    ) -> StoreResult<()>;
    /// Sets (or clears) a cluster's backup policy; the schedule counts from `slot`.
    async fn set_backup_policy(&self, cluster_id: &str, policy: Option<&BackupPolicy>, slot: &str) -> StoreResult<()>;
    /// Moves a cluster's schedule slot without a backup (a skipped slot); false
    /// if it was not at `expected`.
    async fn move_backup_slot(&self, cluster_id: &str, expected: Option<&str>, slot: &str) -> StoreResult<bool>;
    async fn get_backup(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<BackupRecord>>;
    async fn backup_for_operation(&self, op_id: &str) -> StoreResult<Option<BackupRecord>>;
    /// A cluster's backups, newest first.
    async fn list_backups(&self, cluster_id: &str, page: PageRequest<'_>) -> StoreResult<Page<BackupRecord>>;
    /// Backups of a cluster not finished yet.
    async fn unfinished_backups(&self, cluster_id: &str) -> StoreResult<Vec<BackupRecord>>;
    /// Replaces the mutable fields (status, size, GTID, times, source, checksum, error).
    async fn update_backup(&self, b: &BackupRecord) -> StoreResult<()>;
    async fn delete_backup(&self, id: &str) -> StoreResult<()>;
    /// Records an archived binlog file (idempotent).
    async fn add_archived_binlog(&self, b: &ArchivedBinlog) -> StoreResult<()>;
    /// A cluster's archived binlogs in archive order.
    async fn archived_binlogs(&self, cluster_id: &str) -> StoreResult<Vec<ArchivedBinlog>>;
    /// Forgets an archived binlog (its object is removed by the caller).
    async fn delete_archived_binlog(&self, cluster_id: &str, node_id: &str, file: &str) -> StoreResult<()>;
    /// When archiving was turned on for a cluster (`None`: off).
    async fn set_binlog_archive_since(&self, cluster_id: &str, since: Option<&str>) -> StoreResult<()>;
}

/// Hosts nodes run on.
#[async_trait]
pub trait HostStore: Send + Sync {
    /// Registers this machine as the local host, or refreshes its facts
    /// (name, address, capacity, version; its zone and status are kept);
    /// nodes without a host are assigned to it. Returns the local host.
    async fn ensure_local_host(&self, facts: &HostRecord) -> StoreResult<HostRecord>;
    /// Every host, oldest first.
    async fn list_hosts(&self) -> StoreResult<Vec<HostRecord>>;
    async fn get_host(&self, id: &str) -> StoreResult<Option<HostRecord>>;
    /// Records an agent's heartbeat: its facts, when, and `down` → `active`.
    /// Whether the (agent) host exists.
    async fn host_heard(&self, id: &str, facts: &HostFactsUpdate, at: &str) -> StoreResult<bool>;
    /// Sets a host's status if it is one of `from`; whether it was.
    async fn set_host_status(&self, id: &str, from: &[HostStatus], to: HostStatus, at: &str) -> StoreResult<bool>;
    /// Keeps a join token (its secret's hash only).
    async fn create_join_token(&self, t: &JoinToken, secret_hash: &str) -> StoreResult<()>;
    /// Uses the join token with this secret hash to add `host` in one
    /// write: refused (`Ok(None)`) when there is none, it was used, or it
    /// expired before `now`. Returns the token (its zone, if it named one,
    /// is the host's).
    async fn join_host(&self, secret_hash: &str, now: &str, host: &HostRecord) -> StoreResult<Option<JoinToken>>;
    /// The live nodes (of clusters not deleted) with a host, as (host id,
    /// node id, cluster id, size id).
    async fn nodes_by_host(&self) -> StoreResult<Vec<(String, String, String, String)>>;
}

/// What deleting a security group did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupDeletion {
    Deleted,
    NotFound,
    /// A cluster uses it.
    InUse,
}

/// Security groups, their rules, and which clusters they are attached to.
#[async_trait]
pub trait SecurityGroupStore: Send + Sync {
    async fn create_security_group(&self, sg: &SecurityGroup) -> StoreResult<()>;
    /// A group of the tenant with its rules.
    async fn get_security_group(&self, tenant_id: &str, id: &str) -> StoreResult<Option<SecurityGroup>>;
    async fn list_security_groups(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<SecurityGroup>>;
    /// Deletes a group and its rules unless a live cluster uses it.
    async fn delete_security_group(&self, tenant_id: &str, id: &str) -> StoreResult<GroupDeletion>;
    async fn add_rule(&self, rule: &SecurityGroupRule) -> StoreResult<()>;
    /// Deletes a rule of a group; false when there is none.
    async fn delete_rule(&self, security_group_id: &str, rule_id: &str) -> StoreResult<bool>;
    /// Replaces the groups attached to a cluster.
    async fn set_cluster_security_groups(&self, cluster_id: &str, ids: &[String]) -> StoreResult<()>;
    /// Ids of the groups attached to a cluster.
    async fn cluster_security_groups(&self, cluster_id: &str) -> StoreResult<Vec<String>>;
    /// Every rule of every group attached to the cluster.
    async fn cluster_rules(&self, cluster_id: &str) -> StoreResult<Vec<SecurityGroupRule>>;
}
