//! The agent's data routes: the host side of moving a node's data
//! (`marina_host::NodeData`) served for the control plane — markers,
//! physical copies between nodes of this host, a copy streamed out of a node
//! here or into a node here (a copy between hosts: the control plane relays
//! one agent's stream into the other, both legs over mutual TLS), and
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
