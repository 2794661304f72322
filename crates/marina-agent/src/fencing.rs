//! Self-fencing (issue 23, Patroni's rule): a primary whose host can reach
//! neither the control plane nor any of its cluster's other nodes stops
//! taking writes on its own — `read_only=ON` and every client connection
//! cut — so a partitioned old primary cannot go on acknowledging writes
//! after the control plane failed over.
//!
//! Rules:
//! - The control plane sends the plan (`PUT /v1/fencing`): `fence_after_ms`
//!   and, for each node on this host, whether it is a primary, its peers'
//!   addresses and the management login. The plan lives in memory; an
//!   agent that restarts fences nothing until the control plane sends it
//!   again (an agent restarted while partitioned has no plan, and its
//!   nodes' semi-sync holds their commits).
//! - The control plane is "heard" when one of its calls passed the epoch
//!   fence (its heartbeat comes every `hosts.heartbeat_ms`).
//! - Every `TICK`, when the control plane has not been heard for
//!   `fence_after_ms`, each primary of the plan whose peers all refuse or
//!   time out a TCP connection is fenced (once per isolation; again if it
//!   was made writable meanwhile). `fence_after_ms` is shorter than the
//!   semi-sync timeout, so the fence comes before a commit could be
//!   acknowledged without a replica.
//! - The decision is pure (`decide`, table-tested); the watchdog observes
//!   and acts.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use marina_engine::{NodeAddr, NodeAdmin};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How often the watchdog looks.
pub const TICK: Duration = Duration::from_millis(250);
/// How long a peer may take to accept a TCP connection.
const PEER_TIMEOUT: Duration = Duration::from_millis(300);

/// `PUT /v1/fencing`: what to fence when this host is isolated.
#[derive(Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FencePlan {
    /// Fence after the control plane has been silent this long (and the
    /// peers unreachable).
    pub fence_after_ms: u64,
    pub nodes: Vec<FenceNode>,
}

impl std::fmt::Debug for FencePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FencePlan")
            .field("fence_after_ms", &self.fence_after_ms)
            .field("nodes", &self.nodes)
            .finish()
    }
}

marina_common::debug_redacted!(FenceNode { node_id, primary, peers } redact { mgmt_password });

/// One node of this host in the plan.
#[derive(Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FenceNode {
    pub node_id: String,
    pub primary: bool,
    /// The cluster's other nodes (`address:port`).
    pub peers: Vec<String>,
    pub mgmt_user: String,
    pub mgmt_password: String,
}

/// What the watchdog does for one primary this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fence,
    Leave,
}

/// Whether to fence a primary: the control plane silent for
/// `fence_after` and no peer reachable; not again once fenced.
pub fn decide(cp_silent: Duration, fence_after: Duration, any_peer_reachable: bool, fenced: bool) -> Verdict {
    if cp_silent >= fence_after && !any_peer_reachable && !fenced {
        Verdict::Fence
    } else {
        Verdict::Leave
    }
}

/// The watchdog's state.
pub struct Fencing {
    plan: Mutex<Option<FencePlan>>,
    heard: Mutex<Instant>,
    /// Nodes fenced during the current isolation.
    fenced: Mutex<std::collections::HashSet<String>>,
}

impl Default for Fencing {
    fn default() -> Self {
        Fencing {
            plan: Mutex::new(None),
            heard: Mutex::new(Instant::now()),
            fenced: Mutex::new(Default::default()),
        }
    }
}

impl Fencing {
    /// The control plane was heard (a call passed the epoch fence).
    pub fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.fenced.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn set_plan(&self, plan: FencePlan) {
        *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = Some(plan);
    }

    /// The nodes of the plan held (none before the control plane sent one).
    pub fn nodes(&self) -> Vec<FenceNode> {
        let plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        plan.as_ref().map(|p| p.nodes.clone()).unwrap_or_default()
    }

    /// A digest of the plan held (the control plane re-sends a different one).
    pub fn digest(&self) -> Option<String> {
        let plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        plan.as_ref().map(digest)
    }

    /// One look: fences the isolated primaries; returns the ids fenced.
    pub async fn tick(&self, admin: &dyn NodeAdmin, socket_of: &(dyn Fn(&str) -> String + Sync)) -> Vec<String> {
        let plan = self.plan.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(plan) = plan else {
            return Vec::new();
        };
        let silent = self.heard.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
        let fence_after = Duration::from_millis(plan.fence_after_ms);
        if silent < fence_after {
            return Vec::new();
        }
        let mut done = Vec::new();
        for n in plan.nodes.iter().filter(|n| n.primary) {
            let fenced = self
                .fenced
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&n.node_id);
            if fenced {
                continue;
            }
            let reachable = any_reachable(&n.peers).await;
            if decide(silent, fence_after, reachable, fenced) == Verdict::Leave {
                continue;
            }
            let addr = NodeAddr {
                host: "127.0.0.1".into(),
                port: 0,
                user: n.mgmt_user.clone(),
                password: n.mgmt_password.clone(),
                socket: Some(socket_of(&n.node_id)),
            };
            // Connections first: a commit waiting for a semi-sync
            // acknowledgement must end without answering its client.
            match admin.isolate(&addr).await {
                Ok(k) => {
                    tracing::warn!(node_id = %n.node_id, killed = k, silent_ms = silent.as_millis() as u64,
                        "isolated from the control plane and every peer: primary fenced (read-only, clients cut)");
                    self.fenced
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(n.node_id.clone());
                    done.push(n.node_id.clone());
                }
                Err(e) => {
                    tracing::warn!(node_id = %n.node_id, error = %e, "fencing failed; retrying");
                }
            }
        }
        done
    }
}

/// The plan's digest, the same on both sides (`wire::digest`).
pub fn digest(plan: &FencePlan) -> String {
    crate::wire::digest(plan)
}

/// Whether any of `peers` accepts a TCP connection in time.
async fn any_reachable(peers: &[String]) -> bool {
    let tries = peers
        .iter()
        .filter_map(|p| p.parse::<SocketAddr>().ok())
        .map(|a| async move {
            matches!(
                tokio::time::timeout(PEER_TIMEOUT, tokio::net::TcpStream::connect(a)).await,
                Ok(Ok(_))
            )
        });
    futures_util::future::join_all(tries).await.into_iter().any(|r| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_isolated_primary_is_fenced_once() {
        let ms = Duration::from_millis;
        for (silent, reachable, fenced, want) in [
            (ms(3000), false, false, Verdict::Fence),
            (ms(9000), false, false, Verdict::Fence),
            (ms(2999), false, false, Verdict::Leave),
            (ms(9000), true, false, Verdict::Leave),
            (ms(9000), false, true, Verdict::Leave),
            (ms(0), true, false, Verdict::Leave),
        ] {
            assert_eq!(
                decide(silent, ms(3000), reachable, fenced),
                want,
                "silent {silent:?} reachable {reachable} fenced {fenced}"
            );
        }
    }

    #[tokio::test]
    async fn peers_are_reachable_when_one_accepts() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap().to_string();
        let closed = {
            let c = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            c.local_addr().unwrap().to_string()
        };
        assert!(any_reachable(&[closed.clone(), open]).await);
        assert!(!any_reachable(&[closed, "not an address".into()]).await);
        assert!(!any_reachable(&[]).await);
    }
}
