//! Steps shared by the operations that move data between nodes and the blob
//! store (`backup`, `restore_cluster`, `reseed_node`, `add_node`): mapping
//! pipeline failures to errors and a copy of a running node. The host side
//! (directories, tools against a node's socket) is `marina-host`'s
//! `NodeData` (`Marina::data`).

use marina_backup::pipeline;
use marina_common::Error;
use marina_engine::backup as tools;

/// Pipeline failures: a checksum mismatch is a corrupt backup (409), the rest
/// is a tool, store or host file system that failed (503).
pub(super) fn pipeline_err(e: pipeline::PipelineError) -> Error {
    match e {
        pipeline::PipelineError::Checksum { .. } => Error::Conflict(format!("the backup is corrupt: {e}")),
        other => Error::Unavailable(other.to_string()),
    }
}

/// Streams a physical copy of the running node `source` (`mariadb-backup
/// --stream=mbstream`) straight into the scratch directory `scratch` of
/// `target`; returns the copy's GTID position. `work_id` names the tool's
/// work directory.
pub(super) async fn stream_copy(
    app: &crate::Marina,
    work_id: &str,
    source: &marina_common::model::NodeRecord,
    target: &str,
    scratch: &str,
) -> Result<String, Error> {
    let log = app
        .data
        .copy_from(&source.id, target, scratch, work_id)
        .await
        .map_err(pipeline_err)?;
    tools::parse_physical_gtid(&log).ok_or_else(|| Error::Unavailable("mariadb-backup reported no GTID".into()))
}

/// Installs the prepared copy in `target`'s `scratch` as its datadir,
/// writing `marker` (holding `text`) last.
pub(super) async fn install_prepared(
    app: &crate::Marina,
    target: &str,
    scratch: &str,
    marker: &str,
    text: &str,
) -> Result<(), Error> {
    app.data
        .install_prepared(target, scratch, marker, text)
        .await
        .map_err(pipeline_err)
}
