//! The agent's API: one route per `NodeRuntime` call, served over mutual
//! TLS (`crate::tls`) by `marina agent`. Handlers are thin: check the
//! epoch, parse, call the host's own `NodeRuntime` (a `LocalRuntime`), map
//! its error once (`AgentError`).
//!
//! Every route but the peer route (`crate::peer`) is served only to the
//! control plane's certificate (403 `forbidden` otherwise) and requires
//! `X-Marina-Epoch`; one older than the largest seen is refused with 409
//! `stale_epoch` before anything acts.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use marina_runtime::{NodeRuntime, ProcessState, RuntimeError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fence::{AdmitError, EpochFence};
use crate::wire::*;

/// The port an agent serves on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7301;

/// The header a binlog's answer carries: when the file was last written
/// (milliseconds since the Unix epoch).
pub const MODIFIED_HEADER: &str = "x-marina-modified-ms";

/// What the agent serves with.
pub struct AgentState {
    pub host_id: String,
    pub runtime: Arc<dyn NodeRuntime>,
    /// The host side of moving nodes' data (`crate::data`).
    pub data: Arc<dyn marina_host::NodeData>,
    pub fence: EpochFence,
    /// Self-fencing of isolated primaries (`crate::fencing`).
    pub fencing: crate::fencing::Fencing,
    /// Management SQL over a node's socket (self-fencing).
    pub admin: Arc<dyn marina_engine::NodeAdmin>,
    /// Programs the endpoints on this host (a forwarding kernel data path;
    /// none: this agent serves no endpoints).
    pub datapath: Option<Arc<dyn marina_endpoints::DataPath>>,
    /// The digest of the endpoint plan applied last.
    pub endpoints_digest: std::sync::Mutex<Option<String>>,
    /// The addresses the control plane's calls came from (admitted to
    /// node ports besides the fleet's hosts).
    pub control_plane: std::sync::Mutex<std::collections::BTreeSet<std::net::Ipv4Addr>>,
    /// The agent's own certificate (pulling copies from other agents).
    pub identity: Arc<crate::tls::Identity>,
    /// Which name a caller's certificate carries.
    pub callers: crate::tls::CallerNames,
    /// Copies offered to other agents (`crate::peer`).
    pub tickets: crate::peer::Tickets,
    /// What the host's own probes of its nodes saw (`crate::probes`).
    pub probes: crate::probes::LocalProbes,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub cpus: u32,
}

type Shared = Arc<AgentState>;

/// The agent's routes.
pub fn router(state: Shared) -> Router {
    use axum::routing::{post, put};
    Router::new()
        .route("/v1/host", get(host))
        .route("/v1/nodes", get(nodes))
        .route("/v1/nodes/{id}", put(prepare).get(state_of).delete(destroy))
        .route("/v1/nodes/{id}/start", post(start))
        .route("/v1/nodes/{id}/limits", put(limits))
        .route("/v1/nodes/{id}/stop", post(stop))
        .route("/v1/nodes/{id}/kill", post(kill))
        .route("/v1/nodes/{id}/disk-usage", get(disk_usage))
        .route("/v1/nodes/{id}/exit", get(exit))
        .route("/v1/nodes/{id}/binlogs/{name}", get(binlog))
        .route("/v1/nodes/{id}/markers/{name}", get(crate::data::marker))
        .route("/v1/nodes/{id}/copy-from", post(crate::data::copy_from))
        .route("/v1/nodes/{id}/copy-out", post(crate::data::copy_out))
        .route("/v1/nodes/{id}/copy-in/{scratch}", put(crate::data::copy_in))
        .route("/v1/nodes/{id}/install", post(crate::data::install))
        .route("/v1/nodes/{id}/backup", post(crate::data::backup))
        .route("/v1/nodes/{id}/extract-backup", post(crate::data::extract_backup))
        .route("/v1/nodes/{id}/load-sql", post(crate::data::load_sql))
        .route("/v1/nodes/{id}/replay-binlog", post(crate::data::replay_binlog))
        .route("/v1/nodes/{id}/copy-offer", post(crate::peer::copy_offer))
        .route("/v1/nodes/{id}/copy-pull", post(crate::peer::copy_pull))
        .route("/v1/peer/copies/{ticket}", post(crate::peer::serve_copy))
        .route("/v1/observations", get(crate::probes::stream))
        .route("/v1/fencing", put(set_fencing))
        .route("/v1/endpoints", put(set_endpoints))
        .fallback(|| async { AgentError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), admit_caller))
        .with_state(state)
}

/// The routes under this prefix are served to other agents (each checks
/// its caller itself); every other route only to the control plane.
const PEER_PREFIX: &str = "/v1/peer/";

/// Refuses a caller whose certificate does not name the control plane,
/// but on the peer routes.
async fn admit_caller(State(s): State<Shared>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let control_plane = req
        .extensions()
        .get::<rustls::pki_types::CertificateDer<'static>>()
        .is_some_and(|c| s.callers.names(c, crate::tls::CONTROL_PLANE_NAME));
    if control_plane || req.uri().path().starts_with(PEER_PREFIX) {
        return next.run(req).await;
    }
    AgentError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "only the control plane's certificate may call this route",
    )
    .into_response()
}

/// An error answer: the main API's JSON shape.
#[derive(Debug)]
pub struct AgentError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AgentError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AgentError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<RuntimeError> for AgentError {
    fn from(e: RuntimeError) -> Self {
        let code = match &e {
            RuntimeError::BinaryMissing { .. } => "binary_missing",
            RuntimeError::Exited { .. } => "exited",
            RuntimeError::TimedOut { .. } => "timed_out",
            RuntimeError::PortInUse { .. } => "port_in_use",
            RuntimeError::Template(_) => "template",
            RuntimeError::RootNodes { .. } => "root_nodes",
            RuntimeError::Remote { .. } => "remote",
            RuntimeError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                return Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string());
            }
            RuntimeError::Io { .. } => "io",
        };
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, e.to_string())
    }
}

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The epoch header, as the OpenAPI document names it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct Epoch {
    /// The control plane's epoch; older than the largest seen is 409 `stale_epoch`.
    #[param(rename = "X-Marina-Epoch")]
    x_marina_epoch: u64,
}

/// The agent API's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Marina host agent API",
        description = "Served by `marina agent` over mutual TLS: every route but /v1/peer/… is served only to the control plane's certificate (signed by its CA, naming control-plane.marina.internal; 403 otherwise); /v1/peer/copies/{ticket} only to the agent a one-time ticket names."
    ),
    paths(
        host,
        nodes,
        prepare,
        start,
        limits,
        state_of,
        stop,
        kill,
        destroy,
        disk_usage,
        exit,
        binlog,
        crate::data::marker,
        crate::data::copy_from,
        crate::data::copy_out,
        crate::data::copy_in,
        crate::data::install,
        crate::data::backup,
        crate::data::extract_backup,
        crate::data::load_sql,
        crate::data::replay_binlog,
        crate::peer::copy_offer,
        crate::peer::copy_pull,
        crate::peer::serve_copy,
        crate::probes::stream,
        set_fencing,
        set_endpoints
    ),
    components(schemas(
        HostFacts,
        NodeList,
        NodeSpecBody,
        Started,
        NodeState,
        StopBody,
        DiskUsage,
        Exited,
        ErrorBody,
        ErrorDetail,
        crate::fencing::FencePlan,
        crate::fencing::FenceNode,
        crate::endpoints::EndpointsBody,
        crate::endpoints::RouteBody,
        crate::endpoints::FenceBody,
        crate::endpoints::GuardBody,
        crate::data::MarkerAnswer,
        crate::data::CopyFromBody,
        crate::data::GtidAnswer,
        crate::data::CopyOutBody,
        crate::data::InstallBody,
        crate::data::PaceBody,
        crate::data::BackupBody,
        crate::data::ProducedAnswer,
        crate::data::ExtractBody,
        crate::data::LoginBody,
        crate::data::LoadSqlBody,
        crate::data::ReplayBody,
        crate::peer::CopyOfferBody,
        crate::peer::CopyTicket,
        crate::peer::CopyPullBody,
        crate::probes::Observations,
        crate::probes::LocalObservation
    ))
)]
pub struct AgentApi;

/// A call admitted by the epoch fence.
pub struct Fenced;

impl FromRequestParts<Shared> for Fenced {
    type Rejection = AgentError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Self::Rejection> {
        let sent = parts
            .headers
            .get(EPOCH_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| AgentError::invalid(format!("the {EPOCH_HEADER} header (a number) is required")))?;
        match state.fence.admit(sent) {
            Ok(()) => {
                state.fencing.heard();
                // Only certificates of the control plane get this far
                // (`admit_caller`).
                if let Some(axum::extract::ConnectInfo(peer)) = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    && let std::net::IpAddr::V4(v4) = peer.ip()
                {
                    let mut cp = state.control_plane.lock().unwrap_or_else(|p| p.into_inner());
                    // A few at most (replicas of the control plane); the
                    // oldest goes first.
                    if cp.insert(v4) && cp.len() > 8 {
                        let first = *cp.iter().next().unwrap_or(&v4);
                        cp.remove(&first);
                    }
                }
                Ok(Fenced)
            }
            Err(AdmitError::Stale(s)) => Err(AgentError::new(
                StatusCode::CONFLICT,
                "stale_epoch",
                format!(
                    "epoch {} is older than {} this agent has seen: a newer control plane leads",
                    s.sent, s.seen
                ),
            )),
            Err(AdmitError::Io(e)) => Err(AgentError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                format!("keeping the epoch: {e}"),
            )),
        }
    }
}

/// A node id from the path that can only name a directory under the
/// agent's nodes directory.
pub(crate) fn node_id(id: String) -> Result<String, AgentError> {
    if valid_node_id(&id) {
        Ok(id)
    } else {
        Err(AgentError::invalid("a node id is 1 to 64 of a-z, 0-9 and _"))
    }
}

pub(crate) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, AgentError> {
    serde_json::from_slice(body).map_err(|e| AgentError::invalid(format!("the body: {e}")))
}

fn json<T: Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}

fn spec(state: &AgentState, id: &str, body: &Bytes) -> Result<marina_runtime::NodeSpec, AgentError> {
    let body: NodeSpecBody = parse(body)?;
    Ok(body.into_spec(id, &state.runtime.node_dir(id), state.runtime.runs_unprivileged()))
}

#[utoipa::path(get, path = "/v1/host", tag = "agent", params(Epoch), responses((status = 200, body = HostFacts), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch")))]
async fn host(_: Fenced, State(s): State<Shared>) -> Response {
    json(HostFacts {
        host_id: s.host_id.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSION,
        default_version: s.runtime.default_version().into(),
        memory_bytes: s.memory_bytes,
        disk_bytes: s.disk_bytes,
        cpus: s.cpus,
        unprivileged: s.runtime.runs_unprivileged(),
        nodes_dir: s
            .runtime
            .node_dir("x")
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        epoch: s.fence.seen(),
        limits: s.runtime.limits_description(),
        fencing_digest: s.fencing.digest(),
        endpoints_digest: s.endpoints_digest.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        serves_endpoints: s.datapath.is_some(),
    })
}

#[utoipa::path(get, path = "/v1/nodes", tag = "agent", params(Epoch), responses((status = 200, body = NodeList), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch")))]
async fn nodes(_: Fenced, State(s): State<Shared>) -> Result<Response, AgentError> {
    Ok(json(NodeList {
        node_ids: s.runtime.nodes_on_disk().await?,
    }))
}

#[utoipa::path(put, path = "/v1/nodes/{id}", tag = "agent", params(Epoch, ("id" = String, Path)), request_body = NodeSpecBody, responses((status = 204, description = "prepared (an existing datadir is kept)"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 500, body = ErrorBody)))]
async fn prepare(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AgentError> {
    let id = node_id(id)?;
    s.runtime.prepare(&spec(&s, &id, &body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/nodes/{id}/start", tag = "agent", params(Epoch, ("id" = String, Path)), request_body = NodeSpecBody, responses((status = 200, body = Started, description = "running and accepting logins (started or adopted)"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 500, body = ErrorBody)))]
async fn start(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AgentError> {
    let id = node_id(id)?;
    let pid = s.runtime.start(&spec(&s, &id, &body)?).await?;
    Ok(json(Started { pid }))
}

#[utoipa::path(put, path = "/v1/nodes/{id}/limits", tag = "agent", params(Epoch, ("id" = String, Path)), request_body = NodeSpecBody, responses((status = 204), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 500, body = ErrorBody)))]
async fn limits(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AgentError> {
    let id = node_id(id)?;
    s.runtime.apply_limits(&spec(&s, &id, &body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/nodes/{id}", tag = "agent", params(Epoch, ("id" = String, Path)), responses((status = 200, body = NodeState), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch")))]
async fn state_of(_: Fenced, State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, AgentError> {
    let id = node_id(id)?;
    let pid = match s.runtime.state(&id).await {
        ProcessState::Running(pid) => Some(pid),
        ProcessState::Stopped => None,
    };
    Ok(json(NodeState { pid }))
}

#[utoipa::path(post, path = "/v1/nodes/{id}/stop", tag = "agent", params(Epoch, ("id" = String, Path)), request_body = StopBody, responses((status = 204, description = "stopped (or was)"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 500, body = ErrorBody)))]
async fn stop(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AgentError> {
    let id = node_id(id)?;
    let body: StopBody = parse(&body)?;
    s.runtime
        .stop(&id, Duration::from_millis(body.grace_ms.min(600_000)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/nodes/{id}/kill", tag = "agent", params(Epoch, ("id" = String, Path)), responses((status = 204, description = "killed (SIGKILL)"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 500, body = ErrorBody)))]
async fn kill(_: Fenced, State(s): State<Shared>, Path(id): Path<String>) -> Result<StatusCode, AgentError> {
    let id = node_id(id)?;
    s.runtime.kill(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/nodes/{id}", tag = "agent", params(Epoch, ("id" = String, Path)), responses((status = 204, description = "stopped and every file removed (or gone)"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 500, body = ErrorBody)))]
async fn destroy(_: Fenced, State(s): State<Shared>, Path(id): Path<String>) -> Result<StatusCode, AgentError> {
    let id = node_id(id)?;
    s.runtime.destroy(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/nodes/{id}/disk-usage", tag = "agent", params(Epoch, ("id" = String, Path)), responses((status = 200, body = DiskUsage), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch")))]
async fn disk_usage(_: Fenced, State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, AgentError> {
    let id = node_id(id)?;
    Ok(json(DiskUsage {
        bytes: s.runtime.disk_usage(&id).await,
    }))
}

#[utoipa::path(get, path = "/v1/nodes/{id}/exit", tag = "agent", params(Epoch, ("id" = String, Path)), responses((status = 200, body = Exited, description = "answered when the node's process exits (a long poll)"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch")))]
async fn exit(_: Fenced, State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, AgentError> {
    let id = node_id(id)?;
    Ok(json(Exited {
        exited: s.runtime.exited(&id).await,
    }))
}

#[utoipa::path(put, path = "/v1/fencing", tag = "agent", params(Epoch), request_body = crate::fencing::FencePlan, responses((status = 204, description = "the plan the watchdog fences isolated primaries by"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch")))]
async fn set_fencing(_: Fenced, State(s): State<Shared>, body: Bytes) -> Result<StatusCode, AgentError> {
    let plan: crate::fencing::FencePlan = parse(&body)?;
    if !(500..=600_000).contains(&plan.fence_after_ms) {
        return Err(AgentError::invalid("fence_after_ms must be 500 to 600000"));
    }
    for n in &plan.nodes {
        node_id(n.node_id.clone())?;
        if n.peers.iter().any(|p| p.parse::<std::net::SocketAddr>().is_err()) {
            return Err(AgentError::invalid("peers are address:port"));
        }
    }
    s.fencing.set_plan(plan);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/v1/endpoints", tag = "agent", params(Epoch), request_body = crate::endpoints::EndpointsBody, responses((status = 204, description = "this host's endpoints are exactly the plan's"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 500, body = ErrorBody)))]
async fn set_endpoints(_: Fenced, State(s): State<Shared>, body: Bytes) -> Result<StatusCode, AgentError> {
    let body: crate::endpoints::EndpointsBody = parse(&body)?;
    let digest = body.digest();
    let control_plane: Vec<std::net::Ipv4Addr> = s
        .control_plane
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect();
    let plan = body.into_plan(&control_plane).map_err(AgentError::invalid)?;
    let Some(datapath) = &s.datapath else {
        return Err(AgentError::new(
            StatusCode::CONFLICT,
            "no_endpoints",
            "this agent serves no endpoints (marina agent --endpoints none)",
        ));
    };
    datapath
        .apply(&plan)
        .await
        .map_err(|e| AgentError::new(StatusCode::INTERNAL_SERVER_ERROR, "endpoints", e.to_string()))?;
    *s.endpoints_digest.lock().unwrap_or_else(|p| p.into_inner()) = Some(digest);
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the self-fencing watchdog until the process ends.
pub fn spawn_watchdog(state: Shared) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(crate::fencing::TICK).await;
            let runtime = state.runtime.clone();
            let socket_of = move |id: &str| runtime.node_dir(id).join("mariadbd.sock").display().to_string();
            state.fencing.tick(state.admin.as_ref(), &socket_of).await;
        }
    })
}

#[utoipa::path(get, path = "/v1/nodes/{id}/binlogs/{name}", tag = "agent", params(Epoch, ("id" = String, Path), ("name" = String, Path)), responses((status = 200, content_type = "application/octet-stream", description = "the file's bytes; x-marina-modified-ms: when it was last written"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "stale_epoch"), (status = 404, body = ErrorBody)))]
async fn binlog(
    _: Fenced,
    State(s): State<Shared>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, AgentError> {
    let id = node_id(id)?;
    let file = s.runtime.open_binlog(&id, &name).await?;
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(file.reader)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(ms) = file
        .modified
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
    {
        headers.insert(MODIFIED_HEADER, HeaderValue::from(ms as u64));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    /// `docs/agent-openapi.json` is the generated document (regenerate it
    /// with `UPDATE_AGENT_OPENAPI=1 cargo test -p marina-agent`), and it
    /// names every route the router serves.
    #[test]
    fn the_agent_openapi_document_is_current_and_complete() {
        let doc = super::AgentApi::openapi();
        let text = doc.to_pretty_json().unwrap() + "\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/agent-openapi.json");
        if std::env::var_os("UPDATE_AGENT_OPENAPI").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == text,
            "docs/agent-openapi.json is stale: UPDATE_AGENT_OPENAPI=1 cargo test -p marina-agent"
        );
        let src = include_str!("server.rs");
        let routes: Vec<&str> = src
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".route(\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(routes.len(), 25);
        for r in routes {
            assert!(doc.paths.paths.contains_key(r), "{r} is not documented");
        }
    }
}
