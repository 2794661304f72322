//! Moving nodes off hosts: the nodes of a `draining` host, and of a host
//! `down` for `hosts.replace_after_secs` (self-healing), each replaced by a
//! `move_node` operation (a replica on another host, then the old node
//! removed; a primary is switched over to its replacement first).
//!
//! Rules:
//! - The plan is pure (`plan`, table-tested): at most one move per cluster
//!   at a time (one operation per cluster), only in a serving cluster
//!   (`active` or `degraded`), replicas before the primary.
//! - A drained host's nodes all move, the primary last (by a switchover to
//!   its replacement). A down host's replicas move once it has been silent
//!   for `replace_after_secs`; its primary never does (the failover makes a
//!   node elsewhere the primary first, and the old one is then a replica).
//! - A replacement keeps the cluster's nodes on distinct hosts (`spread`); a
//!   drain falls back to sharing a host when no other has room, a
//!   replacement waits for one instead.
//! - The host's status is the durable intent: the drain task (`drainer`)
//!   runs the plan every pass and starts what it says, so a control plane
//!   restarted mid-drain carries on.

use std::collections::HashSet;
use std::time::Duration;

use marina_common::model::*;
use marina_common::{Error, time_fmt};
use serde_json::{Value, json};

use crate::Marina;
use crate::nodes::SERVING;
use crate::operations::move_node;

/// Why a node moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its host is drained.
    Drain,
    /// Its host has been down too long.
    Replace,
}

/// A node to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub cluster_id: String,
    pub node_id: String,
    pub why: Why,
}

/// What the plan sees of a host.
#[derive(Debug, Clone)]
pub struct HostSeen {
    pub id: String,
    pub status: HostStatus,
    /// How long its agent has been silent.
    pub silent: Duration,
}

/// The moves to start now (see the module's rules); `replace_after`
/// `None`: down hosts are never replaced.
pub fn plan(
    hosts: &[HostSeen],
    nodes: &[NodeRecord],
    serving: &HashSet<String>,
    replace_after: Option<Duration>,
) -> Vec<Move> {
    let why = |n: &NodeRecord| -> Option<Why> {
        let h = hosts.iter().find(|h| Some(&h.id) == n.host_id.as_ref())?;
        match h.status {
            HostStatus::Draining => Some(Why::Drain),
            HostStatus::Down if n.role == NodeRole::Replica && replace_after.is_some_and(|after| h.silent >= after) => {
                Some(Why::Replace)
            }
            _ => None,
        }
    };
    let mut candidates: Vec<(&NodeRecord, Why)> = nodes
        .iter()
        .filter(|n| serving.contains(&n.cluster_id))
        .filter(|n| !matches!(n.status, NodeStatus::Creating | NodeStatus::Deleting))
        .filter_map(|n| why(n).map(|w| (n, w)))
        .collect();
    // Replicas first; then by id, for a stable plan.
    candidates.sort_by_key(|(n, _)| (n.role == NodeRole::Primary, n.id.clone()));
    let mut taken = HashSet::new();
    candidates
        .into_iter()
        .filter(|(n, _)| taken.insert(n.cluster_id.clone()))
        .map(|(n, why)| Move {
            cluster_id: n.cluster_id.clone(),
            node_id: n.id.clone(),
            why,
        })
        .collect()
}

impl Marina {
    /// One pass of the drain task: starts the moves `plan` says.
    pub async fn drain_round(&self) -> Result<Value, Error> {
        let hosts = self.store.list_hosts().await?;
        if !hosts
            .iter()
            .any(|h| matches!(h.status, HostStatus::Draining | HostStatus::Down))
        {
            return Ok(json!({"moves": 0}));
        }
        let now = time::OffsetDateTime::now_utc();
        let seen: Vec<HostSeen> = hosts
            .iter()
            .map(|h| HostSeen {
                id: h.id.clone(),
                status: h.status,
                silent: time_fmt::parse_rfc3339(h.seen_at.as_deref().unwrap_or(&h.updated_at))
                    .map_or(Duration::ZERO, |t| (now - t).unsigned_abs()),
            })
            .collect();
        let clusters = self.store.live_clusters().await?;
        let serving: HashSet<String> = clusters
            .iter()
            .filter(|c| SERVING.contains(&c.status))
            .map(|c| c.id.clone())
            .collect();
        let replace_after = (self.config.hosts.replace_after_secs > 0)
            .then(|| Duration::from_secs(self.config.hosts.replace_after_secs));
        let nodes = self.store.all_nodes().await?;
        let moves = plan(&seen, &nodes, &serving, replace_after);
        let mut started = Vec::new();
        for m in &moves {
            let Some(c) = clusters.iter().find(|c| c.id == m.cluster_id) else {
                continue;
            };
            match self.start_move_node(c, &m.node_id, m.why).await {
                Ok(op) => started.push(json!({"node_id": m.node_id, "operation_id": op.id})),
                // No room elsewhere, or the cluster got busy: the next pass
                // tries again.
                Err(e @ (Error::CapacityExceeded(_) | Error::Conflict(_))) => {
                    tracing::debug!(node_id = %m.node_id, error = %e, "moving a node off its host: not now")
                }
                Err(e) => tracing::warn!(node_id = %m.node_id, error = %e, "moving a node off its host failed"),
            }
        }
        Ok(json!({"moves": moves.len(), "started": started}))
    }

    /// Records a `move_node` operation replacing `node_id` of `c` by a
    /// replica on another host.
    pub(crate) async fn start_move_node(&self, c: &ClusterRecord, node_id: &str, why: Why) -> Result<Operation, Error> {
        let nodes = self.store.list_nodes(&c.id).await?;
        let old = nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| Error::not_found("node", node_id))?;
        let size = self
            .size(&old.size_id)
            .cloned()
            .ok_or_else(|| Error::internal(format!("node {} has an unknown size", old.id)))?;
        let others: Vec<NodeRecord> = nodes.iter().filter(|n| n.id != old.id).cloned().collect();
        let spread = self.place(1, &size, &others, Some(Placement::Spread), false).await;
        let placed = match (spread, why) {
            (Ok(p), _) => p,
            (Err(e), Why::Replace) => return Err(e),
            (Err(_), Why::Drain) => {
                self.place(1, &size, &others, Some(Placement::BestEffort), false)
                    .await?
            }
        }
        .pop()
        .ok_or_else(|| Error::internal("placement returned no host"))?;
        let primary = old.role == NodeRole::Primary;
        let (node, op) = self
            .record_replica(c, &size, &nodes, &placed, |node| {
                let mut op = crate::operations::new_operation(&c.tenant_id, OperationType::MoveNode, &c.id);
                op.steps = move_node::steps(primary);
                op.node_id = Some(node.id.clone());
                let mut params = json!({"from": old.id, "why": format!("{why:?}").to_lowercase()});
                if primary {
                    params["switchover_to"] = json!(node.id);
                }
                op.params = Some(params);
                op
            })
            .await?;
        self.event(
            &c.tenant_id,
            &c.id,
            Some(&old.id),
            "node_moving",
            format!(
                "node {} ({}) leaves host {} ({}): replica {} is being added on host {}",
                old.id,
                old.role,
                old.host_id.as_deref().unwrap_or("?"),
                match why {
                    Why::Drain => "drained",
                    Why::Replace => "down",
                },
                node.id,
                placed.host_id
            ),
        )
        .await;
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, cluster: &str, host: &str, role: NodeRole, status: NodeStatus) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            cluster_id: cluster.into(),
            ordinal: 0,
            role,
            status,
            host: "198.51.100.11".into(),
            port: 3306,
            size_id: "xsmall".into(),
            server_id: 1,
            status_reason: None,
            rejoin_gtid: None,
            fenced: false,
            host_id: Some(host.into()),
            zone: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn host(id: &str, status: HostStatus, silent_secs: u64) -> HostSeen {
        HostSeen {
            id: id.into(),
            status,
            silent: Duration::from_secs(silent_secs),
        }
    }

    #[test]
    fn drained_and_long_dead_hosts_lose_their_nodes_one_cluster_move_at_a_time() {
        use HostStatus::*;
        use NodeRole::*;
        use NodeStatus::{Active as Up, Creating, Deleting, Down as Dead};
        let serving: HashSet<String> = ["c1", "c2"].into_iter().map(String::from).collect();
        let after = Some(Duration::from_secs(300));
        let ids = |moves: Vec<Move>| moves.into_iter().map(|m| (m.node_id, m.why)).collect::<Vec<_>>();
        for (what, hosts, nodes, replace_after, want) in [
            (
                "a drained host: replicas first, one per cluster",
                vec![host("h1", Draining, 0), host("h2", Active, 0)],
                vec![
                    node("n1", "c1", "h1", Primary, Up),
                    node("n2", "c1", "h1", Replica, Up),
                    node("n3", "c1", "h2", Replica, Up),
                ],
                after,
                vec![("n2", Why::Drain)],
            ),
            (
                "the primary moves when it is the last",
                vec![host("h1", Draining, 0)],
                vec![node("n1", "c1", "h1", Primary, Up)],
                after,
                vec![("n1", Why::Drain)],
            ),
            (
                "every cluster moves at once",
                vec![host("h1", Draining, 0)],
                vec![node("a", "c1", "h1", Replica, Up), node("b", "c2", "h1", Replica, Up)],
                after,
                vec![("a", Why::Drain), ("b", Why::Drain)],
            ),
            (
                "a cluster busy or not serving waits",
                vec![host("h1", Draining, 0)],
                vec![node("a", "c9", "h1", Replica, Up)],
                after,
                vec![],
            ),
            (
                "nodes being added or removed are not moved again",
                vec![host("h1", Draining, 0)],
                vec![
                    node("a", "c1", "h1", Replica, Creating),
                    node("b", "c2", "h1", Replica, Deleting),
                ],
                after,
                vec![],
            ),
            (
                "a down host's replicas move after replace_after, whatever their status",
                vec![host("h1", Down, 300), host("h2", Down, 299)],
                vec![
                    node("a", "c1", "h1", Replica, Dead),
                    node("b", "c2", "h2", Replica, Dead),
                ],
                after,
                vec![("a", Why::Replace)],
            ),
            (
                "a down host's primary is failed over, never moved",
                vec![host("h1", Down, 3_000)],
                vec![node("a", "c1", "h1", Primary, Dead)],
                after,
                vec![],
            ),
            (
                "replacement off",
                vec![host("h1", Down, 3_000)],
                vec![node("a", "c1", "h1", Replica, Dead)],
                None,
                vec![],
            ),
            (
                "active and cordoned hosts keep their nodes",
                vec![host("h1", Active, 0), host("h2", Cordoned, 9_999)],
                vec![node("a", "c1", "h1", Replica, Up), node("b", "c2", "h2", Replica, Up)],
                after,
                vec![],
            ),
        ] {
            let want: Vec<(String, Why)> = want.into_iter().map(|(n, w)| (n.to_string(), w)).collect();
            assert_eq!(ids(plan(&hosts, &nodes, &serving, replace_after)), want, "{what}");
        }
    }
}
