//! Host agents seen from the control plane: one `AgentClient` per agent
//! host (mutual TLS with the control plane's own certificate), the routing
//! of a node's runtime calls to its host, and the heartbeat that makes a
//! joined host `active` and a silent one `down`.
//!
//! Rules:
//! - A joined host is `down` until its agent answers a heartbeat (`GET
//!   /v1/host` over mutual TLS, naming the host its certificate names);
//!   then it is `active`.
//! - An `active` host whose agent has not answered for
//!   `hosts.down_after_ms` (counted from its last answer, or from its join)
//!   is `down`. An operator's `cordoned` or `draining` stays whatever the
//!   agent does (the heartbeat still refreshes the host's facts).
//! - The decision is pure (`decide`, table-tested); the writes are guarded
//!   (`host_heard` moves only `down` to `active`, `set_host_status` only
//!   `active` to `down`).
//! - A node's runtime calls (prepare, start, stop, kill, destroy, state,
//!   limits, disk usage, binlogs, exit watch) go to its host: this
//!   machine's `LocalRuntime` for the local host (or a node with no host),
//!   else its agent (`runtime_of`). Its management connections go to its
//!   socket on this machine, over TCP to its address elsewhere
//!   (`mgmt_addr`).
//! - Copies between nodes (an added replica, a reseed) go to the nodes'
//!   hosts (`data_of`): on one host, that host copies; between two agent
//!   hosts, the target's agent pulls it from the source's under a one-time
//!   ticket; between an agent host and this machine, the control plane
//!   relays it (mutual TLS throughout). Backups, restores and
//!   SQL loads run on the node's host too, against the blob store: with an
//!   S3-compatible store any host reaches it; with a local directory only
//!   this machine does, so backups take their source among the nodes here
//!   and restored nodes are placed here (`Marina::place`, `data_in`).
//! - The supervisor leaves nodes on a `down` host alone (no restart
//!   attempts against an agent that does not answer).
//! - Each agent host's stream of its own probes is followed from the
//!   heartbeat (`host_probes`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use marina_agent::AgentClient;
use marina_agent::endpoints::EndpointsBody;
use marina_agent::fencing::{FenceNode, FencePlan};
use marina_agent::wire::HostFacts;
use marina_common::model::{HostFactsUpdate, HostRecord, HostStatus, NodeRecord, NodeRole};
use marina_common::{Error, time_fmt};
use marina_runtime::NodeRuntime;
use serde_json::{Value, json};

use crate::Marina;

/// The clients of agent hosts, made on first use.
#[derive(Default)]
pub struct Agents {
    clients: Mutex<HashMap<String, Dialled>>,
    /// The digest of the endpoint plan each agent host holds, as far as
    /// the control plane knows (its answer to a push, or its heartbeat).
    endpoints_held: Arc<Mutex<HashMap<String, Option<String>>>>,
    /// Endpoint plans pushed so far (the newest wins a host's turn).
    pushes: Arc<AtomicU64>,
    /// One push at a time per host.
    push_turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The local host's id, once registered.
    local: std::sync::OnceLock<String>,
    /// What each agent host's own probes see of its nodes.
    pub host_views: crate::host_probes::HostViews,
}

/// A client with the address and port it calls.
struct Dialled {
    address: String,
    port: u16,
    client: Arc<AgentClient>,
}

/// How long one push of the endpoint plan to an agent may take.
const ENDPOINT_PUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// What a heartbeat round does to one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMove {
    /// Its agent answered: refresh its facts (and `down` → `active`).
    Heard,
    /// Silent too long while active: mark it `down`.
    Lost,
    /// Nothing to write.
    Keep,
}

/// The move for a host in `status` whose agent answered or not, silent for
/// `silent_ms` since its last answer (or its join).
pub fn decide(status: HostStatus, answered: bool, silent_ms: u64, down_after_ms: u64) -> HostMove {
    if answered {
        HostMove::Heard
    } else if status == HostStatus::Active && silent_ms >= down_after_ms {
        HostMove::Lost
    } else {
        HostMove::Keep
    }
}

impl Marina {
    /// The control plane's epoch (issue 24's leader fencing token; a
    /// constant until leaders are elected).
    pub fn epoch(&self) -> u64 {
        marina_agent::wire::CONSTANT_EPOCH
    }

    /// Remembers the local host's id (at start).
    pub(crate) fn set_local_host(&self, id: &str) {
        let _ = self.agents.local.set(id.to_string());
    }

    /// Whether a node on `host_id` runs on this machine, in-process (no
    /// host recorded: a node from before hosts existed).
    pub fn on_local_host(&self, host_id: Option<&str>) -> bool {
        match (host_id, self.agents.local.get()) {
            (None, _) => true,
            (Some(h), Some(local)) => h == local,
            // Before registration every node is this machine's.
            (Some(_), None) => true,
        }
    }

    /// The agent client of a node on `host_id`, or `None` when the node
    /// runs on this machine (no host, or the local host).
    pub(crate) async fn agent_on(&self, host_id: Option<&str>) -> Result<Option<Arc<AgentClient>>, Error> {
        let Some(id) = host_id.filter(|h| !self.on_local_host(Some(h))) else {
            return Ok(None);
        };
        let host = self
            .store
            .get_host(id)
            .await?
            .ok_or_else(|| Error::internal(format!("a node names host {id}, which is not registered")))?;
        if host.local {
            return Ok(None);
        }
        Ok(Some(self.agent(&host)?))
    }

    /// The runtime of a node on `host_id`: this machine's, or the client
    /// of its host's agent.
    pub async fn runtime_on(&self, host_id: Option<&str>) -> Result<Arc<dyn NodeRuntime>, Error> {
        Ok(match self.agent_on(host_id).await? {
            Some(agent) => agent,
            None => self.runtime.clone(),
        })
    }

    /// Whether `host_id`'s agent answers heartbeats (the local host always
    /// does): the supervisor leaves nodes on a `down` host alone.
    pub async fn host_answering(&self, host_id: Option<&str>) -> bool {
        match host_id.filter(|h| !self.on_local_host(Some(h))) {
            None => true,
            Some(id) => matches!(self.store.get_host(id).await, Ok(Some(h)) if h.status != HostStatus::Down),
        }
    }

    /// The runtime of `node`'s host.
    pub async fn runtime_of(&self, node: &marina_common::model::NodeRecord) -> Result<Arc<dyn NodeRuntime>, Error> {
        self.runtime_on(node.host_id.as_deref()).await
    }

    /// The host side of `node`'s data (markers, copies, installs; backups
    /// and restores only on this machine so far): this machine's
    /// `LocalNodeData`, or its host's agent.
    pub async fn data_of(&self, node: &NodeRecord) -> Result<Arc<dyn marina_host::NodeData>, Error> {
        Ok(match self.agent_on(node.host_id.as_deref()).await? {
            Some(agent) => agent,
            None => self.data.clone(),
        })
    }

    /// Whether two nodes run on the same host (a copy between them stays
    /// on it).
    pub fn same_host(&self, a: &NodeRecord, b: &NodeRecord) -> bool {
        let key = |n: &NodeRecord| (!self.on_local_host(n.host_id.as_deref())).then(|| n.host_id.clone());
        key(a) == key(b)
    }

    /// The client of `host`'s agent (kept while its address and port stay).
    pub fn agent(&self, host: &HostRecord) -> Result<Arc<AgentClient>, Error> {
        let port = host
            .agent_port
            .ok_or_else(|| Error::internal(format!("host {} has no agent", host.id)))?;
        let mut clients = self.agents.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = clients.get(&host.id)
            && d.address == host.address
            && d.port == port
        {
            return Ok(d.client.clone());
        }
        let client = Arc::new(
            AgentClient::new(
                &host.id,
                &host.address,
                port,
                &self.ca.identity()?,
                Arc::new(|| marina_agent::wire::CONSTANT_EPOCH),
            )
            .map_err(Error::internal)?,
        );
        clients.insert(
            host.id.clone(),
            Dialled {
                address: host.address.clone(),
                port,
                client: client.clone(),
            },
        );
        Ok(client)
    }

    /// One heartbeat round over every agent host; returns what it saw.
    pub async fn heartbeat_agents(&self) -> Result<Value, Error> {
        let hosts: Vec<HostRecord> = self
            .store
            .list_hosts()
            .await?
            .into_iter()
            .filter(|h| !h.local && h.agent_port.is_some())
            .collect();
        let timeout = Duration::from_millis(self.config.hosts.heartbeat_ms.clamp(200, 5000));
        let answers = futures_util::future::join_all(hosts.iter().map(|h| async move {
            match self.agent(h) {
                Ok(c) => c.heartbeat(timeout).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }))
        .await;
        let plans = if answers.iter().any(Result::is_ok) {
            self.fence_plans().await?
        } else {
            HashMap::new()
        };
        let now = time::OffsetDateTime::now_utc();
        let mut report = serde_json::Map::new();
        for (h, answer) in hosts.iter().zip(answers) {
            let since = h.seen_at.as_deref().unwrap_or(&h.created_at);
            let silent_ms =
                time_fmt::parse_rfc3339(since).map_or(u64::MAX, |t| (now - t).whole_milliseconds().max(0) as u64);
            let mv = decide(h.status, answer.is_ok(), silent_ms, self.config.hosts.down_after_ms);
            self.apply_host_move(h, mv, answer.as_ref().ok()).await?;
            if let Ok(f) = &answer {
                if let Ok(client) = self.agent(h) {
                    self.agents.host_views.follow(&client);
                }
                self.send_fence_plan(h, f, plans.get(&h.id)).await;
                self.endpoints_held_by(&h.id, f.endpoints_digest.clone());
            }
            report.insert(
                h.id.clone(),
                match &answer {
                    Ok(f) => json!({"answered": true, "epoch": f.epoch}),
                    Err(e) => json!({"answered": false, "silent_ms": silent_ms, "error": e}),
                },
            );
        }
        self.agents
            .host_views
            .keep_only(&hosts.iter().map(|h| h.id.clone()).collect());
        // Hosts whose endpoints differ from the plan applied here (an
        // agent restarted, a push lost) get it again.
        let applied = self
            .endpoints_applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|a| a.plan.clone());
        if let Some(plan) = applied {
            self.push_endpoints(&plan).await;
        }
        Ok(Value::Object(report))
    }

    fn endpoints_held_by(&self, host_id: &str, digest: Option<String>) {
        self.agents
            .endpoints_held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host_id.to_string(), digest);
    }

    /// Endpoints on every host (kube-proxy's model): sends `plan` to every
    /// agent host that programs endpoints and is not `down`, where it
    /// differs from what the host holds. The pushes run on their own: an
    /// apply never waits for a host (a dead host's push waited up to
    /// `ENDPOINT_PUSH_TIMEOUT` and held the next apply — the new primary's —
    /// back by as long). Per host they are serialised, and a push that a
    /// newer plan overtook is dropped; each waits at most
    /// `ENDPOINT_PUSH_TIMEOUT` (a host that missed it gets it at its next
    /// heartbeat).
    pub(crate) async fn push_endpoints(&self, plan: &marina_endpoints::EndpointPlan) {
        let Ok(hosts) = self.store.list_hosts().await else {
            return;
        };
        // Node ports on agent hosts admit the fleet's hosts (the agent adds
        // the control plane).
        let agent_hosts: Vec<std::net::Ipv4Addr> = hosts
            .iter()
            .filter(|h| !h.local && h.agent_port.is_some())
            .filter_map(|h| h.address.parse().ok())
            .collect();
        if agent_hosts.is_empty() {
            return;
        }
        let peers: Vec<ipnet::Ipv4Net> = agent_hosts.iter().map(|a| ipnet::Ipv4Net::from(*a)).collect();
        let body = Arc::new(EndpointsBody::from_plan(plan, &agent_hosts, &peers));
        let digest = body.digest();
        let generation = self.agents.pushes.fetch_add(1, Ordering::SeqCst) + 1;
        for h in hosts
            .iter()
            .filter(|h| !h.local && h.agent_port.is_some() && h.status != HostStatus::Down)
        {
            let held = self.agents.endpoints_held.lock().unwrap_or_else(|p| p.into_inner());
            if held.get(&h.id).cloned().flatten().as_deref() == Some(digest.as_str()) {
                continue;
            }
            drop(held);
            let Ok(agent) = self.agent(h) else { continue };
            if !agent.serves_endpoints() {
                continue;
            }
            let turn = self
                .agents
                .push_turns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(h.id.clone())
                .or_default()
                .clone();
            let (held, latest) = (self.agents.endpoints_held.clone(), self.agents.pushes.clone());
            let (body, digest, host_id) = (body.clone(), digest.clone(), h.id.clone());
            tokio::spawn(async move {
                let _turn = turn.lock().await;
                if latest.load(Ordering::SeqCst) != generation {
                    return; // a newer plan is on its way
                }
                match tokio::time::timeout(ENDPOINT_PUSH_TIMEOUT, agent.set_endpoints(&body)).await {
                    Ok(Ok(())) => {
                        held.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(host_id, Some(digest));
                    }
                    Ok(Err(e)) => tracing::warn!(%host_id, error = %e, "pushing endpoints failed"),
                    Err(_) => tracing::warn!(%host_id, "pushing endpoints timed out"),
                }
            });
        }
    }

    /// Each agent host's self-fencing plan: its nodes, which is a primary,
    /// their clusters' other nodes, the management login.
    async fn fence_plans(&self) -> Result<HashMap<String, FencePlan>, Error> {
        let mut by_cluster: HashMap<String, Vec<NodeRecord>> = HashMap::new();
        for n in self.store.all_nodes().await? {
            by_cluster.entry(n.cluster_id.clone()).or_default().push(n);
        }
        let mut plans: HashMap<String, FencePlan> = HashMap::new();
        for c in self.store.live_clusters().await? {
            let Some(nodes) = by_cluster.get(&c.id) else {
                continue;
            };
            if nodes.iter().all(|n| self.on_local_host(n.host_id.as_deref())) {
                continue;
            }
            let secrets = self.cluster_secrets(&c)?;
            for n in nodes.iter().filter(|n| !self.on_local_host(n.host_id.as_deref())) {
                let Some(host) = n.host_id.clone() else { continue };
                plans
                    .entry(host)
                    .or_insert_with(|| FencePlan {
                        fence_after_ms: self.config.hosts.fence_after_ms,
                        nodes: Vec::new(),
                    })
                    .nodes
                    .push(FenceNode {
                        node_id: n.id.clone(),
                        primary: n.role == NodeRole::Primary,
                        peers: nodes
                            .iter()
                            .filter(|p| p.id != n.id)
                            .map(|p| {
                                std::net::SocketAddr::new(p.host.parse().unwrap_or([127, 0, 0, 1].into()), p.port)
                                    .to_string()
                            })
                            .collect(),
                        mgmt_user: marina_engine::users::MGMT_USER.into(),
                        mgmt_password: secrets.mgmt_password.clone(),
                    });
            }
        }
        Ok(plans)
    }

    /// Sends `host` its plan when the one it holds differs (an empty plan
    /// when it runs no node of a live cluster).
    async fn send_fence_plan(&self, host: &HostRecord, facts: &HostFacts, plan: Option<&FencePlan>) {
        let empty = FencePlan {
            fence_after_ms: self.config.hosts.fence_after_ms,
            nodes: Vec::new(),
        };
        let plan = plan.unwrap_or(&empty);
        if facts.fencing_digest.as_deref() == Some(marina_agent::fencing::digest(plan).as_str()) {
            return;
        }
        let sent = match self.agent(host) {
            Ok(a) => a.set_fencing(plan).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::warn!(host_id = %host.id, error = %e, "sending the self-fencing plan failed; retried at the next heartbeat");
        }
    }

    async fn apply_host_move(&self, h: &HostRecord, mv: HostMove, facts: Option<&HostFacts>) -> Result<(), Error> {
        let at = time_fmt::now_rfc3339();
        match (mv, facts) {
            (HostMove::Heard, Some(f)) => {
                let update = HostFactsUpdate {
                    memory_bytes: f.memory_bytes,
                    disk_bytes: f.disk_bytes,
                    cpus: f.cpus,
                    version: f.version.chars().take(64).collect(),
                };
                self.store.host_heard(&h.id, &update, &at).await?;
                if h.status == HostStatus::Down {
                    tracing::info!(host_id = %h.id, "host agent answered: active");
                }
            }
            (HostMove::Lost, _)
                if self
                    .store
                    .set_host_status(&h.id, &[HostStatus::Active], HostStatus::Down, &at)
                    .await? =>
            {
                tracing::warn!(host_id = %h.id, "host agent silent: down");
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostStatus::*;

    #[test]
    fn heartbeats_move_hosts() {
        for (status, answered, silent, want) in [
            (Down, true, 0, HostMove::Heard),
            (Active, true, 10_000, HostMove::Heard),
            (Cordoned, true, 0, HostMove::Heard),
            (Active, false, 4_999, HostMove::Keep),
            (Active, false, 5_000, HostMove::Lost),
            (Active, false, u64::MAX, HostMove::Lost),
            (Down, false, 60_000, HostMove::Keep),
            (Cordoned, false, 60_000, HostMove::Keep),
            (Draining, false, 60_000, HostMove::Keep),
        ] {
            assert_eq!(
                decide(status, answered, silent, 5_000),
                want,
                "{status} answered={answered} silent={silent}"
            );
        }
    }
}
