//! `LocalRuntime`: nodes as detached `mariadbd` processes on this host.
//!
//! - Layout: `<root>/nodes/<node-id>/{data/, my.cnf, init.sql, mariadbd.pid,
//!   mariadbd.sock, error.log}`; templates in `<root>/templates/<version>/`.
//! - Processes run in their own process group with a cleared environment, so they
//!   survive the control plane (and its terminal's signals). A restarted control
//!   plane adopts them through the pid file, checked against `/proc/<pid>/cmdline`
//!   (`--defaults-file=<node-dir>/my.cnf`), so it never starts a duplicate or kills
//!   a stranger.
//! - A node whose config names a `run_uid` runs as that uid and gid (no
//!   supplementary groups) and its directory is owned by it: one uid per
//!   cluster keeps clusters out of each other's files and lets the kernel data
//!   path tell a cluster's own nodes from other local processes. The data dir
//!   root and `nodes/` are made traversable (`o+x`, not listable) for it.
//!   When Marina is not root, nodes run as Marina's own user. When Marina is
//!   root and an ancestor of the data dir is not traversable (a clone in
//!   `/root`), nodes would run as root: `check_node_users` refuses that
//!   unless `nodes.run_as_root` asks for it (it once only logged a warning).
//! - Readiness is a login with the management account, polled to a deadline; a
//!   process that exits first is reported with the tail of its log.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use marina_engine::NodeAdmin;

use crate::process::{is_our_process, log_tail, port_busy, read_pid, signal, wait_exit};
use crate::{NodeRuntime, NodeSpec, ProcessState, RuntimeError, template};

/// Default deadline for a node to become ready.
pub const START_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);

/// Runs nodes as local processes.
pub struct LocalRuntime {
    /// The data dir root (`<data-dir>`).
    root: PathBuf,
    /// Path of `mariadbd`.
    mariadbd: PathBuf,
    /// Path of `mariadb-install-db`.
    install_db: PathBuf,
    /// Version `mariadbd` reports.
    version: String,
    /// Optional shared template cache.
    template_cache: Option<PathBuf>,
    /// Used to check readiness.
    admin: Arc<dyn NodeAdmin>,
    /// Start-up deadline.
    start_timeout: Duration,
    /// One template build at a time in this process.
    template_lock: tokio::sync::Mutex<()>,
    /// Which user nodes can run as (see the module doc).
    node_users: crate::process::NodeUsers,
    /// How node processes are limited (see `cgroup`).
    cgroups: crate::cgroup::Cgroups,
}

impl LocalRuntime {
    /// Limits nodes through the host's cgroups (v2, else v1), their groups
    /// under `parent`; without usable controllers nodes run unlimited.
    pub fn with_cgroups(mut self, parent: &str) -> Self {
        self.cgroups = crate::cgroup::Cgroups::detect(Path::new("/sys/fs/cgroup"), parent);
        self
    }

    /// Puts a node's process in its group with the spec's limits; a failure is
    /// logged (a node is better running unlimited than not at all).
    fn limit(&self, spec: &NodeSpec, pid: u32) {
        if let Err(e) = self.cgroups.apply(&spec.node_id, Some(pid), spec.limits) {
            tracing::warn!(node_id = %spec.node_id, error = %e, "cannot apply the node's cgroup limits");
        }
    }

    /// Refuses a data dir under which nodes would run as root without anyone
    /// asking for it: with `run_as_root` false and Marina root, a node uid
    /// must be able to reach the data dir. Running every node as root puts
    /// all clusters, and any file a compromised `mariadbd` can reach, under
    /// one uid; that must be an explicit choice (`nodes.run_as_root`).
    pub fn check_node_users(&self, run_as_root: bool) -> Result<(), RuntimeError> {
        match &self.node_users {
            crate::process::NodeUsers::Blocked { dir, mode } if !run_as_root => Err(RuntimeError::RootNodes {
                root: self.root.clone(),
                dir: dir.clone(),
                mode: *mode,
            }),
            _ => Ok(()),
        }
    }

    /// Finds the MariaDB binaries and their version. Fails with `BinaryMissing`
    /// (and how to install it) when MariaDB is not installed.
    pub fn new(
        root: &Path,
        template_cache: Option<PathBuf>,
        admin: Arc<dyn NodeAdmin>,
        start_timeout: Duration,
    ) -> Result<Self, RuntimeError> {
        let mariadbd = template::find_binary("mariadbd")?;
        let install_db = template::find_binary("mariadb-install-db")?;
        let version = template::detect_version(&mariadbd)?;
        let node_users = crate::process::prepare_unprivileged_root(root);
        Ok(LocalRuntime {
            root: root.to_path_buf(),
            mariadbd,
            install_db,
            version,
            template_cache,
            admin,
            start_timeout,
            template_lock: tokio::sync::Mutex::new(()),
            node_users,
            cgroups: crate::cgroup::Cgroups::None,
        })
    }

    fn nodes_root(&self) -> PathBuf {
        self.root.join("nodes")
    }

    fn identity(&self, node_id: &str) -> String {
        format!("--defaults-file={}", self.node_dir(node_id).join("my.cnf").display())
    }

    fn running_pid(&self, node_id: &str) -> Option<u32> {
        let pid = read_pid(&self.node_dir(node_id).join("mariadbd.pid"))?;
        is_our_process(pid, &self.identity(node_id)).then_some(pid)
    }

    /// Makes sure the template for `version` exists; returns its datadir.
    pub async fn ensure_template(&self, version: &str) -> Result<PathBuf, RuntimeError> {
        let _one_at_a_time = self.template_lock.lock().await;
        template::ensure(
            &self.root.join("templates"),
            version,
            &self.install_db,
            self.template_cache.as_deref(),
        )
        .await
    }
}

/// Writes a file into a node's directory, which the node's uid owns: never
/// through a link planted there (see `marina_common::files`).
fn write_private(path: &Path, contents: &str) -> Result<(), RuntimeError> {
    marina_common::files::replace_private(path, contents.as_bytes())
        .map_err(RuntimeError::io(format!("writing {}", path.display())))
}

#[async_trait]
impl NodeRuntime for LocalRuntime {
    fn default_version(&self) -> &str {
        &self.version
    }

    fn runs_unprivileged(&self) -> bool {
        self.node_users == crate::process::NodeUsers::PerCluster
    }

    fn node_dir(&self, node_id: &str) -> PathBuf {
        self.nodes_root().join(node_id)
    }

    async fn prepare(&self, spec: &NodeSpec) -> Result<(), RuntimeError> {
        let dir = self.node_dir(&spec.node_id);
        std::fs::create_dir_all(&dir).map_err(RuntimeError::io(format!("creating {}", dir.display())))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(RuntimeError::io("chmod 700"))?;
        let data = dir.join("data");
        if !data.is_dir() {
            let template = self.ensure_template(&spec.version).await?;
            let tmp = dir.join("data.cloning");
            let _ = std::fs::remove_dir_all(&tmp);
            template::sparse_copy(&template, &tmp).await?;
            std::fs::rename(&tmp, &data).map_err(RuntimeError::io("installing datadir"))?;
        }
        let tmpdir = spec.config.tmp_path();
        std::fs::create_dir_all(&tmpdir).map_err(RuntimeError::io(format!("creating {}", tmpdir.display())))?;
        write_private(&spec.config.init_path(), &spec.init_sql)?;
        write_private(&spec.config.cnf_path(), &marina_engine::cnf::render(&spec.config))?;
        Ok(())
    }

    async fn start(&self, spec: &NodeSpec) -> Result<u32, RuntimeError> {
        let node_id = &spec.node_id;
        if let Some(pid) = self.running_pid(node_id) {
            tracing::debug!(node_id, pid, "adopting running node");
            self.limit(spec, pid);
            return Ok(pid);
        }
        if port_busy(&spec.config.bind_address, spec.config.port) {
            return Err(RuntimeError::PortInUse {
                node_id: node_id.clone(),
                port: spec.config.port,
            });
        }
        let dir = self.node_dir(node_id);
        let log_path = spec.config.log_path();
        let log = marina_common::files::open_append(&log_path).map_err(RuntimeError::io("opening node log"))?;
        let log2 = log.try_clone().map_err(RuntimeError::io("cloning log handle"))?;
        let mut cmd = tokio::process::Command::new(&self.mariadbd);
        if let Some(uid) = spec.config.run_uid.filter(|_| self.runs_unprivileged()) {
            crate::process::chown_tree(&dir, uid)?;
            cmd.uid(uid).gid(uid);
        }
        let mut child = cmd
            .arg(self.identity(node_id))
            .current_dir(&dir)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RuntimeError::BinaryMissing {
                    binary: "mariadbd".into(),
                },
                _ => RuntimeError::io("spawning mariadbd")(e),
            })?;
        let pid = child.id().unwrap_or_default();
        self.limit(spec, pid);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(RuntimeError::Exited {
                    node_id: node_id.clone(),
                    status: status.to_string(),
                    log_tail: log_tail(&log_path, 15),
                });
            }
            if self.admin.ping(&spec.mgmt).await.is_ok() {
                return Ok(pid);
            }
            if started.elapsed() > self.start_timeout {
                // Do not leave a half-started server behind.
                signal(pid, libc::SIGKILL);
                let _ = child.wait().await;
                return Err(RuntimeError::TimedOut {
                    node_id: node_id.clone(),
                    pid,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }

    async fn apply_limits(&self, spec: &NodeSpec) -> Result<(), RuntimeError> {
        let pid = self.running_pid(&spec.node_id);
        self.cgroups
            .apply(&spec.node_id, pid, spec.limits)
            .map_err(RuntimeError::io(format!("limiting node {}", spec.node_id)))
    }

    fn limits_description(&self) -> String {
        self.cgroups.describe()
    }

    fn backup_group(&self, share: crate::cgroup::Share) -> Option<crate::cgroup::IdleGroup> {
        self.cgroups.backup_group(share).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot make the idle cgroup: backups compete with nodes for CPU");
            None
        })
    }

    async fn exited(&self, node_id: &str) -> bool {
        let Some(pid) = self.running_pid(node_id) else {
            return false;
        };
        let identity = self.identity(node_id);
        crate::process::exited(pid, || is_our_process(pid, &identity)).await;
        true
    }

    async fn disk_usage(&self, node_id: &str) -> u64 {
        let dir = self.node_dir(node_id);
        tokio::task::spawn_blocking(move || crate::disk::allocated_bytes(&dir))
            .await
            .unwrap_or(0)
    }

    async fn open_binlog(&self, node_id: &str, name: &str) -> Result<crate::NodeFile, RuntimeError> {
        if !crate::plain_file_name(name) {
            return Err(RuntimeError::Io {
                context: format!("binlog file name {name:?}"),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain file name"),
            });
        }
        let path = self.node_dir(node_id).join("data").join(name);
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .await
            .map_err(RuntimeError::io(format!("opening binlog {}", path.display())))?;
        let modified = f.metadata().await.and_then(|m| m.modified()).ok();
        Ok(crate::NodeFile {
            reader: Box::new(f),
            modified,
        })
    }

    async fn state(&self, node_id: &str) -> ProcessState {
        match self.running_pid(node_id) {
            Some(pid) => ProcessState::Running(pid),
            None => ProcessState::Stopped,
        }
    }

    async fn stop(&self, node_id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let Some(pid) = self.running_pid(node_id) else {
            return Ok(());
        };
        let identity = self.identity(node_id);
        signal(pid, libc::SIGTERM);
        if !wait_exit(grace, || is_our_process(pid, &identity)).await {
            tracing::warn!(node_id, pid, "mariadbd did not stop in time; killing it");
            signal(pid, libc::SIGKILL);
            wait_exit(Duration::from_secs(10), || is_our_process(pid, &identity)).await;
        }
        Ok(())
    }

    async fn kill(&self, node_id: &str) -> Result<(), RuntimeError> {
        let Some(pid) = self.running_pid(node_id) else {
            return Ok(());
        };
        let identity = self.identity(node_id);
        signal(pid, libc::SIGKILL);
        wait_exit(Duration::from_secs(10), || is_our_process(pid, &identity)).await;
        Ok(())
    }

    async fn destroy(&self, node_id: &str) -> Result<(), RuntimeError> {
        self.stop(node_id, Duration::from_secs(10)).await?;
        self.cgroups.remove(node_id);
        let dir = self.node_dir(node_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io(format!("removing {}", dir.display()))(e)),
        }
    }

    async fn nodes_on_disk(&self) -> Result<Vec<String>, RuntimeError> {
        let entries = match std::fs::read_dir(self.nodes_root()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(RuntimeError::io("listing nodes")(e)),
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }
}
