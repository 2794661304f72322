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
//! - It only restarts nodes of clusters that are `active`, `degraded` or
//!   `failed` and were active once; clusters under an operation belong to the
//!   operation worker, and a failed create is left as it failed.
//! - Statuses and roles are the monitor's business, not the supervisor's.
//!
//! What one pass does:
//! 1. Node processes: a node whose process is gone (and that was not `stopped`
//!    on purpose) is started again (its option
//!    file re-rendered for its current role) when `restart_policy` allows. It
//!    comes up read-only and not replicating; the monitor then makes it
//!    writable (primary) or attaches it after a GTID check (replica).
//! 2. Orphans: a node directory with no node row (left by a crash between a
//!    create's failure and its cleanup, or by a removed row) is destroyed.
//! 3. Endpoints: the desired plan (routes, and node-port guards for every live
//!    cluster: Marina's uid and the cluster's node uid) is applied when it
//!    changed, and at least every `ENDPOINT_REFRESH` to repair outside changes.
//!    Operations apply the plan too (`apply_endpoints`); every applier reads
//!    and applies in one turn (`Marina::endpoints_turn`), so a plan read
//!    before an operation's change never lands after the operation's own
//!    apply (a create's route once vanished that way until the next pass).
//!
//! A restart and an operation never overlap on one cluster: the supervisor
//! holds the cluster's restart turn (`RestartTurns`) from its last look at the
//! cluster's status to the node's start, and the worker passes through that
//! turn before an operation's first step. An operation's status change is
//! stored before it runs, so a restart either finished before the operation
//! began or saw the new status and stayed away (a delete once removed a node's
//! directory while a restart was still writing into it).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use marina_common::Error;
use marina_common::model::{ClusterRecord, ClusterStatus, FailoverMode, HostStatus, NodeRecord, NodeRole, NodeStatus};
use marina_endpoints::{EndpointPlan, NodeGuard, Route};
use marina_runtime::ProcessState;

use crate::Marina;
use crate::operations::runtime_err;

/// Routes are re-applied at least this often even when unchanged.
const ENDPOINT_REFRESH: Duration = Duration::from_secs(15);

/// Cluster statuses whose dead nodes the supervisor restarts.
const SUPERVISED: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded, ClusterStatus::Failed];

/// Cluster statuses whose endpoints carry traffic.
const SERVING: &[ClusterStatus] = &[
    ClusterStatus::Active,
    ClusterStatus::Degraded,
    ClusterStatus::Updating,
    ClusterStatus::FailingOver,
];

/// One reconciliation pass.
pub async fn reconcile_once(app: &Arc<Marina>) -> Result<(), Error> {
    for cluster in app.store.live_clusters().await? {
        // A cluster that never became active (a failed create) is left as its
        // operation left it, for the user to read and delete.
        if SUPERVISED.contains(&cluster.status)
            && cluster.endpoints_ready
            && let Err(e) = reconcile_cluster(app, &cluster).await
        {
            tracing::warn!(cluster_id = %cluster.id, error = %e, "reconciling cluster failed");
        }
    }
    {
        let _turn = app.endpoints_turn.lock().await;
        let desired = desired_plan(app).await?;
        let stale = {
            let last = app.endpoints_applied.lock().unwrap_or_else(|e| e.into_inner());
            last.as_ref()
                .is_none_or(|a| a.plan != desired.plan || a.at.elapsed() > ENDPOINT_REFRESH)
        };
        if stale {
            apply_plan(app, desired).await?;
        }
    }
    // After the endpoints: an orphan that cannot be removed now (a host
    // that stopped answering) never holds them back.
    if let Err(e) = remove_orphans(app).await {
        tracing::warn!(error = %e, "removing orphan nodes failed; next pass retries");
    }
    Ok(())
}

/// One async lock per cluster (the supervisor's restart turns and the
/// monitor's evaluation turns), passed through by the operation worker.
#[derive(Default)]
pub struct RestartTurns(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl RestartTurns {
    /// The cluster's turn.
    pub fn of(&self, cluster_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(cluster_id.to_string())
            .or_default()
            .clone()
    }

    /// Waits until no restart of the cluster is under way. Called by an
    /// operation after its status change is stored: later restarts see it.
    pub async fn pass(&self, cluster_id: &str) {
        let turn = self.of(cluster_id);
        drop(turn.lock().await);
    }
}

/// Whether a dead node should be started again: always, except the primary of
/// a replicated cluster in automatic mode — the monitor fails over instead, and
/// the old primary comes back later as a replica (its role is changed first).
fn restart_policy(cluster: &ClusterRecord, node: &NodeRecord) -> bool {
    !(node.role == NodeRole::Primary && cluster.failover_mode == FailoverMode::Automatic && cluster.node_count > 1)
}

async fn reconcile_cluster(app: &Arc<Marina>, cluster: &ClusterRecord) -> Result<(), Error> {
    let nodes = app.store.list_nodes(&cluster.id).await?;
    let secrets = app.cluster_secrets(cluster)?;
    for node in &nodes {
        if node.status == NodeStatus::Stopped
            || !restart_policy(cluster, node)
            || !app.host_answering(node.host_id.as_deref()).await
        {
            continue;
        }
        let runtime = app.runtime_of(node).await?;
        if matches!(runtime.state(&node.id).await, ProcessState::Running(_)) {
            continue;
        }
        // An operation may have taken the cluster since this pass read it; its
        // nodes are then the operation's business. From this look to the
        // start, the cluster's restart turn keeps operations out.
        let turn = app.restart_turns.of(&cluster.id);
        let _turn = turn.lock().await;
        let current = app.store.get_cluster(None, &cluster.id).await?;
        if !current.is_some_and(|c| SUPERVISED.contains(&c.status)) {
            return Ok(());
        }
        // Re-render the option file: a node that is now a replica starts as one.
        let spec = app.node_spec(cluster, node, &secrets)?;
        runtime.prepare(&spec).await.map_err(runtime_err)?;
        runtime.start(&spec).await.map_err(runtime_err)?;
        app.event(
            &cluster.tenant_id,
            &cluster.id,
            Some(&node.id),
            "node_restarted",
            format!(
                "node {} ({}) was not running and has been restarted",
                node.id, node.role
            ),
        )
        .await;
    }
    Ok(())
}

/// How long listing one host's node directories may take.
const ORPHAN_LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// Removes node directories no row names, on this machine and on every
/// agent host that answers (`sweep_orphans`).
async fn remove_orphans(app: &Arc<Marina>) -> Result<(), Error> {
    let mut runtimes: Vec<Arc<dyn marina_runtime::NodeRuntime>> = vec![app.runtime.clone()];
    for h in app.store.list_hosts().await? {
        if !h.local && h.agent_port.is_some() && h.status != HostStatus::Down {
            runtimes.push(app.agent(&h)?);
        }
    }
    let store = app.store.clone();
    sweep_orphans(&runtimes, ORPHAN_LIST_TIMEOUT, || async move {
        Ok(store.all_nodes().await?.into_iter().map(|n| n.id).collect())
    })
    .await
    .map(drop)
}

/// Lists every runtime's node directories at once (each within `timeout`),
/// then removes those no row names (`known`); returns how many. A host that
/// fails or does not answer in time is logged and skipped: the others are
/// swept all the same. The rows are read after every listing: a node's row
/// is written before its directory, so a directory listed is never a node
/// created after the read.
pub(crate) async fn sweep_orphans<F, Fut>(
    runtimes: &[Arc<dyn marina_runtime::NodeRuntime>],
    timeout: Duration,
    known: F,
) -> Result<usize, Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<HashSet<String>, Error>>,
{
    let listings = futures_util::future::join_all(
        runtimes
            .iter()
            .map(|r| async move { tokio::time::timeout(timeout, r.nodes_on_disk()).await }),
    )
    .await;
    let mut found = Vec::new();
    for (runtime, listing) in runtimes.iter().zip(listings) {
        match listing {
            Ok(Ok(ids)) if !ids.is_empty() => found.push((runtime, ids)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "listing a host's node directories failed; next pass retries"),
            Err(_) => tracing::warn!("listing a host's node directories timed out; next pass retries"),
        }
    }
    if found.is_empty() {
        return Ok(0);
    }
    let known = known().await?;
    let mut removed = 0;
    for (runtime, ids) in found {
        for id in ids.into_iter().filter(|id| !known.contains(id)) {
            tracing::warn!(node_id = %id, "removing orphan node directory (no node record)");
            match runtime.destroy(&id).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(node_id = %id, error = %e, "removing an orphan node failed; next pass retries")
                }
            }
        }
    }
    Ok(removed)
}

/// The routes of one cluster: writer → primary, reader → active replicas (the
/// primary when there are none). `None` when the cluster has no endpoints now.
///
/// The writer leads nowhere while the cluster fails over or a switchover holds
/// writes — never to two nodes. `reader_ok` says whether a replica is fit for
/// reads (the monitor's lag view).
pub fn cluster_routes(
    c: &ClusterRecord,
    nodes: &[NodeRecord],
    reader_ok: &dyn Fn(&NodeRecord) -> bool,
    allowed: &[ipnet::Ipv4Net],
) -> Option<[Route; 2]> {
    // A cluster still `creating` whose endpoints are ready is in its create's
    // last step: it is routed before it turns `active`, so a client that sees
    // `active` can connect at once.
    if !c.endpoints_ready || !(SERVING.contains(&c.status) || c.status == ClusterStatus::Creating) {
        return None;
    }
    let addr = |n: &NodeRecord| SocketAddrV4::new(n.host.parse().unwrap_or(Ipv4Addr::LOCALHOST), n.port);
    let writes_held = c.status == ClusterStatus::FailingOver || c.writer_paused;
    let primary: Vec<SocketAddrV4> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Primary)
        .map(addr)
        .take(1)
        .collect();
    let writer = if writes_held { Vec::new() } else { primary.clone() };
    let mut replicas: Vec<SocketAddrV4> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Replica && n.status == NodeStatus::Active && reader_ok(n))
        .map(addr)
        .collect();
    if replicas.is_empty() {
        replicas = primary.clone();
    }
    let ep = |host: &str| SocketAddrV4::new(host.parse().unwrap_or(Ipv4Addr::LOCALHOST), c.endpoint_port);
    Some([
        Route {
            listen: ep(&c.writer_host),
            backends: writer,
            exclusive: true,
            allowed: allowed.to_vec(),
        },
        Route {
            listen: ep(&c.reader_host),
            backends: replicas,
            exclusive: false,
            allowed: allowed.to_vec(),
        },
    ])
}

/// What the data path should carry, and which cluster each address belongs to.
pub(crate) struct DesiredEndpoints {
    pub plan: EndpointPlan,
    /// Endpoint or node address → (cluster id, `writer` | `reader` | `node`).
    pub owners: HashMap<SocketAddrV4, (String, &'static str)>,
}

/// The plan last applied and when.
pub(crate) struct AppliedEndpoints {
    pub plan: EndpointPlan,
    pub owners: HashMap<SocketAddrV4, (String, &'static str)>,
    pub at: Instant,
}

async fn desired_plan(app: &Marina) -> Result<DesiredEndpoints, Error> {
    let mut plan = EndpointPlan::default();
    let mut owners = HashMap::new();
    // SAFETY: geteuid has no preconditions.
    let marina_uid = unsafe { libc::geteuid() };
    plan.control_plane.uids = vec![marina_uid];
    let mut nodes_of = app.nodes_by_cluster().await?;
    for c in app.store.live_clusters().await? {
        let nodes = nodes_of.remove(&c.id).unwrap_or_default();
        let max_lag = app.config.monitor.max_reader_lag_secs as f64;
        let reader_ok = |n: &NodeRecord| crate::monitor::plan::reader_fit(n, app.monitor.node(&n.id).as_ref(), max_lag);
        let allowed = admitted_sources(app, &c).await?;
        // A writer that leads nowhere (a failover): its open connections lead
        // to the old primary, which a fence closes.
        let mut idle_writer = None;
        if let Some(r) = cluster_routes(&c, &nodes, &reader_ok, &allowed) {
            idle_writer = r[0].backends.is_empty().then_some(r[0].listen);
            owners.insert(r[0].listen, (c.id.clone(), "writer"));
            owners.insert(r[1].listen, (c.id.clone(), "reader"));
            plan.routes.extend(r);
        }
        let uids: Vec<u32> = std::iter::once(marina_uid).chain(app.cluster_uid(&c)).collect();
        let mut by_host: std::collections::BTreeMap<Ipv4Addr, Vec<u16>> = Default::default();
        for n in &nodes {
            let host = n.host.parse().unwrap_or(Ipv4Addr::LOCALHOST);
            by_host.entry(host).or_default().push(n.port);
            owners.insert(SocketAddrV4::new(host, n.port), (c.id.clone(), "node"));
            // The old primary is fenced while it still holds the role (its
            // failover promotes another node later); a promotion clears it.
            if n.fenced {
                plan.fenced.push(marina_endpoints::Fence {
                    node: SocketAddrV4::new(host, n.port),
                    remote: !app.on_local_host(n.host_id.as_deref()),
                    writer: idle_writer,
                });
            }
        }
        plan.guards.extend(by_host.into_iter().map(|(host, ports)| NodeGuard {
            host,
            ports,
            uids: uids.clone(),
            peers: Vec::new(),
        }));
    }
    Ok(DesiredEndpoints { plan, owners })
}

/// The sources a cluster's endpoints admit: loopback when no security group is
/// attached, otherwise exactly the IPv4 networks of the attached groups' rules
/// whose port range covers the endpoint port (endpoints are IPv4 loopback
/// addresses, so IPv6 rules cannot match them).
async fn admitted_sources(app: &Marina, c: &ClusterRecord) -> Result<Vec<ipnet::Ipv4Net>, Error> {
    if app.store.cluster_security_groups(&c.id).await?.is_empty() {
        return Ok(marina_endpoints::loopback_only());
    }
    let port = c.endpoint_port;
    Ok(app
        .store
        .cluster_rules(&c.id)
        .await?
        .iter()
        .filter(|r| r.from_port <= port && port <= r.to_port)
        .filter_map(|r| match r.cidr.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(n)) => Some(n),
            _ => None,
        })
        .collect())
}

async fn apply_plan(app: &Marina, desired: DesiredEndpoints) -> Result<(), Error> {
    app.datapath
        .apply(&desired.plan)
        .await
        .map_err(|e| Error::Unavailable(format!("applying endpoints: {e}")))?;
    app.push_endpoints(&desired.plan).await;
    *app.endpoints_applied.lock().unwrap_or_else(|e| e.into_inner()) = Some(AppliedEndpoints {
        plan: desired.plan,
        owners: desired.owners,
        at: Instant::now(),
    });
    Ok(())
}

/// Applies the desired routes now (operations call this).
pub async fn apply_endpoints(app: &Marina) -> Result<(), Error> {
    let _turn = app.endpoints_turn.lock().await;
    let desired = desired_plan(app).await?;
    apply_plan(app, desired).await
}

/// Removes every route of this instance (shutdown of tests; not used by serve,
/// whose endpoints outlive it in kernel mode).
pub async fn clear_endpoints(app: &Marina) -> Result<(), Error> {
    let _turn = app.endpoints_turn.lock().await;
    apply_plan(
        app,
        DesiredEndpoints {
            plan: EndpointPlan::default(),
            owners: HashMap::new(),
        },
    )
    .await
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
