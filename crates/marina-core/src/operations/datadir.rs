//! Steps shared by the operations that move data between nodes and the blob
//! store (`backup`, `restore_cluster`, `reseed_node`, `add_node`): mapping
//! pipeline failures to errors and a copy of a running node. The host side
//! (directories, tools against a node's socket) is `marina-host`'s
//! `NodeData` (`Marina::data`).

use marina_backup::pipeline;
use marina_common::Error;
use marina_common::model::NodeRecord;

/// Pipeline failures: a checksum mismatch is a corrupt backup (409), the rest
/// is a tool, store or host file system that failed (503).
pub(super) fn pipeline_err(e: pipeline::PipelineError) -> Error {
    match e {
        pipeline::PipelineError::Checksum { .. } => Error::Conflict(format!("the backup is corrupt: {e}")),
        other => Error::Unavailable(other.to_string()),
    }
}

/// Streams a physical copy of the running node `source` (`mariadb-backup
/// --stream=mbstream`) into the scratch directory `scratch` of `target`;
/// returns the copy's GTID position. On one host the copy goes straight from
/// tool to tool; between two agent hosts the target's agent pulls it from
/// the source's under a one-time ticket (agent to agent over mutual TLS,
/// `marina_agent::peer`); between an agent host and this machine the
/// source's host streams it out and the target's extracts it (relayed
/// here). `work_id` names the tool's work directory.
pub(super) async fn stream_copy(
    app: &crate::Marina,
    work_id: &str,
    source: &NodeRecord,
    target: &NodeRecord,
    scratch: &str,
) -> Result<String, Error> {
    if let (Some(from), Some(to)) = (
        app.agent_on(source.host_id.as_deref()).await?,
        app.agent_on(target.host_id.as_deref()).await?,
    ) && from.host_id() != to.host_id()
    {
        tracing::info!(source = %source.id, target = %target.id, from = from.host_id(), to = to.host_id(), "copy streamed agent to agent");
        return to
            .pull_copy(&from, &source.id, &target.id, scratch, work_id)
            .await
            .map_err(pipeline_err);
    }
    let into = app.data_of(target).await?;
    if app.same_host(source, target) {
        return into
            .copy_from(&source.id, &target.id, scratch, work_id)
            .await
            .map_err(pipeline_err);
    }
    let stream = app
        .data_of(source)
        .await?
        .copy_out(&source.id, work_id)
        .await
        .map_err(pipeline_err)?;
    into.copy_in(&target.id, scratch, stream).await.map_err(pipeline_err)
}

/// Whether the step that ends by writing `marker` in `node`'s directory
/// finished.
pub(super) async fn has_marker(app: &crate::Marina, node: &NodeRecord, marker: &str) -> Result<bool, Error> {
    app.data_of(node)
        .await?
        .has_marker(&node.id, marker)
        .await
        .map_err(pipeline_err)
}

/// Installs the prepared copy in `target`'s `scratch` as its datadir,
/// writing `marker` (holding `text`) last.
pub(super) async fn install_prepared(
    app: &crate::Marina,
    target: &NodeRecord,
    scratch: &str,
    marker: &str,
    text: &str,
) -> Result<(), Error> {
    app.data_of(target)
        .await?
        .install_prepared(&target.id, scratch, marker, text)
        .await
        .map_err(pipeline_err)
}
