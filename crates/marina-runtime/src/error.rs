//! Typed start and stop errors of the runtime.

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong running a node.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A MariaDB binary is missing.
    #[error(
        "{binary} is not installed: run `apt-get install -y mariadb-server mariadb-client mariadb-backup` (or the project's `./scripts/install-deps.sh`)"
    )]
    BinaryMissing { binary: String },
    /// The server exited during start-up.
    #[error("mariadbd for node {node_id} exited during start-up ({status}); last log lines:\n{log_tail}")]
    Exited {
        node_id: String,
        status: String,
        log_tail: String,
    },
    /// The server did not become ready in time.
    #[error("mariadbd for node {node_id} (pid {pid}) was not ready after {waited:?}")]
    TimedOut {
        node_id: String,
        pid: u32,
        waited: Duration,
    },
    /// The node's port is held by another process.
    #[error("port {port} for node {node_id} is already in use by another process")]
    PortInUse { node_id: String, port: u16 },
    /// Template initialisation failed.
    #[error("initialising the MariaDB template failed: {0}")]
    Template(String),
    /// Nodes would run as root because their uids cannot reach the data dir.
    #[error(
        "refusing to run cluster nodes as root: Marina runs each cluster's mariadbd under its own unprivileged uid, \
         and those uids cannot reach the data dir {} because {} (mode {mode:04o}) lets no other user through. \
         Either `chmod o+x {}` (others may then pass through it, not list it), or use a data dir elsewhere \
         (e.g. --data-dir /var/lib/marina), or set `run_as_root = true` under [nodes] in the config to run every \
         node as root on purpose",
        root.display(),
        dir.display(),
        dir.display()
    )]
    RootNodes { root: PathBuf, dir: PathBuf, mode: u32 },
    /// A host agent refused or failed the call (`code` as its API names it).
    #[error("the agent of host {host} answered {code}: {message}")]
    Remote {
        host: String,
        code: String,
        message: String,
    },
    /// File system or process error.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let context = context.into();
        move |source| RuntimeError::Io { context, source }
    }
}
