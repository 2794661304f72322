//! The domain model: what the store keeps and the API shows. Records carry the
//! fields of the contract's shapes plus the internal ones Marina needs (secrets,
//! generations, server ids), which the API layer leaves out of its views.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a string-backed enum with `as_str` / `parse` used by the store and serde.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name { $(#[serde(rename = $s)] $variant),+ }
        impl $name {
            /// The stored and serialized form.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// Parses the stored form.
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// Cluster status, as in the contract.
    ClusterStatus {
        Creating => "creating", Active => "active", Degraded => "degraded", Updating => "updating",
        FailingOver => "failing_over", Deleting => "deleting", Failed => "failed", Deleted => "deleted",
    }
);

string_enum!(
    /// Node status, as in the contract.
    NodeStatus {
        Creating => "creating", Active => "active", Down => "down", Stopped => "stopped",
        Maintenance => "maintenance", Rebuilding => "rebuilding", Deleting => "deleting", Failed => "failed",
    }
);

impl NodeStatus {
    /// Whether a node in this status may become the primary: not one taken out
    /// of service on purpose (`stopped`, `maintenance`), being rebuilt or
    /// removed, or `failed`.
    pub fn may_be_promoted(self) -> bool {
        !matches!(
            self,
            NodeStatus::Failed
                | NodeStatus::Maintenance
                | NodeStatus::Stopped
                | NodeStatus::Rebuilding
                | NodeStatus::Deleting
                | NodeStatus::Creating
        )
    }

    /// Whether the node is as it should be: healthy, or taken out of service
    /// on purpose (`stopped`, `maintenance`) — neither degrades its cluster.
    pub fn is_as_intended(self) -> bool {
        matches!(self, NodeStatus::Active | NodeStatus::Stopped | NodeStatus::Maintenance)
    }

    /// Statuses an operator set on purpose, which the monitor keeps.
    pub fn is_sticky(self) -> bool {
        matches!(self, NodeStatus::Failed | NodeStatus::Maintenance | NodeStatus::Stopped)
    }
}

string_enum!(
    /// Host status: `active` hosts take new nodes; `cordoned` ones keep
    /// theirs but take none; `draining` ones are having their nodes moved
    /// off; `down` ones are not heard from.
    HostStatus { Active => "active", Cordoned => "cordoned", Draining => "draining", Down => "down" }
);

string_enum!(
    /// How a cluster's nodes are placed on hosts.
    Placement { Spread => "spread", BestEffort => "best_effort" }
);

string_enum!(
    /// Node role.
    NodeRole { Primary => "primary", Replica => "replica" }
);

string_enum!(
    /// Replication mode of a cluster: `semisync` (a commit waits for a
    /// replica's acknowledgement, falling back to asynchronous after
    /// `nodes.semisync_timeout_ms` without one), `semisync_strict` (never falls
    /// back: without a replica's acknowledgement a commit is not
    /// acknowledged, as MOCO does) or `async`.
    Replication { Semisync => "semisync", SemisyncStrict => "semisync_strict", Async => "async" }
);

impl Replication {
    /// Whether commits wait for a replica's acknowledgement.
    pub fn semisync(self) -> bool {
        !matches!(self, Replication::Async)
    }
}

string_enum!(
    /// Operation status.
    OperationStatus { Pending => "pending", Running => "running", Succeeded => "succeeded", Failed => "failed" }
);

string_enum!(
    /// Operation step status.
    StepStatus { Pending => "pending", Running => "running", Succeeded => "succeeded", Failed => "failed", Skipped => "skipped" }
);

string_enum!(
    /// Operation types; later issues add more.
    OperationType {
        CreateCluster => "create_cluster", DeleteCluster => "delete_cluster", Failover => "failover",
        Switchover => "switchover", Backup => "backup", RestoreCluster => "restore_cluster",
        ReseedNode => "reseed_node", AddNode => "add_node", RemoveNode => "remove_node",
        StopNode => "stop_node", StartNode => "start_node", RebootNode => "reboot_node",
        SetMaintenance => "set_maintenance", SetReadOnly => "set_read_only",
        ResizeNode => "resize_node", ResizeCluster => "resize_cluster", RebootCluster => "reboot_cluster",
        MoveNode => "move_node",
    }
);

string_enum!(
    /// How a backup is taken.
    BackupMethod { Physical => "physical", Logical => "logical" }
);

string_enum!(
    /// Backup status, as in the contract.
    BackupStatus { Pending => "pending", Running => "running", Completed => "completed", Failed => "failed" }
);

string_enum!(
    /// Whether Marina fails over on its own.
    FailoverMode { Automatic => "automatic", Manual => "manual" }
);

string_enum!(
    /// Token scopes.
    Scope { Read => "read", Write => "write", Admin => "admin" }
);

/// A tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The bootstrap tenant: its admin tokens operate Marina (create tenants).
    #[serde(skip)]
    pub operator: bool,
}

/// A token as stored (the secret is only ever a hash).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// Cluster secrets, encrypted at rest by the core's secret box.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ClusterSecrets {
    /// Password of `marina_mgmt`, the account Marina manages nodes with.
    pub mgmt_password: String,
    /// Password of `marina_repl`, the replication account.
    pub repl_password: String,
    /// `mysql_native_password` hash of the customer `admin` password (the clear
    /// text is returned once and never stored).
    pub admin_hash: String,
    /// Databases and accounts asked for at create time, until the create
    /// operation has made them (sealed here because of the password hashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_catalog: Option<InitialCatalog>,
}

crate::debug_redacted!(ClusterSecrets { initial_catalog } redact { mgmt_password, repl_password, admin_hash });

/// Databases and accounts a cluster is created with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitialCatalog {
    pub databases: Vec<String>,
    pub users: Vec<InitialUser>,
}

/// An account a cluster is created with (its password only as a native hash).
#[derive(Clone, Serialize, Deserialize)]
pub struct InitialUser {
    pub name: String,
    pub host: String,
    pub password_hash: String,
    pub databases: Vec<String>,
}

crate::debug_redacted!(InitialUser { name, host, databases } redact { password_hash });

/// A cluster as stored.
#[derive(Debug, Clone)]
pub struct ClusterRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub status: ClusterStatus,
    pub size_id: String,
    pub version: String,
    pub replication: Replication,
    pub node_count: u32,
    /// Writer endpoint address, allocated at create time and kept for life.
    pub writer_host: String,
    /// Reader endpoint address.
    pub reader_host: String,
    /// Endpoint port (3306 unless configured otherwise).
    pub endpoint_port: u16,
    /// Whether the cluster has been active once (the contract shows `endpoints`
    /// only from then on).
    pub endpoints_ready: bool,
    /// Encrypted `ClusterSecrets` (opaque to the store).
    pub secrets_enc: String,
    /// Bumped by every guarded update.
    pub generation: i64,
    /// `automatic` (default) or `manual`.
    pub failover_mode: FailoverMode,
    /// A switchover holds writes: the writer endpoint refuses connections.
    pub writer_paused: bool,
    /// The data a restored cluster starts from (`None`: empty).
    pub restore: Option<RestoreSource>,
    /// Scheduled backups and their retention.
    pub backup_policy: Option<BackupPolicy>,
    /// The last schedule check that took (or skipped) a backup: the next one
    /// is due at the schedule's first time after it.
    pub backup_slot: Option<String>,
    /// A replica that diverged (cannot rejoin) is rebuilt from the primary
    /// automatically instead of staying `failed`.
    pub auto_reseed: bool,
    /// The user set the primary read-only (`manual` failover mode only).
    pub primary_read_only: bool,
    /// When binlog archiving was turned on (`None`: off).
    pub binlog_archive_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Where a restored cluster's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestoreSource {
    /// The backup restored first.
    pub backup_id: String,
    /// Binlogs are replayed up to this time (point-in-time recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<String>,
}

/// Scheduled backups of a cluster (`PATCH … {"backup_policy"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicy {
    /// Cron expression in UTC: 5 fields, or 6 with seconds first.
    pub schedule: String,
    /// `physical` (default) or `logical`.
    #[serde(default = "default_method")]
    pub method: BackupMethod,
    /// Keep at most this many scheduled backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_count: Option<u32>,
    /// Remove scheduled backups older than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<u32>,
    /// Archive the primary's binlogs continuously (point-in-time recovery).
    #[serde(default)]
    pub binlog_archive: bool,
}

fn default_method() -> BackupMethod {
    BackupMethod::Physical
}

/// A binlog file copied from a primary into the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedBinlog {
    pub cluster_id: String,
    pub node_id: String,
    /// The file name on the node (`mariadb-bin.000003`).
    pub file: String,
    /// GTID state at the file's start (its `Gtid_list` event).
    pub gtid_start: String,
    /// GTID state at its end (the next file's `Gtid_list`).
    pub gtid_end: String,
    pub size_bytes: u64,
    /// `sha256:<hex>`.
    pub checksum: String,
    /// Every event in the file is at or before this time.
    pub rotated_at: String,
}

/// A backup as stored.
#[derive(Debug, Clone)]
pub struct BackupRecord {
    pub id: String,
    pub tenant_id: String,
    pub cluster_id: String,
    pub method: BackupMethod,
    pub status: BackupStatus,
    /// Size of the stored (compressed) object.
    pub size_bytes: Option<u64>,
    /// GTID position the backup is consistent with.
    pub gtid_position: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub source_node_id: Option<String>,
    /// `sha256:<hex>` of the stored object.
    pub checksum: Option<String>,
    /// MariaDB version of the source (a physical backup restores onto it).
    pub mariadb_version: String,
    /// The operation taking it.
    pub operation_id: String,
    /// `manual` or `schedule` (retention only prunes scheduled backups).
    pub trigger: String,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: String,
}

impl ClusterRecord {
    /// Whether the primary waits for a replica's acknowledgement on commit:
    /// semisync clusters with replicas only (a single node has no one to wait
    /// for, and would stall every commit for the semisync timeout).
    pub fn primary_waits_for_acks(&self) -> bool {
        self.replication.semisync() && self.node_count > 1
    }
}

/// A node as stored.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub id: String,
    pub cluster_id: String,
    /// 0-based position in the cluster; `server_id` derives from it.
    pub ordinal: u32,
    pub role: NodeRole,
    pub status: NodeStatus,
    pub host: String,
    pub port: u16,
    pub size_id: String,
    /// MariaDB `server_id`, unique within the cluster.
    pub server_id: u32,
    /// Why the node has its status (e.g. why it is `failed`).
    pub status_reason: Option<String>,
    /// Set on a primary demoted by a failover: the new primary's GTID position
    /// at promotion. The node may rejoin only if its history is within it.
    pub rejoin_gtid: Option<String>,
    /// Cut off at the data path (an old primary, from a failover's fence
    /// until it follows the new primary).
    pub fenced: bool,
    /// The host it runs on (`None` only for a row written before hosts
    /// existed, until the start that assigns it to the local host).
    pub host_id: Option<String>,
    /// Its host's zone when it was placed (a host keeps its zone).
    pub zone: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A machine nodes run on. `marina serve` alone has one: its own machine
/// (`local`), registered at start.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostRecord {
    pub id: String,
    #[schema(value_type = String, example = "host")]
    pub object: &'static str,
    /// The host's name (its hostname).
    pub name: String,
    /// The failure domain it is in (`hosts.zone`; `local` by default).
    pub zone: String,
    /// The address its nodes and endpoints listen on.
    pub address: String,
    pub status: HostStatus,
    /// The control plane's own machine (no agent).
    pub local: bool,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub cpus: u32,
    /// The Marina version it runs.
    pub version: String,
    /// The port its agent serves its API on (none for the local host).
    pub agent_port: Option<u16>,
    /// When its agent last answered a heartbeat (none: never, or the local
    /// host, which has no agent).
    pub seen_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What an agent's heartbeat refreshes of its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFactsUpdate {
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub cpus: u32,
    pub version: String,
}

/// A one-time token a host agent joins with (`marina agent --join-token`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JoinToken {
    pub id: String,
    #[schema(value_type = String, example = "join_token")]
    pub object: &'static str,
    /// The zone the joining host is placed in (else the agent's `--zone`).
    pub zone: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub used_at: Option<String>,
    /// The host that joined with it.
    pub host_id: Option<String>,
}

/// Body of `POST /v1/hosts/join-tokens`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJoinTokenInput {
    /// The zone of the host that joins with it.
    #[serde(default)]
    pub zone: Option<String>,
    /// How long it may be used, 60 to 604800 seconds (default 3600).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// Body of `POST /v1/hosts/join` (the agent's; the join token authenticates it).
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinHostInput {
    pub join_token: String,
    /// The host's name (`^[a-z0-9][a-z0-9.-]{0,62}$`).
    pub name: String,
    /// Its zone, unless the token names one.
    #[serde(default)]
    pub zone: Option<String>,
    /// The address its nodes and endpoints listen on (IPv4 or IPv6).
    pub address: String,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub cpus: u32,
    pub version: String,
    /// The agent's public key: an uncompressed P-256 point, base64.
    pub public_key: String,
    /// The port the agent serves its API on (default 7301).
    #[serde(default)]
    pub agent_port: Option<u16>,
}

crate::debug_redacted!(JoinHostInput { name, zone, address } redact { join_token });

/// One named step of an operation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationStep {
    pub name: String,
    pub status: StepStatus,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// Why an operation failed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationError {
    pub code: String,
    pub message: String,
}

/// An operation as stored and shown (its shape is the contract's).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Operation {
    pub id: String,
    #[schema(value_type = String, example = "operation")]
    pub object: &'static str,
    #[serde(rename = "type")]
    pub op_type: OperationType,
    pub status: OperationStatus,
    pub cluster_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// What the operation was asked beyond its type (e.g. `{"from": "backup"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    #[serde(skip)]
    pub tenant_id: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<OperationError>,
    pub steps: Vec<OperationStep>,
}

/// An event in a cluster's log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub id: String,
    #[schema(value_type = String, example = "event")]
    pub object: &'static str,
    #[serde(rename = "type")]
    pub event_type: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    pub created_at: String,
}

/// One mutating API call, as the audit log keeps it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    #[schema(value_type = String, example = "audit_event")]
    pub object: &'static str,
    pub tenant_id: String,
    /// The token that made the call.
    pub token_id: String,
    /// The client's address.
    pub source: String,
    pub method: String,
    /// The route template (`/v1/clusters/{cluster_id}`).
    pub route: String,
    /// The path as called (with ids).
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// `succeeded` (2xx), `denied` (401/403/404/429) or `failed` (other errors).
    pub result: String,
    /// The contract error code when the call failed.
    pub error_code: Option<String>,
    pub request_id: String,
    pub created_at: String,
}

impl AuditEvent {
    /// The result word for a status.
    pub fn result_of(status: u16) -> &'static str {
        match status {
            200..=299 => "succeeded",
            401 | 403 | 404 | 429 => "denied",
            _ => "failed",
        }
    }
}

fn default_nodes() -> u32 {
    1
}

/// Body of `POST /v1/clusters`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateClusterInput {
    /// `^[a-z][a-z0-9-]{0,62}$`, unique in the tenant.
    pub name: String,
    /// A node size id (`GET /v1/node-sizes`).
    pub size_id: String,
    /// Number of nodes, 1 to 9 (default 1): one primary, the rest replicas.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    /// MariaDB version (default: the installed one).
    #[serde(default)]
    pub version: Option<String>,
    /// Security groups to attach.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// `semisync` (default) or `async`.
    #[serde(default)]
    pub replication: Option<Replication>,
    /// Start from a backup (`{"backup_id"}`) or from a point in time of a
    /// cluster's history (`{"cluster_id", "point_in_time"}`).
    #[serde(default)]
    pub restore: Option<RestoreInput>,
    /// Databases to create with the cluster (not with `restore`).
    #[serde(default)]
    pub databases: Vec<CreateDatabaseInput>,
    /// Accounts to create with the cluster, each with its password (not
    /// with `restore`).
    #[serde(default)]
    pub users: Vec<CreateUserInput>,
    /// `spread` (no two nodes on one host: refused when the hosts cannot
    /// hold that) or `best_effort` (hosts shared when they must be).
    /// Default: `spread` with two or more active hosts, else `best_effort`.
    #[serde(default)]
    pub placement: Option<Placement>,
}

/// `restore` in a cluster create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreInput {
    /// A completed backup of the caller's tenant.
    #[serde(default)]
    pub backup_id: Option<String>,
    /// The cluster whose history to restore (with `point_in_time`).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// RFC 3339 time inside the cluster's restore window.
    #[serde(default)]
    pub point_in_time: Option<String>,
}

/// Body of `POST /v1/clusters/{cluster_id}/backups`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBackupInput {
    /// `physical` (default) or `logical`.
    #[serde(default)]
    pub method: Option<BackupMethod>,
}

/// `failover` settings in a cluster patch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct FailoverSettings {
    /// `automatic` (default) or `manual`.
    pub mode: FailoverMode,
    /// Rebuild a diverged replica from the primary on its own (default false).
    #[serde(default)]
    pub auto_reseed: Option<bool>,
}

/// Body of `POST …/nodes/{node_id}/reseed`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReseedInput {
    /// `primary` (default: stream a physical copy of the primary) or `backup`
    /// (the cluster's latest completed physical backup).
    #[serde(default)]
    pub from: Option<ReseedFrom>,
}

string_enum!(
    /// Where a reseeded replica's data comes from.
    ReseedFrom { Primary => "primary", Backup => "backup" }
);

/// Body of `PATCH /v1/clusters/{cluster_id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PatchClusterInput {
    /// Security groups to attach (replaces the list).
    #[serde(default)]
    pub security_group_ids: Option<Vec<String>>,
    #[serde(default)]
    pub failover: Option<FailoverSettings>,
    /// Scheduled backups (`null` removes the policy).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BackupPolicy>)]
    pub backup_policy: Option<serde_json::Value>,
    /// Resize every node (rolling: replicas, a switchover, the old primary);
    /// the answer is then 202 with the operation.
    #[serde(default)]
    pub size_id: Option<String>,
}

/// Body of `PATCH /v1/clusters/{cluster_id}/nodes/{node_id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ResizeNodeInput {
    pub size_id: String,
}

/// A field that is present, even as `null` (`Some(Value::Null)`); absent
/// fields stay `None` through `#[serde(default)]`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Body of `POST /v1/clusters/{cluster_id}/nodes` (may be empty).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct AddNodeInput {
    /// The new replica's size; the cluster's when absent.
    #[serde(default)]
    pub size_id: Option<String>,
}

/// Body of `POST …/nodes/{node_id}/maintenance` and `…/read-only`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ToggleInput {
    pub enabled: bool,
}

/// Body of `POST …/nodes/{node_id}/reboot` (may be empty).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RebootInput {
    /// Reboot a primary in place, without switching over first (writes stop
    /// until it is back).
    #[serde(default)]
    pub force: bool,
}

/// Body of `POST /v1/clusters/{cluster_id}/databases`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateDatabaseInput {
    /// `[A-Za-z0-9_]{1,64}`, not a system schema.
    pub name: String,
}

/// A database inside a cluster.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseView {
    pub name: String,
    #[schema(example = "database")]
    pub object: &'static str,
}

/// Body of `POST /v1/clusters/{cluster_id}/users`.
#[derive(Clone, Deserialize, ToSchema)]
pub struct CreateUserInput {
    /// `[A-Za-z0-9_]{1,32}`, not a reserved account.
    pub name: String,
    /// 8-128 characters; Marina generates one (shown once) when absent.
    #[serde(default)]
    pub password: Option<String>,
    /// Databases the user gets all privileges on.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Host pattern the account may connect from (default `%`).
    #[serde(default)]
    pub host: Option<String>,
}

crate::debug_redacted!(CreateUserInput { name, databases, host } redact { password });

/// An account inside a cluster.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub name: String,
    #[schema(example = "user")]
    pub object: &'static str,
    pub host: String,
    pub databases: Vec<String>,
}

/// Body of `POST …/switchover` and `POST …/failover` (may be empty).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PromoteInput {
    /// The replica to promote; Marina chooses when absent.
    #[serde(default)]
    pub target_node_id: Option<String>,
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateTokenInput {
    /// `^[a-z][a-z0-9-]{0,62}$`.
    pub name: String,
    /// Any of `read`, `write`, `admin`; none the caller lacks.
    pub scopes: Vec<Scope>,
}

/// An OVH API application of a tenant (the OVH adapter signs requests with
/// its key and secret; the secret is shown once, at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OvhApplication {
    /// `X-Ovh-Application`.
    pub application_key: String,
    #[serde(skip)]
    pub tenant_id: String,
    pub name: String,
    pub created_at: String,
}

/// Body of `POST /v1/ovh-applications`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateOvhApplicationInput {
    /// `^[a-z][a-z0-9-]{0,62}$`.
    pub name: String,
}

/// Body of `POST /v1/tenants`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateTenantInput {
    /// `^[a-z][a-z0-9-]{0,62}$`, unique.
    pub name: String,
}

/// A security group rule: connections from `cidr` to an endpoint port in
/// `from_port..=to_port` are admitted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecurityGroupRule {
    pub id: String,
    #[schema(value_type = String, example = "security_group_rule")]
    pub object: &'static str,
    pub security_group_id: String,
    pub cidr: String,
    pub from_port: u16,
    pub to_port: u16,
    pub created_at: String,
}

/// A security group with its rules.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecurityGroup {
    pub id: String,
    #[schema(value_type = String, example = "security_group")]
    pub object: &'static str,
    pub name: String,
    pub description: String,
    pub rules: Vec<SecurityGroupRule>,
    pub created_at: String,
    #[serde(skip)]
    pub tenant_id: String,
}

/// Body of `POST /v1/security-groups`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateSecurityGroupInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// Body of `POST /v1/security-groups/{sg_id}/rules`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateRuleInput {
    /// IPv4 or IPv6 network, e.g. `127.0.0.2/32` (no host bits set).
    pub cidr: String,
    pub from_port: u32,
    pub to_port: u32,
}
