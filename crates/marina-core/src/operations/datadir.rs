//! Steps shared by the operations that move data between nodes and the blob
//! store (`backup`, `restore_cluster`, `reseed_node`): scratch directories,
//! swapping a prepared physical copy in as a node's datadir, and mapping
//! pipeline failures to errors.

use std::path::{Path, PathBuf};

use marina_backup::pipeline;
use marina_common::Error;
use marina_engine::backup as tools;

/// Pipeline failures: a checksum mismatch is a corrupt backup (409), the rest
/// is a tool or store that failed (503).
pub(super) fn pipeline_err(e: pipeline::PipelineError) -> Error {
    match e {
        pipeline::PipelineError::Checksum { .. } => Error::Conflict(format!("the backup is corrupt: {e}")),
        other => Error::Unavailable(other.to_string()),
    }
}

fn fs_err(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let what = format!("{what} {}", p.display());
    move |e| Error::internal(format!("{what}: {e}"))
}

/// An empty directory at `dir`, 0700 (whatever an earlier attempt left is
/// removed; a link planted there is removed, never followed, and `mkdir`
/// fails rather than reuse a name someone recreated in between).
pub(super) fn fresh_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::remove_dir_all(dir);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(fs_err("creating", parent))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(fs_err("creating", dir))
}

/// Makes the physical copy extracted in `scratch` consistent (`mariadb-backup
/// --prepare`), installs it as `<node_dir>/data` and writes `marker` (with
/// `marker_text`) so a resumed step knows it is done.
pub(super) async fn install_prepared(
    node_dir: &Path,
    scratch: &Path,
    marker: &Path,
    marker_text: &str,
) -> Result<(), Error> {
    pipeline::run(&PathBuf::from("mariadb-backup"), &tools::prepare_args(scratch))
        .await
        .map_err(pipeline_err)?;
    let data = node_dir.join("data");
    match std::fs::remove_dir_all(&data) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fs_err("removing", &data)(e)),
    }
    std::fs::rename(scratch, &data).map_err(fs_err("installing", &data))?;
    // The node's directory belongs to its uid: never write through a link.
    marina_common::files::create_private(marker, marker_text.as_bytes()).map_err(fs_err("writing", marker))
}

/// Streams a physical copy of the running node `source` (`mariadb-backup
/// --stream=mbstream`, at idle priority on the source's side) straight into
/// `mbstream -x` in `scratch`; returns the copy's GTID position. `work_id`
/// names the tool's own scratch directory.
pub(super) async fn stream_copy(
    app: &crate::Marina,
    work_id: &str,
    source: &marina_common::model::NodeRecord,
    scratch: &Path,
) -> Result<String, Error> {
    let dir = app.runtime.node_dir(&source.id);
    let work = app.config.data_dir.join("tmp").join(work_id);
    fresh_dir(&work)?;
    let args = tools::physical_backup_args(&dir.join("mariadbd.sock"), &dir.join("data"), &work);
    let piped = pipeline::pipe(
        &PathBuf::from("mariadb-backup"),
        &args,
        &PathBuf::from("mbstream"),
        &tools::extract_args(scratch),
        &marina_backup::Identity::default(),
    )
    .await;
    let _ = std::fs::remove_dir_all(&work);
    let (log, _) = piped.map_err(pipeline_err)?;
    tools::parse_physical_gtid(&log).ok_or_else(|| Error::Unavailable("mariadb-backup reported no GTID".into()))
}
