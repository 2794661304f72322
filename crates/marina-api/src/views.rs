//! The JSON shapes of the contract, built from store records. Internal fields
//! (secrets, generations) never reach a view.

use marina_common::model::*;
use marina_common::size::NodeSize;
use serde::Serialize;
use utoipa::ToSchema;

/// The contract's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Inside the error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code (`invalid_request`, `not_found`, …).
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// The request's id (also in the `X-Request-Id` header).
    pub request_id: String,
}

/// A host and port.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// A cluster's stable addresses.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoints {
    /// Always leads to the current primary.
    pub writer: HostPort,
    /// Leads to healthy replicas (the primary when there are none).
    pub reader: HostPort,
}

/// A node.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub id: String,
    #[schema(example = "node")]
    pub object: &'static str,
    pub cluster_id: String,
    pub role: NodeRole,
    pub status: NodeStatus,
    pub host: String,
    pub port: u16,
    pub size_id: String,
    /// Replication lag; `null` when not measured.
    pub lag_seconds: Option<f64>,
    /// Why the node has its status (e.g. why it is `failed`).
    pub status_reason: Option<String>,
    pub server_id: u32,
    /// The host it runs on and that host's zone.
    pub host_id: Option<String>,
    pub zone: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&NodeRecord> for NodeView {
    fn from(n: &NodeRecord) -> Self {
        NodeView {
            id: n.id.clone(),
            object: "node",
            cluster_id: n.cluster_id.clone(),
            role: n.role,
            status: n.status,
            host: n.host.clone(),
            port: n.port,
            size_id: n.size_id.clone(),
            lag_seconds: (n.role == NodeRole::Primary).then_some(0.0),
            status_reason: n.status_reason.clone(),
            server_id: n.server_id,
            host_id: n.host_id.clone(),
            zone: n.zone.clone(),
            created_at: n.created_at.clone(),
            updated_at: n.updated_at.clone(),
        }
    }
}

/// A cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    pub id: String,
    #[schema(example = "cluster")]
    pub object: &'static str,
    pub name: String,
    pub status: ClusterStatus,
    pub size_id: String,
    pub version: String,
    pub replication: Replication,
    pub node_count: u32,
    pub nodes: Vec<NodeView>,
    /// `null` until the cluster is first active.
    pub endpoints: Option<Endpoints>,
    pub security_group_ids: Vec<String>,
    /// Failover settings.
    pub failover: FailoverView,
    /// What a restored cluster was restored from (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSource>,
    /// Scheduled backups (`null` when none).
    pub backup_policy: Option<BackupPolicy>,
    pub created_at: String,
    pub updated_at: String,
}

/// A cluster's failover settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailoverView {
    pub mode: FailoverMode,
    /// Diverged replicas are rebuilt from the primary automatically.
    pub auto_reseed: bool,
}

impl ClusterView {
    pub fn new(c: &ClusterRecord, nodes: &[NodeRecord]) -> Self {
        ClusterView {
            id: c.id.clone(),
            object: "cluster",
            name: c.name.clone(),
            status: c.status,
            size_id: c.size_id.clone(),
            version: c.version.clone(),
            replication: c.replication,
            node_count: c.node_count,
            nodes: nodes.iter().map(NodeView::from).collect(),
            // Shown from the first time the cluster is active (the create's
            // last step routes them a moment before).
            endpoints: (c.endpoints_ready && c.status != ClusterStatus::Creating).then(|| Endpoints {
                writer: HostPort {
                    host: c.writer_host.clone(),
                    port: c.endpoint_port,
                },
                reader: HostPort {
                    host: c.reader_host.clone(),
                    port: c.endpoint_port,
                },
            }),
            security_group_ids: Vec::new(),
            failover: FailoverView {
                mode: c.failover_mode,
                auto_reseed: c.auto_reseed,
            },
            restore: c.restore.clone(),
            backup_policy: c.backup_policy.clone(),
            created_at: c.created_at.clone(),
            updated_at: c.updated_at.clone(),
        }
    }
}

/// The customer account's credentials, shown once.
#[derive(Serialize, ToSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

marina_common::debug_redacted!(Credentials { username } redact { password });

/// Answer of `POST /v1/clusters`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterCreated {
    pub cluster: ClusterView,
    pub operation: Operation,
    pub credentials: Credentials,
}

/// Answer of requests that start an operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationAccepted {
    pub operation: Operation,
}

/// `202` for a cluster being resized.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterUpdating {
    pub cluster: ClusterView,
    pub operation: Operation,
}

/// `202` for a node being added.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeAccepted {
    pub node: NodeView,
    pub operation: Operation,
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    #[schema(example = "tenant")]
    pub object: &'static str,
    pub name: String,
    pub created_at: String,
}

/// A token (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    #[schema(example = "token")]
    pub object: &'static str,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        TokenView {
            id: t.id.clone(),
            object: "token",
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            created_at: t.created_at.clone(),
            last_used_at: t.last_used_at.clone(),
        }
    }
}

/// Answer of `POST /v1/tokens`: the secret is shown here only.
#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    pub token: TokenView,
    pub secret: String,
}

marina_common::debug_redacted!(TokenCreated { token } redact { secret });

/// Answer of `POST /v1/tenants`: the tenant and its first admin token.
#[derive(Serialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: TenantView,
    pub token: TokenView,
    pub secret: String,
}

marina_common::debug_redacted!(TenantCreated { tenant, token } redact { secret });

/// Declares a concrete list type `{"object": "list", "data": [...], "next_cursor"}`.
macro_rules! list_type {
    ($name:ident, $item:ty) => {
        /// A page of a list.
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            #[schema(example = "list")]
            pub object: &'static str,
            pub data: Vec<$item>,
            /// Pass as `?cursor=` to get the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }
        impl $name {
            pub fn new(data: Vec<$item>, next_cursor: Option<String>) -> Self {
                $name {
                    object: "list",
                    data,
                    next_cursor,
                }
            }
        }
    };
}

/// A host with what runs on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostView {
    #[serde(flatten)]
    pub host: HostRecord,
    /// Nodes of live clusters on it.
    pub nodes: u32,
    /// The memory of its nodes' sizes.
    pub memory_used_bytes: u64,
}

impl From<marina_core::hosts::HostUsage> for HostView {
    fn from(h: marina_core::hosts::HostUsage) -> Self {
        HostView {
            host: h.host,
            nodes: h.nodes,
            memory_used_bytes: h.memory_used_bytes,
        }
    }
}

list_type!(HostList, HostView);

/// Answer of `POST /v1/hosts/join-tokens`: the secret is shown only here.
#[derive(Serialize, ToSchema)]
pub struct JoinTokenCreated {
    pub token: JoinToken,
    /// `mrn_join_…`: give it to `marina agent --join-token`.
    pub secret: String,
}

marina_common::debug_redacted!(JoinTokenCreated { token } redact { secret });

/// Answer of `POST /v1/hosts/join`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostJoined {
    pub host: HostRecord,
    pub certificate_pem: String,
    pub ca_pem: String,
}
list_type!(ClusterList, ClusterView);
list_type!(NodeList, NodeView);
list_type!(OperationList, Operation);
list_type!(EventList, Event);
list_type!(AuditEventList, AuditEvent);
list_type!(BackupList, BackupView);
list_type!(DatabaseList, DatabaseView);
list_type!(UserList, UserView);
list_type!(RowList, serde_json::Map<String, serde_json::Value>);

/// Answer of `POST …/users`: the password is shown only here.
#[derive(Serialize, ToSchema)]
pub struct UserCreated {
    pub user: UserView,
    pub password: String,
}

marina_common::debug_redacted!(UserCreated { user } redact { password });

/// A backup, as in the contract.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupView {
    pub id: String,
    #[schema(example = "backup")]
    pub object: &'static str,
    pub cluster_id: String,
    pub method: BackupMethod,
    pub status: BackupStatus,
    /// Size of the stored, compressed backup.
    pub size_bytes: Option<u64>,
    /// The GTID position the backup is consistent with.
    pub gtid_position: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The node it was read from (a replica unless the cluster had none healthy).
    pub source_node_id: Option<String>,
    /// `sha256:<hex>` of the stored object.
    pub checksum: Option<String>,
    pub mariadb_version: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
}

impl From<&BackupRecord> for BackupView {
    fn from(b: &BackupRecord) -> Self {
        BackupView {
            id: b.id.clone(),
            object: "backup",
            cluster_id: b.cluster_id.clone(),
            method: b.method,
            status: b.status,
            size_bytes: b.size_bytes,
            gtid_position: b.gtid_position.clone(),
            started_at: b.started_at.clone(),
            finished_at: b.finished_at.clone(),
            source_node_id: b.source_node_id.clone(),
            checksum: b.checksum.clone(),
            mariadb_version: b.mariadb_version.clone(),
            trigger: b.trigger.clone(),
            error: b.error.clone(),
            created_at: b.created_at.clone(),
        }
    }
}

/// `GET /v1/clusters/{cluster_id}/restore-window`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreWindow {
    pub cluster_id: String,
    /// The oldest time a restore can reach (a backup taken since archiving started).
    pub earliest: String,
    /// The newest (the last archived binlog rotation).
    pub latest: String,
}

/// `POST /v1/clusters/{cluster_id}/backups` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupCreated {
    pub backup: BackupView,
    pub operation: Operation,
}
list_type!(NodeSizeList, NodeSize);
list_type!(TenantList, TenantView);
list_type!(BackgroundTaskList, marina_core::background::TaskStatus);

impl From<marina_common::model::Tenant> for TenantView {
    fn from(t: marina_common::model::Tenant) -> Self {
        TenantView {
            id: t.id,
            object: "tenant",
            name: t.name,
            created_at: t.created_at,
        }
    }
}
list_type!(TokenList, TokenView);
list_type!(SecurityGroupList, SecurityGroup);
list_type!(OvhApplicationList, marina_common::model::OvhApplication);

/// A link.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub href: String,
    pub rel: String,
}

/// An API version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    pub id: String,
    pub status: String,
    /// When the version last changed (the Trove seed's `v1.0` shows it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    pub links: Vec<Link>,
}

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Versions {
    pub versions: Vec<Version>,
}

/// `GET /v1`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDoc {
    pub version: Version,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}
