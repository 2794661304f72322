//! Where nodes run. The `NodeRuntime` trait is the seam between services and the
//! machines; `LocalRuntime` runs each node as a detached `mariadbd` process on this
//! host, under `<data-dir>/nodes/<node-id>/`. A Kubernetes or multi-host runtime
//! implements the same trait later: the control plane reaches a node's files
//! only through it (`open_binlog`, …; see `docs/fleet-design.md`).

pub mod cgroup;
pub mod disk;
mod error;
mod local;
mod process;
pub mod template;

pub use error::RuntimeError;
pub use local::{LocalRuntime, START_TIMEOUT_DEFAULT};

use async_trait::async_trait;
use marina_engine::NodeAddr;
use marina_engine::cnf::NodeConfig;

/// Everything needed to run one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub node_id: String,
    /// Option-file inputs; `node_dir` must be `runtime.node_dir(node_id)`.
    pub config: NodeConfig,
    /// Contents of the init file (account hashes only, see `marina_engine::users`).
    pub init_sql: String,
    /// MariaDB version the node runs (selects the template).
    pub version: String,
    /// How to log in to check readiness.
    pub mgmt: NodeAddr,
    /// CPU and memory limits, where the runtime enforces them.
    pub limits: cgroup::Limits,
}

/// A file a node wrote, opened for reading by the control plane.
pub struct NodeFile {
    pub reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    /// When it was last written (`None` where the host cannot say).
    pub modified: Option<std::time::SystemTime>,
}

/// Whether `name` is a plain file name: no directory part, not `.` or `..`,
/// no NUL — what a node's own listing (`SHOW BINARY LOGS`) may name.
pub(crate) fn plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// What the runtime sees of a node's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Running with this pid (identity checked).
    Running(u32),
    /// No process for this node.
    Stopped,
}

/// Runs nodes somewhere.
#[async_trait]
pub trait NodeRuntime: Send + Sync + 'static {
    /// The MariaDB version new nodes get.
    fn default_version(&self) -> &str;
    /// Whether nodes run under the per-cluster uid their config names
    /// (`NodeConfig::run_uid`); when false they run as the control plane's user.
    fn runs_unprivileged(&self) -> bool {
        false
    }
    /// The directory a node lives in.
    fn node_dir(&self, node_id: &str) -> std::path::PathBuf;
    /// Creates the node's directory from the version's template and writes its
    /// option and init files. Idempotent: an existing datadir is kept.
    async fn prepare(&self, spec: &NodeSpec) -> Result<(), RuntimeError>;
    /// Starts the node and waits until it accepts logins, or adopts it if it is
    /// already running. Returns the pid.
    async fn start(&self, spec: &NodeSpec) -> Result<u32, RuntimeError>;
    /// Whether the node's process is running.
    async fn state(&self, node_id: &str) -> ProcessState;
    /// Opens one of the node's binary log files (`name` as `SHOW BINARY
    /// LOGS` lists it, a plain file name) for reading: the archiver copies
    /// the closed ones. Symbolic links are not followed.
    async fn open_binlog(&self, node_id: &str, name: &str) -> Result<NodeFile, RuntimeError>;
    /// Bytes the node's files take on its host (data, binary and relay logs,
    /// temporary files; links not followed): what its disk quota counts.
    async fn disk_usage(&self, node_id: &str) -> u64;
    /// Applies `spec.limits` to the running node (a resize). Runtimes that
    /// enforce no limits do nothing.
    async fn apply_limits(&self, _spec: &NodeSpec) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// The cgroup where a backup's tools run, taking `share` of the CPU busy
    /// nodes want, when the runtime puts nodes in groups (see `cgroup`).
    fn backup_group(&self, _share: cgroup::Share) -> Option<cgroup::IdleGroup> {
        None
    }
    /// How the runtime limits nodes' CPU and memory (for the start-up log).
    fn limits_description(&self) -> String {
        "no CPU/memory limits".into()
    }
    /// Stops the node (SIGTERM, then SIGKILL after `grace`). Stopped is success.
    async fn stop(&self, node_id: &str, grace: std::time::Duration) -> Result<(), RuntimeError>;
    /// Kills the node's process at once (SIGKILL) — a hard fence. A transaction
    /// waiting for a semi-sync acknowledgement dies uncommitted, and crash
    /// recovery at the next start (as a replica) discards it.
    async fn kill(&self, node_id: &str) -> Result<(), RuntimeError>;
    /// Stops the node and removes every file of it. Gone is success.
    async fn destroy(&self, node_id: &str) -> Result<(), RuntimeError>;
    /// Node ids that have a directory (to find orphans).
    async fn nodes_on_disk(&self) -> Result<Vec<String>, RuntimeError>;
    /// Resolves when the node's current process exits: the runtime *knows*
    /// a node died, without waiting for probes to time out. False at once
    /// when no process of the node runs to be watched. The default polls the
    /// process state every 20 ms.
    async fn exited(&self, node_id: &str) -> bool {
        if !matches!(self.state(node_id).await, ProcessState::Running(_)) {
            return false;
        }
        while matches!(self.state(node_id).await, ProcessState::Running(_)) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }
}
