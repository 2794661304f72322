//! The host side of moving a node's data: backups into the blob store,
//! physical copies between nodes, restores into a datadir, and SQL loads and
//! binlog replays into a running node.
//!
//! Everything here reads or writes inside a node's directory or runs a tool
//! against the node's socket, so the control plane asks for it through
//! `NodeData` and never joins a path under a node's directory itself (issue
//! 23's host boundary, `docs/fleet-design.md`). `LocalNodeData` is the
//! in-process implementation that `marina serve` uses on its own machine; a
//! host agent serves the same calls on another.
//!
//! Rules:
//! - A node's directory and its files are named by the runtime
//!   (`NodeRuntime::node_dir`); callers name only plain entries inside it
//!   (scratch directories, markers) and work directories under the host's
//!   `tmp` (`plain` refuses anything else).
//! - Scratch and work directories are fresh (`fresh_dir`: whatever an
//!   earlier attempt left is removed) and private; work directories are
//!   removed when the call ends, however it ends.
//! - A step that installs data writes a marker last, so a resumed step
//!   (`has_marker`) knows it is done.
//! - Failures are `PipelineError`s: a checksum mismatch is a corrupt backup,
//!   the rest a tool, store or file system that failed.

mod dirs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
pub use marina_backup::pipeline::DataStream;
use marina_backup::{BlobStore, Identity, Pace, PipelineError, Produced, pipeline};
use marina_engine::backup as tools;
use marina_runtime::NodeRuntime;

pub use dirs::fresh_dir;
use dirs::{io_err, plain};

/// What a backup of a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupTool {
    /// `mariadb-backup --stream` (`from_replica`: with the replica's SQL
    /// thread stopped for the copy, `--safe-slave-backup`).
    Physical { from_replica: bool },
    /// `mariadb-dump` (its GTID comes at the end of its output).
    Logical,
}

/// The account a load logs in as (passed on descriptor 3, never on a
/// command line).
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

/// The host side of moving a node's data (see the module).
#[async_trait]
pub trait NodeData: Send + Sync + 'static {
    /// Whether the step that ends by writing `marker` in `node`'s directory
    /// finished.
    async fn has_marker(&self, node: &str, marker: &str) -> Result<bool, PipelineError>;

    /// Streams a physical copy of the running node `source` straight into
    /// the fresh scratch directory `scratch` of `target` (both on this
    /// host); returns the copy's GTID position. `work` names the tool's own
    /// work directory.
    async fn copy_from(&self, source: &str, target: &str, scratch: &str, work: &str) -> Result<String, PipelineError>;

    /// A physical copy of the running node `source` as a stream (its
    /// `mbstream` bytes), for a node on another host (`copy_in` there); the
    /// stream ends with an error when the copy fails. `work` names the
    /// tool's work directory, removed when the copy ends.
    async fn copy_out(&self, source: &str, work: &str) -> Result<DataStream, PipelineError>;

    /// Extracts the copy `from` (what `copy_out` streams on another host)
    /// into the fresh scratch directory `scratch` of `target`; returns the
    /// copy's GTID position (from its `xtrabackup_binlog_info`).
    async fn copy_in(&self, target: &str, scratch: &str, from: DataStream) -> Result<String, PipelineError>;

    /// Extracts the physical backup `key` of `blobs` into the fresh scratch
    /// directory `scratch` of `target`.
    async fn extract_backup(
        &self,
        blobs: &dyn BlobStore,
        key: &str,
        target: &str,
        scratch: &str,
    ) -> Result<(), PipelineError>;

    /// Makes the copy in `target`'s `scratch` consistent (`mariadb-backup
    /// --prepare`), installs it as the node's datadir and writes `marker`
    /// (holding `text`).
    async fn install_prepared(
        &self,
        target: &str,
        scratch: &str,
        marker: &str,
        text: &str,
    ) -> Result<(), PipelineError>;

    /// Takes a backup of `node` with `tool` into `blobs` under `key`
    /// (uncommitted), paced by `pace`; `work` names the tool's work
    /// directory.
    async fn backup(
        &self,
        node: &str,
        tool: BackupTool,
        work: &str,
        blobs: &dyn BlobStore,
        key: &str,
        pace: &Pace,
    ) -> Result<Produced, PipelineError>;

    /// Loads the SQL text `key` of `blobs` into the running `node` with the
    /// `mariadb` client, logged in as `login`, as the node's own uid;
    /// `extra` are more client options.
    async fn load_sql(
        &self,
        node: &str,
        login: &Login<'_>,
        extra: &[String],
        blobs: &dyn BlobStore,
        key: &str,
    ) -> Result<(), PipelineError>;

    /// Replays the binlog file `key` of `blobs` into the running `node`
    /// (`mariadb-binlog args <file> | mariadb`, as `load_sql`); the file is
    /// fetched into the work directory `work` first, named `file`.
    async fn replay_binlog(
        &self,
        node: &str,
        login: &Login<'_>,
        blobs: &dyn BlobStore,
        (key, file): (&str, &str),
        args: &[String],
        work: &str,
    ) -> Result<(), PipelineError>;
}

/// `NodeData` on the machine this process runs on.
pub struct LocalNodeData {
    runtime: Arc<dyn NodeRuntime>,
    /// Where work directories go (`<data dir>/tmp`).
    tmp: PathBuf,
}

impl LocalNodeData {
    pub fn new(runtime: Arc<dyn NodeRuntime>, tmp: PathBuf) -> Self {
        LocalNodeData { runtime, tmp }
    }

    /// `name` inside `node`'s directory (a plain name only).
    fn in_node(&self, node: &str, name: &str) -> Result<PathBuf, PipelineError> {
        Ok(self.runtime.node_dir(node).join(plain(name)?))
    }

    fn socket(&self, node: &str) -> PathBuf {
        self.runtime.node_dir(node).join("mariadbd.sock")
    }

    /// A fresh work directory under `tmp`.
    fn work_dir(&self, work: &str) -> Result<PathBuf, PipelineError> {
        let dir = self.tmp.join(plain(work)?);
        fresh_dir(&dir)?;
        Ok(dir)
    }

    /// The `mariadb` client's arguments and identity for loading into `node`.
    fn loader(&self, node: &str, login: &Login<'_>) -> Result<(Vec<String>, Identity), PipelineError> {
        let dir = self.runtime.node_dir(node);
        let who = Identity::owner_of(&dir)
            .map_err(io_err("reading", &dir))?
            .with_fd3(tools::login_options(login.user, login.password));
        Ok((tools::load_args(&self.socket(node)), who))
    }
}

#[async_trait]
impl NodeData for LocalNodeData {
    async fn has_marker(&self, node: &str, marker: &str) -> Result<bool, PipelineError> {
        Ok(self.in_node(node, marker)?.exists())
    }

    async fn copy_from(&self, source: &str, target: &str, scratch: &str, work: &str) -> Result<String, PipelineError> {
        let into = self.in_node(target, scratch)?;
        fresh_dir(&into)?;
        let work_dir = self.work_dir(work)?;
        let data = self.runtime.node_dir(source).join("data");
        let args = tools::physical_backup_args(&self.socket(source), &data, &work_dir);
        let piped = pipeline::pipe(
            Path::new("mariadb-backup"),
            &args,
            Path::new("mbstream"),
            &tools::extract_args(&into),
            &Identity::default(),
        )
        .await;
        let _ = std::fs::remove_dir_all(&work_dir);
        let log = piped?.0;
        tools::parse_physical_gtid(&log).ok_or_else(|| PipelineError::Io("mariadb-backup reported no GTID".into()))
    }

    async fn copy_out(&self, source: &str, work: &str) -> Result<DataStream, PipelineError> {
        let work_dir = self.work_dir(work)?;
        let data = self.runtime.node_dir(source).join("data");
        let args = tools::physical_backup_args(&self.socket(source), &data, &work_dir);
        let cleanup = work_dir.clone();
        let on_end = Box::new(move || {
            let _ = std::fs::remove_dir_all(&cleanup);
        });
        pipeline::stream_out(Path::new("mariadb-backup"), &args, on_end).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&work_dir);
        })
    }

    async fn copy_in(&self, target: &str, scratch: &str, from: DataStream) -> Result<String, PipelineError> {
        let into = self.in_node(target, scratch)?;
        fresh_dir(&into)?;
        pipeline::stream_in(
            from,
            Path::new("mbstream"),
            &tools::extract_args(&into),
            &Identity::default(),
        )
        .await?;
        let info = into.join("xtrabackup_binlog_info");
        let text = std::fs::read_to_string(&info).map_err(io_err("reading", &info))?;
        tools::parse_binlog_info_gtid(&text)
            .ok_or_else(|| PipelineError::Io(format!("the copy names no GTID position ({text:?})")))
    }

    async fn extract_backup(
        &self,
        blobs: &dyn BlobStore,
        key: &str,
        target: &str,
        scratch: &str,
    ) -> Result<(), PipelineError> {
        let into = self.in_node(target, scratch)?;
        fresh_dir(&into)?;
        pipeline::consume(
            blobs,
            key,
            Path::new("mbstream"),
            &tools::extract_args(&into),
            &Identity::default(),
        )
        .await?;
        Ok(())
    }

    async fn install_prepared(
        &self,
        target: &str,
        scratch: &str,
        marker: &str,
        text: &str,
    ) -> Result<(), PipelineError> {
        let (scratch, marker) = (self.in_node(target, scratch)?, self.in_node(target, marker)?);
        dirs::install_prepared(&self.runtime.node_dir(target), &scratch, &marker, text).await
    }

    async fn backup(
        &self,
        node: &str,
        tool: BackupTool,
        work: &str,
        blobs: &dyn BlobStore,
        key: &str,
        pace: &Pace,
    ) -> Result<Produced, PipelineError> {
        let work_dir = self.work_dir(work)?;
        let socket = self.socket(node);
        let (program, args, keep_tail) = match tool {
            BackupTool::Physical { from_replica } => {
                let data = self.runtime.node_dir(node).join("data");
                let mut args = tools::physical_backup_args(&socket, &data, &work_dir);
                if from_replica {
                    args.extend(tools::replica_backup_args());
                }
                ("mariadb-backup", args, false)
            }
            BackupTool::Logical => ("mariadb-dump", tools::logical_dump_args(&socket), true),
        };
        let produced = pipeline::produce(blobs, key, Path::new(program), &args, keep_tail, pace).await;
        let _ = std::fs::remove_dir_all(&work_dir);
        produced
    }

    async fn load_sql(
        &self,
        node: &str,
        login: &Login<'_>,
        extra: &[String],
        blobs: &dyn BlobStore,
        key: &str,
    ) -> Result<(), PipelineError> {
        let (mut args, who) = self.loader(node, login)?;
        args.extend(extra.iter().cloned());
        pipeline::consume(blobs, key, Path::new("mariadb"), &args, &who).await?;
        Ok(())
    }

    async fn replay_binlog(
        &self,
        node: &str,
        login: &Login<'_>,
        blobs: &dyn BlobStore,
        (key, file): (&str, &str),
        args: &[String],
        work: &str,
    ) -> Result<(), PipelineError> {
        let (load_args, who) = self.loader(node, login)?;
        let work_dir = self.work_dir(work)?;
        let result = async {
            let local = work_dir.join(plain(file)?);
            dirs::fetch(blobs, key, &local).await?;
            let mut args = args.to_vec();
            args.push(local.display().to_string());
            pipeline::pipe(
                Path::new("mariadb-binlog"),
                &args,
                Path::new("mariadb"),
                &load_args,
                &who,
            )
            .await
            .map(drop)
        }
        .await;
        let _ = std::fs::remove_dir_all(&work_dir);
        result
    }
}
