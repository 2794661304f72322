//! `AgentClient`: the control plane's `NodeRuntime` for a node on an agent
//! host — every call an HTTPS request over mutual TLS (`crate::tls`) to
//! that host's `marina agent`, carrying the control plane's epoch.
//!
//! Paths on the agent's host are the agent's: `node_dir` answers with the
//! nodes directory the agent reported (`GET /v1/host`), for display only;
//! what a node's spec names is rebuilt on the agent's side.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use marina_runtime::{NodeFile, NodeRuntime, NodeSpec, ProcessState, RuntimeError};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::server::MODIFIED_HEADER;
use crate::tls::{Identity, TlsError};
use crate::wire::*;

/// How long a call may take (a node's start waits for its readiness).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long connecting to an agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The epoch calls carry (issue 24's leader fencing token).
pub type EpochSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// One agent host, seen from the control plane.
pub struct AgentClient {
    host_id: String,
    base: String,
    http: reqwest::Client,
    epoch: EpochSource,
    /// The last facts the agent reported.
    facts: RwLock<Option<HostFacts>>,
    /// The MariaDB version it first reported for new nodes.
    default_version: OnceLock<String>,
}

impl AgentClient {
    /// A client for the agent of `host_id` at `address:port`, presenting
    /// `identity` (the control plane's).
    pub fn new(
        host_id: &str,
        address: &str,
        port: u16,
        identity: &Identity,
        epoch: EpochSource,
    ) -> Result<Self, TlsError> {
        let tls = identity.client_config(host_id)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| TlsError::new(format!("building the agent client: {e}")))?;
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_string()
        };
        Ok(AgentClient {
            host_id: host_id.into(),
            base: format!("https://{host}:{port}"),
            http,
            epoch,
            facts: RwLock::new(None),
            default_version: OnceLock::new(),
        })
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The agent's URL, `https://address:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The agent's heartbeat: its facts (kept for `node_dir` and the
    /// default version).
    pub async fn heartbeat(&self, timeout: Duration) -> Result<HostFacts, RuntimeError> {
        let facts: HostFacts = self
            .call_json(Method::GET, "/v1/host", None::<&()>, Some(timeout))
            .await?;
        if facts.host_id != self.host_id {
            return Err(self.remote("wrong_host", format!("the agent answered as host {}", facts.host_id)));
        }
        let _ = self.default_version.set(facts.default_version.clone());
        *self.facts.write().unwrap_or_else(|p| p.into_inner()) = Some(facts.clone());
        Ok(facts)
    }

    /// Whether the agent said it programs endpoints (false until it has
    /// answered a heartbeat).
    pub fn serves_endpoints(&self) -> bool {
        self.facts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|f| f.serves_endpoints)
    }

    /// The agent's stream of its own probes (`GET /v1/observations`),
    /// open until the agent ends it or the connection breaks.
    pub async fn observations(&self) -> Result<ObservationStream, RuntimeError> {
        let path = "/v1/observations";
        let req = self.request(Method::GET, path).timeout(Duration::from_secs(86_400));
        let resp = self.answer(path, req).await?;
        let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(tokio_util::io::StreamReader::new(
            resp.bytes_stream().map_err(std::io::Error::other),
        ));
        Ok(ObservationStream {
            lines: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(reader)),
        })
    }

    /// Sends the endpoint plan this host programs.
    pub async fn set_endpoints(&self, plan: &crate::endpoints::EndpointsBody) -> Result<(), RuntimeError> {
        self.call(Method::PUT, "/v1/endpoints", Some(plan)).await
    }

    /// Sends the self-fencing plan for this host's nodes.
    pub async fn set_fencing(&self, plan: &crate::fencing::FencePlan) -> Result<(), RuntimeError> {
        self.call(Method::PUT, "/v1/fencing", Some(plan)).await
    }

    pub(crate) fn remote(&self, code: &str, message: String) -> RuntimeError {
        RuntimeError::Remote {
            host: self.host_id.clone(),
            code: code.into(),
            message,
        }
    }

    /// A request to the agent carrying the control plane's epoch.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(EPOCH_HEADER, (self.epoch)().to_string())
    }

    /// Sends `req`; an answer other than success is the agent's error.
    pub(crate) async fn answer(
        &self,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RuntimeError> {
        let resp = req
            .send()
            .await
            .map_err(|e| self.remote("unreachable", format!("{path}: {}", error_chain(&e))))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let (code, message) = match resp.json::<ErrorBody>().await {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => ("http".into(), format!("{path}: {status}")),
        };
        Err(RuntimeError::Remote {
            host: self.host_id.clone(),
            code,
            message,
        })
    }

    pub(crate) async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, RuntimeError> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        self.answer(path, req).await
    }

    pub(crate) async fn call_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<T, RuntimeError> {
        let resp = self.send(method, path, body, timeout).await?;
        resp.json()
            .await
            .map_err(|e| self.remote("bad_answer", format!("{path}: {e}")))
    }

    async fn call<B: Serialize>(&self, method: Method, path: &str, body: Option<&B>) -> Result<(), RuntimeError> {
        self.send(method, path, body, None).await.map(drop)
    }
}

/// The lines of `GET /v1/observations`.
pub struct ObservationStream {
    lines: tokio::io::Lines<tokio::io::BufReader<Box<dyn tokio::io::AsyncRead + Send + Unpin>>>,
}

impl ObservationStream {
    /// The next snapshot; `None` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<crate::probes::Observations>, String> {
        match self.lines.next_line().await {
            Ok(Some(line)) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| format!("a bad observation: {e}")),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// An error with its sources (reqwest's own message hides the TLS cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[async_trait]
impl NodeRuntime for AgentClient {
    fn default_version(&self) -> &str {
        // Empty until the agent has answered a heartbeat.
        self.default_version.get().map_or("", String::as_str)
    }

    fn runs_unprivileged(&self) -> bool {
        self.facts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|f| f.unprivileged)
    }

    fn node_dir(&self, node_id: &str) -> PathBuf {
        let root = self
            .facts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|f| PathBuf::from(&f.nodes_dir))
            .unwrap_or_default();
        root.join(node_id)
    }

    async fn prepare(&self, spec: &NodeSpec) -> Result<(), RuntimeError> {
        let path = format!("/v1/nodes/{}", spec.node_id);
        self.call(Method::PUT, &path, Some(&NodeSpecBody::from_spec(spec)))
            .await
    }

    async fn start(&self, spec: &NodeSpec) -> Result<u32, RuntimeError> {
        let path = format!("/v1/nodes/{}/start", spec.node_id);
        let s: Started = self
            .call_json(Method::POST, &path, Some(&NodeSpecBody::from_spec(spec)), None)
            .await?;
        Ok(s.pid)
    }

    async fn state(&self, node_id: &str) -> ProcessState {
        let path = format!("/v1/nodes/{node_id}");
        // An agent that does not answer cannot show the process running.
        match self.call_json::<(), NodeState>(Method::GET, &path, None, None).await {
            Ok(NodeState { pid: Some(pid) }) => ProcessState::Running(pid),
            _ => ProcessState::Stopped,
        }
    }

    async fn open_binlog(&self, node_id: &str, name: &str) -> Result<NodeFile, RuntimeError> {
        if !(valid_node_id(node_id) && plain_name(name)) {
            return Err(self.remote("invalid_request", format!("binlog {name:?} of {node_id:?}")));
        }
        let resp = self
            .send::<()>(Method::GET, &format!("/v1/nodes/{node_id}/binlogs/{name}"), None, None)
            .await?;
        let modified = resp
            .headers()
            .get(MODIFIED_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms));
        let stream = resp.bytes_stream().map_err(std::io::Error::other);
        Ok(NodeFile {
            reader: Box::new(tokio_util::io::StreamReader::new(stream)),
            modified,
        })
    }

    async fn disk_usage(&self, node_id: &str) -> u64 {
        let path = format!("/v1/nodes/{node_id}/disk-usage");
        self.call_json::<(), DiskUsage>(Method::GET, &path, None, None)
            .await
            .map_or(0, |d| d.bytes)
    }

    async fn apply_limits(&self, spec: &NodeSpec) -> Result<(), RuntimeError> {
        let path = format!("/v1/nodes/{}/limits", spec.node_id);
        self.call(Method::PUT, &path, Some(&NodeSpecBody::from_spec(spec)))
            .await
    }

    fn limits_description(&self) -> String {
        self.facts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or_else(|| "unknown (the agent has not answered)".into(), |f| f.limits.clone())
    }

    async fn stop(&self, node_id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let body = StopBody {
            grace_ms: grace.as_millis() as u64,
        };
        self.call(Method::POST, &format!("/v1/nodes/{node_id}/stop"), Some(&body))
            .await
    }

    async fn kill(&self, node_id: &str) -> Result<(), RuntimeError> {
        self.call::<()>(Method::POST, &format!("/v1/nodes/{node_id}/kill"), None)
            .await
    }

    async fn destroy(&self, node_id: &str) -> Result<(), RuntimeError> {
        self.call::<()>(Method::DELETE, &format!("/v1/nodes/{node_id}"), None)
            .await
    }

    async fn nodes_on_disk(&self) -> Result<Vec<String>, RuntimeError> {
        let l: NodeList = self.call_json::<(), _>(Method::GET, "/v1/nodes", None, None).await?;
        Ok(l.node_ids)
    }

    async fn exited(&self, node_id: &str) -> bool {
        let path = format!("/v1/nodes/{node_id}/exit");
        // A long poll: answered when the process exits (no call timeout).
        self.call_json::<(), Exited>(Method::GET, &path, None, Some(Duration::from_secs(86_400)))
            .await
            .is_ok_and(|e| e.exited)
    }
}

/// A binlog name that stays one path segment.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        && name != "."
        && name != ".."
}
