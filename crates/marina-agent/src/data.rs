//! The agent's data routes: the host side of moving a node's data
//! (`marina_host::NodeData`) served for the control plane — markers,
//! physical copies between nodes of this host, a copy streamed out of a node
//! here or into a node here (a copy between this host and the control
//! plane's: relayed by it; between two agent hosts: `crate::peer`), and
//! installing a prepared copy as a node's datadir.
//!
//! Names a request carries (scratch, work and marker entries) are plain
//! entries inside a node's directory or the agent's work area: the host's
//! `NodeData` refuses anything else.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use marina_backup::PipelineError;
use serde::{Deserialize, Serialize};

use crate::server::{AgentError, Fenced, node_id, parse};

type Shared = Arc<crate::server::AgentState>;

/// Whether a marker exists.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MarkerAnswer {
    pub present: bool,
}

/// A physical copy between two nodes of this host.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyFromBody {
    /// The running node copied from.
    pub source: String,
    /// The scratch entry of the target node the copy lands in.
    pub scratch: String,
    /// The tool's work entry.
    pub work: String,
}

/// A copy's GTID position.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GtidAnswer {
    pub gtid: String,
}

/// A copy streamed out of a node.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyOutBody {
    /// The tool's work entry.
    pub work: String,
}

/// Installing a prepared copy.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstallBody {
    pub scratch: String,
    pub marker: String,
    /// What the marker holds (the copy's GTID).
    pub text: String,
}

impl From<PipelineError> for AgentError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Checksum { .. } => AgentError::new(StatusCode::CONFLICT, "corrupt", e.to_string()),
            other => AgentError::new(StatusCode::INTERNAL_SERVER_ERROR, "data", other.to_string()),
        }
    }
}

#[utoipa::path(get, path = "/v1/nodes/{id}/markers/{name}", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path), ("name" = String, Path)), responses((status = 200, body = MarkerAnswer), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch")))]
pub(crate) async fn marker(
    _: Fenced,
    State(s): State<Shared>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, AgentError> {
    let id = node_id(id)?;
    let present = s.data.has_marker(&id, &name).await?;
    Ok(Json(MarkerAnswer { present }).into_response())
}

#[utoipa::path(post, path = "/v1/nodes/{id}/copy-from", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path, description = "the target node")), request_body = CopyFromBody, responses((status = 200, body = GtidAnswer), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn copy_from(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AgentError> {
    let target = node_id(id)?;
    let body: CopyFromBody = parse(&body)?;
    let source = node_id(body.source)?;
    let gtid = s.data.copy_from(&source, &target, &body.scratch, &body.work).await?;
    Ok(Json(GtidAnswer { gtid }).into_response())
}

#[utoipa::path(post, path = "/v1/nodes/{id}/copy-out", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path, description = "the running node copied")), request_body = CopyOutBody, responses((status = 200, content_type = "application/octet-stream", description = "the copy's mbstream bytes; a copy that fails ends the body early (a broken chunked stream)"), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn copy_out(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AgentError> {
    let source = node_id(id)?;
    let body: CopyOutBody = parse(&body)?;
    let stream = s.data.copy_out(&source, &body.work).await?;
    let mut response =
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(stream, 256 * 1024)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

#[utoipa::path(put, path = "/v1/nodes/{id}/copy-in/{scratch}", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path, description = "the target node"), ("scratch" = String, Path)), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "what copy-out streamed on another host"), responses((status = 200, body = GtidAnswer), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn copy_in(
    _: Fenced,
    State(s): State<Shared>,
    Path((id, scratch)): Path<(String, String)>,
    body: Body,
) -> Result<Response, AgentError> {
    let target = node_id(id)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = Box::new(tokio_util::io::StreamReader::new(stream));
    let gtid = s.data.copy_in(&target, &scratch, reader).await?;
    Ok(Json(GtidAnswer { gtid }).into_response())
}

#[utoipa::path(post, path = "/v1/nodes/{id}/install", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path)), request_body = InstallBody, responses((status = 204, description = "prepared, installed as the node's datadir, marker written"), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn install(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AgentError> {
    let target = node_id(id)?;
    let body: InstallBody = parse(&body)?;
    s.data
        .install_prepared(&target, &body.scratch, &body.marker, &body.text)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The blob store a call reads or writes: an S3-compatible bucket (a local
/// directory is the control plane's own and does not cross).
fn store(config: &marina_backup::S3Config) -> Result<marina_backup::S3BlobStore, AgentError> {
    marina_backup::S3BlobStore::new(config)
        .map_err(|e| AgentError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("the store: {e}")))
}

/// How hard a backup may work while the host is busy (`Pace`, without the
/// redo meter: on an agent host the stream is not held below the source's
/// redo rate, so a busy host only gets the tools' idle priority).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaceBody {
    pub busy_rate: u64,
    pub busy_cpus: f64,
    pub stretch: f64,
}

/// Taking a backup of a node into the bucket.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupBody {
    /// `physical`, `physical_replica` (the replica's SQL thread stopped
    /// for the copy) or `logical`.
    pub tool: String,
    pub work: String,
    #[schema(value_type = Object)]
    pub store: marina_backup::S3Config,
    pub key: String,
    pub pace: PaceBody,
}

/// What a backup wrote (uncommitted).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProducedAnswer {
    pub size: u64,
    pub sha256: String,
    /// The end of the tool's log.
    pub log: String,
    /// The end of the uncompressed stream (a dump's GTID comment).
    pub tail: String,
}

/// Extracting a physical backup into a node's scratch entry.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtractBody {
    #[schema(value_type = Object)]
    pub store: marina_backup::S3Config,
    pub key: String,
    pub scratch: String,
}

/// The account a load logs in as (never on a command line: the agent
/// passes it on descriptor 3).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub user: String,
    pub password: String,
}

/// Loading SQL text from the bucket into a running node.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoadSqlBody {
    pub login: LoginBody,
    pub extra: Vec<String>,
    #[schema(value_type = Object)]
    pub store: marina_backup::S3Config,
    pub key: String,
}

/// Replaying a binlog file from the bucket into a running node.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayBody {
    pub login: LoginBody,
    #[schema(value_type = Object)]
    pub store: marina_backup::S3Config,
    pub key: String,
    pub file: String,
    pub args: Vec<String>,
    pub work: String,
}

/// Client options a load may pass: the session's GTID domain (a number)
/// and `mariadb-binlog`'s position and time selections — nothing that reads
/// a file or runs a program.
fn safe_options(options: &[String]) -> Result<(), AgentError> {
    let ok = |o: &String| {
        if let Some(n) = o.strip_prefix("--init-command=SET SESSION gtid_domain_id = ") {
            return !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        }
        ["--start-position=", "--stop-position=", "--stop-datetime="]
            .iter()
            .any(|p| o.starts_with(p))
            && !o.contains(['\n', '\0'])
    };
    match options.iter().find(|o| !ok(o)) {
        Some(o) => Err(AgentError::invalid(format!("option {o:?} is not one a load may pass"))),
        None => Ok(()),
    }
}

#[utoipa::path(post, path = "/v1/nodes/{id}/backup", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path)), request_body = BackupBody, responses((status = 200, body = ProducedAnswer, description = "written to the bucket, not committed"), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn backup(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AgentError> {
    use marina_host::BackupTool;
    use marina_runtime::cgroup::Share;
    let node = node_id(id)?;
    let body: BackupBody = parse(&body)?;
    let (tool, share) = match body.tool.as_str() {
        "physical" => (BackupTool::Physical { from_replica: false }, Share::Idle),
        "physical_replica" => (BackupTool::Physical { from_replica: true }, Share::Idle),
        "logical" => (BackupTool::Logical, Share::Low),
        other => return Err(AgentError::invalid(format!("unknown tool {other:?}"))),
    };
    let blobs = store(&body.store)?;
    let pid = match s.runtime.state(&node).await {
        marina_runtime::ProcessState::Running(pid) => Some(pid),
        marina_runtime::ProcessState::Stopped => None,
    };
    let pace = marina_backup::Pace {
        busy_rate: body.pace.busy_rate,
        busy_cpus: body.pace.busy_cpus,
        exclude: pid.into_iter().collect(),
        redo: None,
        group: s.runtime.backup_group(share),
        stretch: body.pace.stretch,
    };
    let p = s.data.backup(&node, tool, &body.work, &blobs, &body.key, &pace).await?;
    Ok(Json(ProducedAnswer {
        size: p.written.size,
        sha256: p.written.sha256,
        log: p.log,
        tail: p.tail,
    })
    .into_response())
}

#[utoipa::path(post, path = "/v1/nodes/{id}/extract-backup", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path)), request_body = ExtractBody, responses((status = 204, description = "extracted into the scratch entry"), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch or a corrupt backup"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn extract_backup(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AgentError> {
    let node = node_id(id)?;
    let body: ExtractBody = parse(&body)?;
    let blobs = store(&body.store)?;
    s.data.extract_backup(&blobs, &body.key, &node, &body.scratch).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/nodes/{id}/load-sql", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path)), request_body = LoadSqlBody, responses((status = 204, description = "loaded"), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn load_sql(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AgentError> {
    let node = node_id(id)?;
    let body: LoadSqlBody = parse(&body)?;
    safe_options(&body.extra)?;
    let blobs = store(&body.store)?;
    let login = marina_host::Login {
        user: &body.login.user,
        password: &body.login.password,
    };
    s.data.load_sql(&node, &login, &body.extra, &blobs, &body.key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/nodes/{id}/replay-binlog", tag = "agent data", params(crate::server::Epoch, ("id" = String, Path)), request_body = ReplayBody, responses((status = 204, description = "replayed"), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn replay_binlog(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AgentError> {
    let node = node_id(id)?;
    let body: ReplayBody = parse(&body)?;
    safe_options(&body.args)?;
    let blobs = store(&body.store)?;
    let login = marina_host::Login {
        user: &body.login.user,
        password: &body.login.password,
    };
    s.data
        .replay_binlog(&node, &login, &blobs, (&body.key, &body.file), &body.args, &body.work)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_passes_only_the_options_the_control_plane_uses() {
        for ok in [
            "--init-command=SET SESSION gtid_domain_id = 42",
            "--start-position=0-1-5,1-2-9",
            "--stop-datetime=2026-12-07 05:00:00",
        ] {
            assert!(safe_options(&[ok.to_string()]).is_ok(), "{ok}");
        }
        for bad in [
            "--init-command=SET SESSION gtid_domain_id = 1; DROP DATABASE x",
            "--init-command=SELECT 1",
            "--defaults-file=/etc/shadow",
            "--load-data-local-dir=/",
            "--stop-datetime=x\n\\! sh",
        ] {
            assert!(safe_options(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
