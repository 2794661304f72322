//! What each agent host's own probes see of its nodes (issue 23): one
//! stream per agent host (`GET /v1/observations`, newline-delimited JSON,
//! see `marina_agent::probes`), followed from the heartbeat task and kept
//! here by node.
//!
//! The monitor's decisions rest on the control plane's own probes over the
//! network and the replicas' view of their primary (a dead host is seen
//! from outside); the host's view is shown beside them in
//! `GET /v1/clusters/{id}/status` (`host_probe`), so an operator can tell a
//! node cut off from the control plane (its host still sees it answering)
//! from a dead one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use marina_agent::AgentClient;
use marina_agent::probes::{LocalObservation, Observations};
use tokio::task::JoinHandle;

/// A stream silent this long is taken for lost and opened again (the agent
/// sends at least every `marina_agent::probes::KEEPALIVE`).
const SILENT_AFTER: Duration = Duration::from_secs(3);
/// How long to wait before opening a lost stream again.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// What a node's host last said about it.
#[derive(Debug, Clone)]
pub struct HostView {
    pub host_id: String,
    pub seen: LocalObservation,
    /// When the snapshot holding it arrived.
    pub at: Instant,
}

type Views = Arc<RwLock<HashMap<String, HostView>>>;

/// A followed stream: the client it reads and its task.
type Followed = (Arc<AgentClient>, JoinHandle<()>);

/// The followed streams and what they said.
#[derive(Default)]
pub struct HostViews {
    views: Views,
    /// By host.
    streams: Mutex<HashMap<String, Followed>>,
}

impl Drop for HostViews {
    fn drop(&mut self) {
        for (_, (_, task)) in self.streams.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            task.abort();
        }
    }
}

impl HostViews {
    /// Follows `client`'s stream unless it is followed already (a new
    /// client for the host, after its address changed, replaces the old).
    pub fn follow(&self, client: &Arc<AgentClient>) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((followed, task)) = streams.get(client.host_id())
            && Arc::ptr_eq(followed, client)
            && !task.is_finished()
        {
            return;
        }
        let task = tokio::spawn(follow_loop(client.clone(), self.views.clone()));
        if let Some((_, old)) = streams.insert(client.host_id().to_string(), (client.clone(), task)) {
            old.abort();
        }
    }

    /// Stops following hosts not in `hosts`, forgetting what they said.
    pub fn keep_only(&self, hosts: &HashSet<String>) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|host, (_, task)| {
                let keep = hosts.contains(host);
                if !keep {
                    task.abort();
                }
                keep
            });
        self.views
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, v| hosts.contains(&v.host_id));
    }

    /// What `node_id`'s host last said about it.
    pub fn node(&self, node_id: &str) -> Option<HostView> {
        self.views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(node_id)
            .cloned()
    }
}

/// Reads one host's stream, opening it again whenever it ends, fails or
/// falls silent.
async fn follow_loop(client: Arc<AgentClient>, views: Views) {
    loop {
        if let Ok(mut stream) = client.observations().await {
            while let Ok(Ok(Some(snapshot))) = tokio::time::timeout(SILENT_AFTER, stream.next()).await {
                record(&views, client.host_id(), snapshot, Instant::now());
            }
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// Takes one snapshot of `host`: its nodes' views replace the host's
/// previous ones (a node it no longer probes is forgotten).
fn record(views: &RwLock<HashMap<String, HostView>>, host: &str, snapshot: Observations, at: Instant) {
    let mut views = views.write().unwrap_or_else(|p| p.into_inner());
    views.retain(|_, v| v.host_id != host);
    for seen in snapshot.nodes {
        views.insert(
            seen.node_id.clone(),
            HostView {
                host_id: host.to_string(),
                seen,
                at,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, reachable: bool) -> LocalObservation {
        LocalObservation {
            node_id: id.into(),
            reachable,
            writable: None,
            replication_io: None,
            replication_sql: None,
            gtid_position: None,
            error: None,
        }
    }

    #[test]
    fn a_snapshot_replaces_its_hosts_views_only() {
        let views = RwLock::new(HashMap::new());
        let now = Instant::now();
        let snap = |nodes| Observations { seq: 1, nodes };
        record(&views, "hs_a", snap(vec![seen("nd_1", true), seen("nd_2", true)]), now);
        record(&views, "hs_b", snap(vec![seen("nd_3", true)]), now);
        record(&views, "hs_a", snap(vec![seen("nd_2", false)]), now);
        let v = views.read().unwrap();
        assert!(!v.contains_key("nd_1"), "no longer probed by its host");
        assert!(!v["nd_2"].seen.reachable);
        assert_eq!(v["nd_3"].host_id, "hs_b", "another host's views stay");
    }
}
