//! The supervisor: a reconciler that keeps what runs on the host equal to what
//! the store says should run.
//!
//! Rules (after omicron's background tasks):
//! - It is idempotent and takes no input: each activation reads the store and
//!   observes the host; even when we think we know what changed, we do not use
//!   that information.
//! - It is activated by a timer (`nodes.reconcile_interval_ms`) and by an explicit
//!   signal (`Marina::reconcile`) after operations finish.
//! - No internal retries: the next activation is the retry.
//! - It only touches clusters that are `active` or `degraded`; clusters under an
//!   operation belong to the operation worker.
//!
//! What one pass does:
//! 1. Node processes: a node of a serving cluster whose process is gone is marked
//!    `down` and — when `restart_policy` allows, which is always until the HA
//!    issue decides otherwise — started again with its role re-applied
//!    (`read_only` stays ON on replicas; the primary becomes writable again).
//! 2. Cluster status: `active` when every node is active, `degraded` otherwise.
//! 3. Orphans: a node directory with no node row (left by a crash between a
//!    create's failure and its cleanup, or by a removed row) is destroyed.
//! 4. Endpoints: the desired routes are applied when they changed, and at least
//!    every `ENDPOINT_REFRESH` to repair outside changes.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use marina_common::Error;
use marina_common::model::{ClusterRecord, ClusterStatus, NodeRecord, NodeRole, NodeStatus};
use marina_endpoints::Route;
use marina_runtime::ProcessState;
use tokio_util::sync::CancellationToken;

use crate::Marina;
use crate::operations::{admin_err, runtime_err};

/// Routes are re-applied at least this often even when unchanged.
const ENDPOINT_REFRESH: Duration = Duration::from_secs(15);

/// Cluster statuses whose endpoints carry traffic.
const SERVING: &[ClusterStatus] = &[
    ClusterStatus::Active,
    ClusterStatus::Degraded,
    ClusterStatus::Updating,
    ClusterStatus::FailingOver,
];

/// Supervisor loop.
pub async fn run(app: Arc<Marina>, cancel: CancellationToken) {
    let interval = Duration::from_millis(app.config.nodes.reconcile_interval_ms);
    loop {
        if let Err(e) = reconcile_once(&app).await {
            tracing::warn!(error = %e, "supervisor pass failed; next pass retries");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = app.reconcile.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One reconciliation pass.
pub async fn reconcile_once(app: &Arc<Marina>) -> Result<(), Error> {
    for cluster in app.store.live_clusters().await? {
        if matches!(cluster.status, ClusterStatus::Active | ClusterStatus::Degraded)
            && let Err(e) = reconcile_cluster(app, &cluster).await
        {
            tracing::warn!(cluster_id = %cluster.id, error = %e, "reconciling cluster failed");
        }
    }
    remove_orphans(app).await?;
    let routes = desired_routes(app).await?;
    let stale = {
        let last = app.endpoints_applied.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .is_none_or(|(r, at)| *r != routes || at.elapsed() > ENDPOINT_REFRESH)
    };
    if stale {
        apply_routes(app, routes).await?;
    }
    Ok(())
}

/// Whether a dead node should be started again. The HA issue replaces this
/// policy (e.g. a failed-over old primary must not come back as a primary).
fn restart_policy(_cluster: &ClusterRecord, _node: &NodeRecord) -> bool {
    true
}

async fn reconcile_cluster(app: &Arc<Marina>, cluster: &ClusterRecord) -> Result<(), Error> {
    let nodes = app.store.list_nodes(&cluster.id).await?;
    let secrets = app.cluster_secrets(cluster)?;
    let mut all_active = true;
    for node in &nodes {
        let running = matches!(app.runtime.state(&node.id).await, ProcessState::Running(_));
        if running {
            if node.status != NodeStatus::Active {
                all_active = false;
            }
            continue;
        }
        all_active = false;
        if node.status == NodeStatus::Active {
            app.store.update_node(&node.id, node.role, NodeStatus::Down).await?;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                Some(&node.id),
                "node_down",
                format!("node {} ({}) is not running", node.id, node.role),
            )
            .await;
        }
        if !restart_policy(cluster, node) {
            continue;
        }
        // An operation (a delete) may have taken the cluster since this pass
        // read it; nodes of such a cluster are the operation's business.
        let current = app.store.get_cluster(None, &cluster.id).await?;
        if !current.is_some_and(|c| matches!(c.status, ClusterStatus::Active | ClusterStatus::Degraded)) {
            return Ok(());
        }
        let spec = app.node_spec(cluster, node, &secrets)?;
        app.runtime.start(&spec).await.map_err(runtime_err)?;
        let addr = app.mgmt_addr(node, &secrets);
        match node.role {
            NodeRole::Primary => {
                let semisync = cluster.replication == marina_common::model::Replication::Semisync;
                app.admin.make_primary(&addr, semisync).await.map_err(admin_err)?
            }
            NodeRole::Replica => {
                if let Some(primary) = nodes.iter().find(|n| n.role == NodeRole::Primary) {
                    app.admin
                        .start_replica(&addr, &app.replica_source(primary, &secrets))
                        .await
                        .map_err(admin_err)?;
                }
            }
        }
        app.store.update_node(&node.id, node.role, NodeStatus::Active).await?;
        app.event(
            &cluster.tenant_id,
            &cluster.id,
            Some(&node.id),
            "node_restarted",
            format!("node {} ({}) was restarted", node.id, node.role),
        )
        .await;
    }
    // Nodes that are running but not yet marked active (e.g. restarted by a
    // previous pass that was interrupted) become active once they answer.
    for node in nodes.iter().filter(|n| n.status != NodeStatus::Active) {
        if matches!(app.runtime.state(&node.id).await, ProcessState::Running(_))
            && app.admin.ping(&app.mgmt_addr(node, &secrets)).await.is_ok()
        {
            app.store.update_node(&node.id, node.role, NodeStatus::Active).await?;
        }
    }
    let nodes = app.store.list_nodes(&cluster.id).await?;
    all_active = all_active || nodes.iter().all(|n| n.status == NodeStatus::Active);
    let want = if all_active {
        ClusterStatus::Active
    } else {
        ClusterStatus::Degraded
    };
    if want != cluster.status {
        app.store
            .update_cluster_status(
                &cluster.id,
                &[ClusterStatus::Active, ClusterStatus::Degraded],
                want,
                None,
            )
            .await?;
    }
    Ok(())
}

async fn remove_orphans(app: &Arc<Marina>) -> Result<(), Error> {
    let known: HashSet<String> = app.store.all_nodes().await?.into_iter().map(|n| n.id).collect();
    for id in app.runtime.nodes_on_disk().await.map_err(runtime_err)? {
        if !known.contains(&id) {
            tracing::warn!(node_id = %id, "removing orphan node directory (no node record)");
            app.runtime.destroy(&id).await.map_err(runtime_err)?;
        }
    }
    Ok(())
}

/// The routes of one cluster: writer → primary, reader → active replicas (the
/// primary when there are none). `None` when the cluster has no endpoints now.
pub fn cluster_routes(c: &ClusterRecord, nodes: &[NodeRecord]) -> Option<[Route; 2]> {
    if !c.endpoints_ready || !SERVING.contains(&c.status) {
        return None;
    }
    let addr = |n: &NodeRecord| SocketAddrV4::new(n.host.parse().unwrap_or(Ipv4Addr::LOCALHOST), n.port);
    let primary: Vec<SocketAddrV4> = nodes.iter().filter(|n| n.role == NodeRole::Primary).map(addr).collect();
    let mut replicas: Vec<SocketAddrV4> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Replica && n.status == NodeStatus::Active)
        .map(addr)
        .collect();
    if replicas.is_empty() {
        replicas = primary.clone();
    }
    let ep = |host: &str| SocketAddrV4::new(host.parse().unwrap_or(Ipv4Addr::LOCALHOST), c.endpoint_port);
    Some([
        Route {
            listen: ep(&c.writer_host),
            backends: primary,
        },
        Route {
            listen: ep(&c.reader_host),
            backends: replicas,
        },
    ])
}

async fn desired_routes(app: &Marina) -> Result<Vec<Route>, Error> {
    let mut routes = Vec::new();
    for c in app.store.live_clusters().await? {
        let nodes = app.store.list_nodes(&c.id).await?;
        if let Some(r) = cluster_routes(&c, &nodes) {
            routes.extend(r);
        }
    }
    Ok(routes)
}

async fn apply_routes(app: &Marina, routes: Vec<Route>) -> Result<(), Error> {
    app.datapath
        .apply(&routes)
        .await
        .map_err(|e| Error::Unavailable(format!("applying endpoints: {e}")))?;
    *app.endpoints_applied.lock().unwrap_or_else(|e| e.into_inner()) = Some((routes, Instant::now()));
    Ok(())
}

/// Applies the desired routes now (operations call this).
pub async fn apply_endpoints(app: &Marina) -> Result<(), Error> {
    let routes = desired_routes(app).await?;
    apply_routes(app, routes).await
}

/// Removes every route of this instance (shutdown of tests; not used by serve,
/// whose endpoints outlive it in kernel mode).
pub async fn clear_endpoints(app: &Marina) -> Result<(), Error> {
    apply_routes(app, Vec::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use marina_common::model::Replication;

    fn cluster(status: ClusterStatus, ready: bool) -> ClusterRecord {
        ClusterRecord {
            id: "cl_1".into(),
            tenant_id: "tn_1".into(),
            name: "c".into(),
            status,
            size_id: "small".into(),
            version: "10.11.1".into(),
            replication: Replication::Semisync,
            node_count: 3,
            writer_host: "127.77.0.1".into(),
            reader_host: "127.78.0.1".into(),
            endpoint_port: 3306,
            endpoints_ready: ready,
            secrets_enc: String::new(),
            generation: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn node(port: u16, role: NodeRole, status: NodeStatus) -> NodeRecord {
        NodeRecord {
            id: format!("nd_{port}"),
            cluster_id: "cl_1".into(),
            ordinal: 0,
            role,
            status,
            host: "127.0.0.1".into(),
            port,
            size_id: "small".into(),
            server_id: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn routes_follow_roles_and_health() {
        let nodes = vec![
            node(1, NodeRole::Primary, NodeStatus::Active),
            node(2, NodeRole::Replica, NodeStatus::Active),
            node(3, NodeRole::Replica, NodeStatus::Down),
        ];
        let [w, r] = cluster_routes(&cluster(ClusterStatus::Active, true), &nodes).unwrap();
        assert_eq!(w.listen.to_string(), "127.77.0.1:3306");
        assert_eq!(w.backends, vec!["127.0.0.1:1".parse().unwrap()]);
        assert_eq!(r.backends, vec!["127.0.0.1:2".parse().unwrap()]);
        // No healthy replica: the reader leads to the primary.
        let lonely = vec![
            node(1, NodeRole::Primary, NodeStatus::Active),
            node(3, NodeRole::Replica, NodeStatus::Down),
        ];
        let [_, r] = cluster_routes(&cluster(ClusterStatus::Degraded, true), &lonely).unwrap();
        assert_eq!(r.backends, vec!["127.0.0.1:1".parse().unwrap()]);
        // Not yet active, or being deleted: no routes.
        assert!(cluster_routes(&cluster(ClusterStatus::Creating, false), &nodes).is_none());
        assert!(cluster_routes(&cluster(ClusterStatus::Deleting, true), &nodes).is_none());
    }
}
