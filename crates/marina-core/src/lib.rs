//! Domain services and background work of the control plane: cluster create /
//! delete as durable operations, the operation worker, the node supervisor, auth,
//! secrets and configuration. Handlers (HTTP today, others later) call the
//! methods of `Marina`; nothing here knows about HTTP.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod background;
pub mod backup_schedule;
pub mod backups;
pub mod binlog_archive;
pub mod ca;
mod catalog;
mod claim;
pub mod clusters;
pub mod config;
pub mod cron;
pub mod doctor;
pub mod drain;
mod failpoint;
mod ha;
pub mod host_probes;
pub mod hosts;
pub mod metrics;
pub mod monitor;
mod nodes;
mod nodespec;
pub mod operations;
pub mod ovh;
pub mod placement;
pub mod refusals;
pub mod reseed;
mod resize;
pub mod secrets;
pub mod security_groups;
pub mod supervisor;
mod tokens;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use marina_common::Error;
use marina_common::size::NodeSize;
use marina_endpoints::{DataPath, NftDataPath, ProxyDataPath};
use marina_engine::{MysqlAdmin, NodeAdmin};
use marina_runtime::{LocalRuntime, NodeRuntime};
use marina_store::{SqliteStore, Store};
use tokio::sync::Notify;

pub use config::{Config, EndpointMode};
pub use marina_engine::catalog::NodeView as NodeLiveView;

/// The control plane's shared state: configuration and the handles to the store,
/// the node runtime, MariaDB and the endpoint data path.
pub struct Marina {
    /// Effective configuration.
    pub config: Config,
    /// The node-size catalog.
    pub sizes: Vec<NodeSize>,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Where nodes run.
    pub runtime: Arc<dyn NodeRuntime>,
    /// The host side of moving nodes' data (backups, copies, restores).
    pub data: Arc<dyn marina_host::NodeData>,
    /// Management SQL.
    pub admin: Arc<dyn NodeAdmin>,
    /// Endpoint traffic.
    pub datapath: Arc<dyn DataPath>,
    /// Seals cluster passwords at rest.
    pub secrets: secrets::SecretBox,
    /// Signs host agents' certificates.
    pub ca: ca::ControlPlaneCa,
    /// Clients of the agent hosts.
    pub agents: agents::Agents,
    /// The monitor's latest view of every node.
    pub monitor: monitor::MonitorState,
    /// Wakes the operation worker.
    pub(crate) work: Notify,
    /// Wakes the supervisor.
    pub(crate) reconcile: Notify,
    /// Wakes the monitor (a primary's process exited).
    pub(crate) probe_now: Notify,
    /// Operations being executed by this process.
    pub(crate) inflight: Mutex<HashSet<String>>,
    /// The endpoint plan last applied and when (the supervisor skips
    /// identical applies).
    pub(crate) endpoints_applied: Mutex<Option<supervisor::AppliedEndpoints>>,
    /// Held from reading the desired endpoint plan to applying it, so a plan
    /// read earlier never overwrites one read later.
    pub(crate) endpoints_turn: tokio::sync::Mutex<()>,
    /// Per cluster: held by the supervisor from its last status check to a
    /// restarted node's start; operations pass through it before their first
    /// step (`supervisor::RestartTurns`).
    pub(crate) restart_turns: supervisor::RestartTurns,
    /// Per cluster: held by a monitor evaluation while it acts; every
    /// operation passes through it before its first step, and an evaluation
    /// that takes it re-reads the cluster and acts only if no operation took
    /// the cluster meanwhile (`monitor/mod.rs`).
    pub(crate) evaluation_turns: supervisor::RestartTurns,
    /// Failed authentications since start (metrics export it).
    pub auth_failures: std::sync::atomic::AtomicU64,
    /// Connections refused at endpoints and node ports, per cluster.
    pub refusals: refusals::RefusalLedger,
    /// Requests, operations, probes and promotions counted for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Where backup objects are kept.
    pub blobs: Arc<dyn marina_backup::BlobStore>,
    /// The binlog archiver's memory (last rotation per cluster).
    pub(crate) archiver: binlog_archive::ArchiverState,
    /// Every background task's latest activation (`background/`).
    pub(crate) background: background::Registry,
}

impl Marina {
    /// Opens the data dir (creating it), the SQLite store, the local runtime and
    /// the endpoint data path chosen by the configuration.
    pub async fn open(config: Config) -> Result<Arc<Self>, Error> {
        config.validate().map_err(Error::InvalidRequest)?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::internal(format!("creating {}: {e}", config.data_dir.display())))?;
        // The data dir holds keys, tokens and datadirs: owner only (the local
        // runtime adds `o+x`, traverse without listing, for node uids).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::internal(format!("chmod {}: {e}", config.data_dir.display())))?;
        let db_path = config.data_dir.join("marina.db");
        let store = SqliteStore::open(&db_path).await?;
        std::fs::set_permissions(&db_path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::internal(format!("chmod {}: {e}", db_path.display())))?;
        let admin: Arc<dyn NodeAdmin> = Arc::new(MysqlAdmin::default());
        let runtime = LocalRuntime::new(
            &config.data_dir,
            config.nodes.template_cache.clone(),
            admin.clone(),
            std::time::Duration::from_secs(config.nodes.start_timeout_secs),
        )
        .map_err(|e| Error::Unavailable(e.to_string()))?;
        runtime
            .check_node_users(config.nodes.run_as_root)
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let runtime = if config.nodes.cgroup_parent.is_empty() {
            runtime
        } else {
            runtime.with_cgroups(&config.nodes.cgroup_parent)
        };
        tracing::info!(limits = %runtime.limits_description(), "node resource limits");
        if config.hosts.fence_after_ms >= config.nodes.semisync_timeout_ms {
            tracing::warn!(
                fence_after_ms = config.hosts.fence_after_ms,
                semisync_timeout_ms = config.nodes.semisync_timeout_ms,
                "an isolated primary on an agent host could acknowledge writes without a replica before its agent \
                 fences it: keep hosts.fence_after_ms below nodes.semisync_timeout_ms"
            );
        }
        let datapath: Arc<dyn DataPath> = match config.endpoints.mode {
            EndpointMode::Kernel => Arc::new(NftDataPath::new(&config.endpoints.nft_table)),
            EndpointMode::Userspace => Arc::new(ProxyDataPath::new()),
            EndpointMode::Auto if marina_endpoints::kernel_available().await => {
                Arc::new(NftDataPath::new(&config.endpoints.nft_table))
            }
            EndpointMode::Auto => Arc::new(ProxyDataPath::new()),
        };
        Self::with_parts(config, Arc::new(store), Arc::new(runtime), admin, datapath)
    }

    /// Assembles a `Marina` from given parts (tests inject fakes here).
    pub fn with_parts(
        config: Config,
        store: Arc<dyn Store>,
        runtime: Arc<dyn NodeRuntime>,
        admin: Arc<dyn NodeAdmin>,
        datapath: Arc<dyn DataPath>,
    ) -> Result<Arc<Self>, Error> {
        let secrets = secrets::SecretBox::open(&config.data_dir)?;
        let ca = ca::ControlPlaneCa::open(&config.data_dir)?;
        let blobs: Arc<dyn marina_backup::BlobStore> = match &config.backups.s3 {
            Some(s3) => Arc::new(
                marina_backup::S3BlobStore::new(s3).map_err(|e| Error::InvalidRequest(format!("backups.s3: {e}")))?,
            ),
            None => Arc::new(marina_backup::LocalBlobStore::new(
                config
                    .backups
                    .dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("backups")),
            )),
        };
        let data = Arc::new(marina_host::LocalNodeData::new(
            runtime.clone(),
            config.data_dir.join("tmp"),
        ));
        Ok(Arc::new(Marina {
            sizes: config.catalog(),
            config,
            store,
            runtime,
            data,
            admin,
            datapath,
            secrets,
            ca,
            agents: agents::Agents::default(),
            monitor: monitor::MonitorState::default(),
            work: Notify::new(),
            reconcile: Notify::new(),
            probe_now: Notify::new(),
            inflight: Mutex::new(HashSet::new()),
            endpoints_applied: Mutex::new(None),
            endpoints_turn: tokio::sync::Mutex::new(()),
            restart_turns: supervisor::RestartTurns::default(),
            evaluation_turns: supervisor::RestartTurns::default(),
            auth_failures: std::sync::atomic::AtomicU64::new(0),
            refusals: refusals::RefusalLedger::default(),
            metrics: metrics::Metrics::default(),
            blobs,
            archiver: binlog_archive::ArchiverState::default(),
            background: background::Registry::default(),
        }))
    }

    /// Every node, grouped by cluster and ordered as `list_nodes` orders
    /// them, in one read: background passes over all clusters use it rather
    /// than a read per cluster (most of the monitor's cost was those reads).
    pub(crate) async fn nodes_by_cluster(
        &self,
    ) -> Result<std::collections::HashMap<String, Vec<marina_common::model::NodeRecord>>, Error> {
        let mut by_cluster: std::collections::HashMap<String, Vec<marina_common::model::NodeRecord>> =
            std::collections::HashMap::new();
        for n in self.store.all_nodes().await? {
            by_cluster.entry(n.cluster_id.clone()).or_default().push(n);
        }
        for nodes in by_cluster.values_mut() {
            nodes.sort_by_key(|n| n.ordinal);
        }
        Ok(by_cluster)
    }

    /// Looks up a size in the catalog.
    pub fn size(&self, id: &str) -> Option<&NodeSize> {
        self.sizes.iter().find(|s| s.id == id)
    }

    /// A cluster of the caller's tenant, or 404.
    pub async fn cluster(&self, tenant_id: &str, id: &str) -> Result<marina_common::model::ClusterRecord, Error> {
        self.store
            .get_cluster(Some(tenant_id), id)
            .await?
            .ok_or_else(|| Error::not_found("cluster", id))
    }

    /// Records an event in a cluster's log (best effort: a failure is logged).
    pub async fn event(&self, tenant_id: &str, cluster_id: &str, node_id: Option<&str>, kind: &str, message: String) {
        tracing::info!(cluster_id, node_id, kind, "{message}");
        let e = marina_common::model::Event {
            id: marina_common::ids::new_id(marina_common::ids::prefix::EVENT),
            object: "event",
            event_type: kind.into(),
            message,
            node_id: node_id.map(String::from),
            created_at: marina_common::time_fmt::now_rfc3339(),
        };
        if let Err(err) = self.store.insert_event(tenant_id, cluster_id, &e).await {
            tracing::warn!(error = %err, "could not record event");
        }
    }
}
