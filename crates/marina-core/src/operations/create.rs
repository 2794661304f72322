//! The `create_cluster` operation.
//!
//! Steps:
//! 1. `prepare_nodes`: clone the version's template datadir for each node and
//!    write its option and init files (no `mariadb-install-db` per node).
//! 2. `start_nodes`: start every node concurrently and wait for logins (a
//!    running node is adopted, not started twice).
//! 3. `configure_replication`: make the primary writable, point each replica at
//!    it with GTID, wait until the replica threads run.
//! 4. `create_catalog`: the databases and accounts asked for at create time
//!    (Trove's create body), on the primary; what exists already is kept.
//! 5. `activate`: the endpoints are routed (the cluster marked ready while
//!    still `creating`), then nodes and cluster become `active`, endpoints are published and
//!    applied.
//!
//! On failure every node process is stopped and the cluster is marked `failed`
//! (its files stay until it is deleted, so the log can be read).

use std::sync::Arc;
use std::time::{Duration, Instant};

use marina_common::Error;
use marina_common::model::{ClusterStatus, NodeRole, NodeStatus, Operation};

use super::StepContext;
use super::step::StepKind;
use super::{admin_err, each_node, primary_of, runtime_err};
use crate::Marina;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::PrepareNodes,
    StepKind::StartNodes,
    StepKind::ConfigureReplication,
    StepKind::CreateCatalog,
    StepKind::Activate,
];

/// How long replicas get to connect to the primary.
const REPLICA_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let cluster_id = cluster.id.as_str();
    match step {
        StepKind::PrepareNodes => {
            let c = cluster.clone();
            let s = secrets.clone();
            each_node(app, &nodes, move |app, n| {
                let spec = app.node_spec(&c, &n, &s);
                async move { app.runtime_of(&n).await?.prepare(&spec?).await.map_err(runtime_err) }
            })
            .await
        }
        StepKind::StartNodes => {
            let c = cluster.clone();
            let s = secrets.clone();
            each_node(app, &nodes, move |app, n| {
                let spec = app.node_spec(&c, &n, &s);
                async move {
                    let rt = app.runtime_of(&n).await?;
                    rt.start(&spec?).await.map(|_| ()).map_err(runtime_err)
                }
            })
            .await
        }
        StepKind::ConfigureReplication => {
            let primary = primary_of(&nodes)?;
            let semisync = cluster.primary_waits_for_acks();
            app.admin
                .make_primary(&app.mgmt_addr(primary, &secrets), semisync)
                .await
                .map_err(admin_err)?;
            let source = app.replica_source(primary, &secrets);
            for r in nodes.iter().filter(|n| n.role == NodeRole::Replica) {
                let addr = app.mgmt_addr(r, &secrets);
                app.admin.set_read_only(&addr, true).await.map_err(admin_err)?;
                app.admin
                    .start_replica(&addr, &source, false)
                    .await
                    .map_err(admin_err)?;
            }
            for r in nodes.iter().filter(|n| n.role == NodeRole::Replica) {
                wait_replicating(app, &app.mgmt_addr(r, &secrets)).await?;
            }
            Ok(())
        }
        StepKind::CreateCatalog => match &secrets.initial_catalog {
            Some(initial) => {
                let primary = primary_of(&nodes)?;
                app.create_initial_catalog(&app.mgmt_addr(primary, &secrets), initial)
                    .await?;
                // Done: the password hashes need not be kept.
                let mut kept = secrets.clone();
                kept.initial_catalog = None;
                app.store_cluster_secrets(cluster_id, &kept).await
            }
            None => Ok(()),
        },
        StepKind::Activate => {
            // Nodes active, then routes: the endpoints of a creating cluster
            // marked ready are applied (readers included: a creating and an
            // active cluster route alike, so this one apply is the last),
            // then the cluster turns active. On a re-run after a crash the
            // cluster may be active already: its routes are applied after.
            for n in &nodes {
                app.store.update_node(&n.id, n.role, NodeStatus::Active).await?;
            }
            let routed = cluster.status == ClusterStatus::Creating;
            if routed {
                app.store
                    .update_cluster_status(
                        cluster_id,
                        &[ClusterStatus::Creating],
                        ClusterStatus::Creating,
                        Some(true),
                    )
                    .await?;
                crate::supervisor::apply_endpoints(app).await?;
            }
            app.store
                .update_cluster_status(
                    cluster_id,
                    &[ClusterStatus::Creating, ClusterStatus::Active],
                    ClusterStatus::Active,
                    Some(true),
                )
                .await?
                .ok_or_else(|| Error::Conflict(format!("cluster {} changed state during create", cluster.name)))?;
            if !routed {
                crate::supervisor::apply_endpoints(app).await?;
            }
            app.event(
                &cluster.tenant_id,
                cluster_id,
                None,
                "cluster_active",
                format!(
                    "cluster {} is active: writer {}:{}, reader {}:{}",
                    cluster.name,
                    cluster.writer_host,
                    cluster.endpoint_port,
                    cluster.reader_host,
                    cluster.endpoint_port
                ),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown create step {other}"))),
    }
}

pub(super) async fn wait_replicating(app: &Marina, addr: &marina_engine::NodeAddr) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        let st = app.admin.replica_status(addr).await.map_err(admin_err)?;
        match st {
            Some(s) if s.io_running && s.sql_running => return Ok(()),
            Some(s) if start.elapsed() > REPLICA_CONNECT_TIMEOUT => {
                return Err(Error::Unavailable(format!(
                    "replica {}:{} did not start replicating: {}",
                    addr.host, addr.port, s.last_error
                )));
            }
            None => {
                return Err(Error::internal(format!(
                    "{}:{} is not configured as a replica",
                    addr.host, addr.port
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(StepContext { cluster, nodes, .. }) = StepContext::load_if_present(app, op).await? else {
        return Ok(());
    };
    let cluster_id = cluster.id.as_str();
    each_node(app, &nodes, |app, n| async move {
        app.runtime_of(&n)
            .await?
            .stop(&n.id, Duration::from_secs(10))
            .await
            .map_err(runtime_err)?;
        app.store.update_node(&n.id, n.role, NodeStatus::Failed).await?;
        Ok(())
    })
    .await?;
    app.store
        .update_cluster_status(
            cluster_id,
            &[ClusterStatus::Creating, ClusterStatus::Active],
            ClusterStatus::Failed,
            // A cluster that never served is left alone by the supervisor.
            Some(false),
        )
        .await?;
    app.event(
        &cluster.tenant_id,
        cluster_id,
        None,
        "cluster_failed",
        format!("creating cluster {} failed: {e}", cluster.name),
    )
    .await;
    Ok(())
}
