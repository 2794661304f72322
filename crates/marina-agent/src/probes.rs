//! Probes from inside the host (issue 23): every `TICK` the agent probes each
//! node the control plane's plan names (`PUT /v1/fencing`) over the node's
//! own socket, and streams what it saw to the control plane
//! (`GET /v1/observations`: newline-delimited JSON, one snapshot at once,
//! then one on every change and at least every `KEEPALIVE`).
//!
//! The control plane also probes every node itself, over the network: a
//! dead host is seen from outside, and a node its host sees answering while
//! the control plane cannot reach it is a network cut, not a dead node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use marina_engine::probe::{Probe, ProbeConn};
use marina_engine::{AdminError, NodeAddr};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::server::Fenced;

/// How often the agent probes its nodes.
pub const TICK: Duration = Duration::from_millis(250);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// A snapshot is sent at least this often, changed or not (the control
/// plane takes a silent stream for a lost one).
pub const KEEPALIVE: Duration = Duration::from_secs(1);
/// A stream ends after this long (the control plane opens another), so no
/// response lives forever.
const STREAM_FOR: Duration = Duration::from_secs(300);

/// What the host saw of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocalObservation {
    pub node_id: String,
    /// The node answered a probe over its socket.
    pub reachable: bool,
    /// `read_only` is off (when it answered).
    pub writable: Option<bool>,
    /// The replication threads run (a replica that answered).
    pub replication_io: Option<bool>,
    pub replication_sql: Option<bool>,
    pub gtid_position: Option<String>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// `GET /v1/observations`: one line of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Observations {
    /// Grows by one on every change.
    pub seq: u64,
    pub nodes: Vec<LocalObservation>,
}

/// What one probe result says about `node_id` (pure).
pub fn observe(node_id: &str, result: &Result<Probe, AdminError>) -> LocalObservation {
    match result {
        Ok(p) => LocalObservation {
            node_id: node_id.into(),
            reachable: true,
            writable: Some(!p.read_only),
            replication_io: p.replica.as_ref().map(|r| r.io_running()),
            replication_sql: p.replica.as_ref().map(|r| r.sql_running),
            gtid_position: Some(p.gtid_current_pos.clone()),
            error: None,
        },
        Err(e) => LocalObservation {
            node_id: node_id.into(),
            reachable: false,
            writable: None,
            replication_io: None,
            replication_sql: None,
            gtid_position: None,
            error: Some(e.to_string()),
        },
    }
}

/// The latest observations, shared by the prober and the streams.
pub struct LocalProbes {
    tx: tokio::sync::watch::Sender<(Observations, bool)>,
}

impl Default for LocalProbes {
    fn default() -> Self {
        LocalProbes {
            tx: tokio::sync::watch::channel((Observations::default(), false)).0,
        }
    }
}

impl LocalProbes {
    /// Takes a new round of observations (sorted by node); a change bumps
    /// the sequence and wakes the streams.
    pub fn publish(&self, mut nodes: Vec<LocalObservation>) {
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        self.tx.send_if_modified(|(cur, _)| {
            if cur.nodes == nodes {
                return false;
            }
            cur.nodes = nodes;
            cur.seq += 1;
            true
        });
    }

    /// Ends every stream (the agent is stopping).
    pub fn close(&self) {
        self.tx.send_modify(|(_, closed)| *closed = true);
    }

    /// The stream's lines: the current snapshot at once, then on every
    /// change and at least every `keepalive`, until `close` or `until`.
    pub fn lines(
        &self,
        keepalive: Duration,
        until: Duration,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let rx = self.tx.subscribe();
        let end = tokio::time::Instant::now() + until;
        futures_util::stream::unfold((rx, true), move |(mut rx, first)| async move {
            if !first {
                let wait = keepalive.min(end.saturating_duration_since(tokio::time::Instant::now()));
                if let Ok(Err(_)) = tokio::time::timeout(wait, rx.changed()).await {
                    return None;
                }
                if tokio::time::Instant::now() >= end {
                    return None;
                }
            }
            let (snapshot, closed) = rx.borrow_and_update().clone();
            if closed {
                return None;
            }
            let mut line = serde_json::to_vec(&snapshot).unwrap_or_default();
            line.push(b'\n');
            Some((Ok(Bytes::from(line)), (rx, false)))
        })
    }
}

/// Probes the nodes of the plan every `TICK`, keeping one connection per
/// node between ticks.
pub fn spawn_prober(state: Arc<crate::server::AgentState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns: HashMap<String, ProbeConn> = HashMap::new();
        loop {
            tokio::time::sleep(TICK).await;
            let nodes = state.fencing.nodes();
            conns.retain(|id, _| nodes.iter().any(|n| &n.node_id == id));
            let probes = nodes.into_iter().map(|n| {
                let mut conn = conns.remove(&n.node_id).unwrap_or_else(|| {
                    ProbeConn::new(NodeAddr {
                        host: "127.0.0.1".into(),
                        port: 0,
                        user: n.mgmt_user.clone(),
                        password: n.mgmt_password.clone(),
                        socket: Some(
                            state
                                .runtime
                                .node_dir(&n.node_id)
                                .join("mariadbd.sock")
                                .display()
                                .to_string(),
                        ),
                    })
                });
                async move {
                    let result = conn.probe(PROBE_TIMEOUT).await;
                    (n.node_id, conn, result)
                }
            });
            let mut seen = Vec::new();
            for (id, conn, result) in futures_util::future::join_all(probes).await {
                seen.push(observe(&id, &result));
                conns.insert(id, conn);
            }
            state.probes.publish(seen);
        }
    })
}

#[utoipa::path(get, path = "/v1/observations", tag = "agent", params(crate::server::Epoch), responses((status = 200, content_type = "application/x-ndjson", body = Observations, description = "one Observations per line: at once, on every change, and at least every second; ends after 5 minutes or when the agent stops"), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch")))]
pub(crate) async fn stream(_: Fenced, State(s): State<Arc<crate::server::AgentState>>) -> Response {
    let mut response = Body::from_stream(s.probes.lines(KEEPALIVE, STREAM_FOR)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    response
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn seen(id: &str, reachable: bool) -> LocalObservation {
        let result = if reachable {
            Ok(Probe::default())
        } else {
            Err(AdminError::Timeout {
                host: "127.0.0.1".into(),
                port: 0,
            })
        };
        observe(id, &result)
    }

    #[test]
    fn a_probe_becomes_an_observation() {
        let up = seen("nd_a", true);
        assert!(
            up.reachable && up.writable == Some(true) && up.error.is_none(),
            "{up:?}"
        );
        assert_eq!(up.replication_io, None, "no replication configured");
        let mut replica = Probe {
            read_only: true,
            ..Default::default()
        };
        replica.replica = Some(marina_engine::probe::ReplicaProbe {
            io_state: "Connecting".into(),
            sql_running: true,
            ..Default::default()
        });
        let r = observe("nd_r", &Ok(replica));
        assert_eq!(
            (r.writable, r.replication_io, r.replication_sql),
            (Some(false), Some(false), Some(true))
        );
        let down = seen("nd_a", false);
        assert!(
            !down.reachable && down.writable.is_none() && down.error.is_some(),
            "{down:?}"
        );
    }

    #[tokio::test]
    async fn the_stream_sends_at_once_on_change_and_on_keepalive_and_ends_on_close() {
        let probes = LocalProbes::default();
        let mut lines = Box::pin(probes.lines(Duration::from_millis(200), Duration::from_secs(300)));
        let next = |b: Bytes| serde_json::from_slice::<Observations>(&b).unwrap();
        let first = next(lines.next().await.unwrap().unwrap());
        assert_eq!(first, Observations::default());
        probes.publish(vec![seen("nd_b", true), seen("nd_a", false)]);
        let changed = next(lines.next().await.unwrap().unwrap());
        assert_eq!(changed.seq, 1);
        assert_eq!(changed.nodes[0].node_id, "nd_a", "sorted");
        probes.publish(vec![seen("nd_a", false), seen("nd_b", true)]);
        let started = tokio::time::Instant::now();
        let same = next(lines.next().await.unwrap().unwrap());
        assert_eq!(same.seq, 1, "the same observations are no change");
        assert!(started.elapsed() >= Duration::from_millis(190), "a keepalive");
        probes.close();
        assert!(lines.next().await.is_none(), "closed");
        let other = LocalProbes::default();
        let mut short = Box::pin(other.lines(Duration::from_millis(100), Duration::from_millis(150)));
        assert!(short.next().await.is_some());
        assert!(short.next().await.is_some());
        assert!(short.next().await.is_none(), "ended after its time");
    }
}
