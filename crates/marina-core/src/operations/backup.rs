//! The `backup` operation.
//!
//! Steps:
//! 1. `take_backup`: pick the source — the healthy replica with the least lag
//!    (never stalling the primary), the primary only when the cluster has no
//!    healthy replica (an event says so) — remove anything a previous attempt
//!    left under the backup's prefix, stream the backup through `zstd` into
//!    the blob store, and commit the data object once the tool exited cleanly.
//!    Size, checksum and GTID position are recorded; the backup stays
//!    `running`. Run again after a crash, the step starts over from scratch.
//! 2. `finalize`: write and commit `manifest.json`, then mark the backup
//!    `completed`. Only now can it be restored.
//!
//! On failure the backup's objects are removed and it is marked `failed`
//! with the error.

use std::sync::Arc;

use marina_backup::{Manifest, Pace, Redo, RedoMeter, pipeline};
use marina_common::Error;
use marina_common::model::{
    BackupMethod, BackupRecord, BackupStatus, ClusterSecrets, NodeRecord, NodeRole, NodeStatus, Operation,
};
use marina_common::time_fmt::now_rfc3339;
use marina_engine::backup as tools;
use marina_host::BackupTool;
use marina_runtime::ProcessState;
use marina_runtime::cgroup::Share;

use super::StepContext;
use super::datadir::pipeline_err;
use super::step::StepKind;
use crate::Marina;
use crate::backups::{data_key, manifest_key, prefix};

pub(super) const STEPS: &[StepKind] = &[StepKind::TakeBackup, StepKind::Finalize];

/// How hard a backup from `source` may work while the host is busy. A
/// replica's copy runs with its SQL thread stopped (it serves no client and
/// applies nothing meanwhile), so only its CPU group holds its tools back:
/// no rate limit. A copy of the primary takes the configured busy rate and
/// bursts (`backups.busy_rate_mib`, `busy_stretch`), the node's own
/// `mariadbd` (which a dump keeps busy by design) not counting as the host's
/// work. A physical backup's pace also follows the source's redo, which its
/// stream carries. The tools of a physical backup run in the runtime's idle
/// cgroup when nodes have groups, a dump's in the low one (`cgroup::Share`).
async fn backup_pace(
    app: &Marina,
    source: &NodeRecord,
    from_replica: bool,
    secrets: &ClusterSecrets,
    method: BackupMethod,
) -> Pace {
    // (A source on an agent host: its agent finds the pid itself.)
    let pid = match app.runtime.state(&source.id).await {
        ProcessState::Running(pid) if app.on_local_host(source.host_id.as_deref()) => Some(pid),
        _ => None,
    };
    let redo = (method == BackupMethod::Physical).then(|| -> RedoMeter {
        let (admin, addr) = (app.admin.clone(), app.mgmt_addr(source, secrets));
        Arc::new(move || {
            let (admin, addr) = (admin.clone(), addr.clone());
            Box::pin(async move {
                let (lsn, capacity) = admin.redo(&addr).await.ok()?;
                Some(Redo { lsn, capacity })
            })
        })
    });
    Pace {
        busy_rate: if from_replica {
            0
        } else {
            (app.config.backups.busy_rate_mib * 1024.0 * 1024.0) as u64
        },
        busy_cpus: app.config.backups.busy_cpus,
        exclude: pid.into_iter().collect(),
        redo,
        group: app.runtime.backup_group(match method {
            BackupMethod::Physical => Share::Idle,
            BackupMethod::Logical => Share::Low,
        }),
        stretch: app.config.backups.busy_stretch,
    }
}

/// One copy of `source` into the blob store (written, not committed): the
/// tool's output and the GTID position it reported. A copy of a replica
/// stops its SQL thread for the copy (a physical one through
/// `replica_backup_args`, a logical one here, restarted after the dump
/// whatever its outcome; after a crash the monitor restarts it, as it does
/// for any replica whose SQL thread stopped while no backup runs): the
/// source then writes no redo and no row versions while it is read, and
/// what it would spend applying the primary's writes is left to the copy.
async fn copy_once(
    app: &Marina,
    b: &BackupRecord,
    source: &NodeRecord,
    from_replica: bool,
    secrets: &ClusterSecrets,
) -> Result<(pipeline::Produced, String), Error> {
    app.blobs
        .delete_prefix(&prefix(b))
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let key = data_key(b);
    let pace = backup_pace(app, source, from_replica, secrets, b.method).await;
    let tool = match b.method {
        BackupMethod::Physical => BackupTool::Physical { from_replica },
        BackupMethod::Logical => BackupTool::Logical,
    };
    let paused = from_replica && b.method == BackupMethod::Logical;
    let addr = app.mgmt_addr(source, secrets);
    if paused {
        app.admin
            .stop_sql_thread(&addr)
            .await
            .map_err(|e| Error::Unavailable(format!("pausing the source replica's SQL thread: {e}")))?;
    }
    let produced = match app.data_of(source).await {
        Ok(data) => {
            data.backup(&source.id, tool, &b.id, app.blobs.as_ref(), &key, &pace)
                .await
        }
        Err(e) => Err(marina_backup::PipelineError::Io(e.to_string())),
    };
    if paused && let Err(e) = app.admin.start_sql_thread(&addr).await {
        tracing::warn!(node = %source.id, "restarting the SQL thread after a logical backup: {e} (the monitor restarts it)");
    }
    let produced = produced.map_err(pipeline_err)?;
    // Written but not committed: a crash here must not leave a backup
    // that looks complete (the tests kill the control plane here).
    crate::failpoint::hit("backup:take_backup:written");
    let gtid = match b.method {
        BackupMethod::Physical => tools::parse_physical_gtid(&produced.log),
        BackupMethod::Logical => tools::parse_dump_gtid(&produced.tail),
    }
    .ok_or_else(|| Error::Unavailable(format!("the {} backup did not report its GTID position", b.method)))?;
    Ok((produced, gtid))
}

async fn backup_of(app: &Marina, op: &Operation) -> Result<BackupRecord, Error> {
    app.store
        .backup_for_operation(&op.id)
        .await?
        .ok_or_else(|| Error::internal(format!("operation {} has no backup", op.id)))
}

/// The node a backup is read from: the replica the monitor sees replicating
/// with the least lag; failing that (no fresh view), an active replica whose
/// replication threads run when asked now; else the primary. The flag says
/// whether it is a replica. `local_only`: among the nodes on this machine
/// (a backup into a local store, which only this machine reaches).
pub(super) async fn choose_source(
    app: &Marina,
    nodes: &[NodeRecord],
    secrets: &marina_common::model::ClusterSecrets,
    local_only: bool,
) -> Option<(NodeRecord, bool)> {
    let nodes: Vec<&NodeRecord> = nodes
        .iter()
        .filter(|n| !local_only || app.on_local_host(n.host_id.as_deref()))
        .collect();
    let active_replicas: Vec<&NodeRecord> = nodes
        .iter()
        .copied()
        .filter(|n| n.role == NodeRole::Replica && n.status == NodeStatus::Active)
        .collect();
    let lag = |n: &NodeRecord| {
        app.monitor
            .node(&n.id)
            .filter(|h| h.is_replicating())
            .map(|h| h.lag_seconds().unwrap_or(0.0))
    };
    let seen = active_replicas
        .iter()
        .filter_map(|n| lag(n).map(|l| (*n, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, _)| n.clone());
    if let Some(r) = seen {
        return Some((r, true));
    }
    for r in active_replicas {
        if let Ok(Some(st)) = app.admin.replica_status(&app.mgmt_addr(r, secrets)).await
            && st.io_running
            && st.sql_running
        {
            return Some((r.clone(), true));
        }
    }
    nodes
        .iter()
        .find(|n| n.role == NodeRole::Primary)
        .map(|p| ((*p).clone(), false))
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let mut b = backup_of(app, op).await?;
    match step {
        StepKind::TakeBackup => {
            let (source, from_replica) = choose_source(app, &nodes, &secrets, app.blobs.remote().is_none())
                .await
                .ok_or_else(|| {
                    Error::Unavailable(format!(
                        "cluster {} has no node on the control plane's host to back up (nodes on agent hosts are not \
                         backed up yet, issue 23)",
                        cluster.id
                    ))
                })?;
            if !from_replica && cluster.node_count > 1 {
                app.event(
                    &cluster.tenant_id,
                    &cluster.id,
                    Some(&source.id),
                    "backup_from_primary",
                    format!("no healthy replica: backup {} is taken from the primary", b.id),
                )
                .await;
            }
            b.status = BackupStatus::Running;
            b.started_at = Some(now_rfc3339());
            b.source_node_id = Some(source.id.clone());
            app.store.update_backup(&b).await?;
            let attempts = app.config.backups.attempts.max(1);
            let mut attempt = 1;
            let (produced, gtid) = loop {
                match copy_once(app, &b, &source, from_replica, &secrets).await {
                    Ok(done) => break done,
                    Err(e) if attempt < attempts => {
                        app.event(
                            &cluster.tenant_id,
                            &cluster.id,
                            Some(&source.id),
                            "backup_retry",
                            format!(
                                "backup {} attempt {attempt} of {attempts} failed, trying again: {e}",
                                b.id
                            ),
                        )
                        .await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            };
            let key = data_key(&b);
            app.blobs
                .commit(&key)
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            b.size_bytes = Some(produced.written.size);
            b.checksum = Some(format!("sha256:{}", produced.written.sha256));
            b.gtid_position = Some(gtid);
            app.store.update_backup(&b).await?;
            Ok(())
        }
        StepKind::Finalize => {
            let finished = now_rfc3339();
            let manifest = Manifest {
                backup_id: b.id.clone(),
                cluster_id: b.cluster_id.clone(),
                method: b.method.to_string(),
                format: match b.method {
                    BackupMethod::Physical => "mbstream+zstd".into(),
                    BackupMethod::Logical => "sql+zstd".into(),
                },
                object: data_key(&b),
                size_bytes: b.size_bytes.unwrap_or_default(),
                checksum: b.checksum.clone().unwrap_or_default(),
                gtid_position: b.gtid_position.clone().unwrap_or_default(),
                mariadb_version: b.mariadb_version.clone(),
                source_node_id: b.source_node_id.clone().unwrap_or_default(),
                started_at: b.started_at.clone().unwrap_or_default(),
                finished_at: finished.clone(),
            };
            let json = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
            let key = manifest_key(&b);
            app.blobs
                .write(&key, &mut json.as_slice())
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            app.blobs
                .commit(&key)
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            b.status = BackupStatus::Completed;
            b.finished_at = Some(finished);
            app.store.update_backup(&b).await?;
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                b.source_node_id.as_deref(),
                "backup_completed",
                format!(
                    "{} backup {} completed: {} bytes at GTID {}",
                    b.method,
                    b.id,
                    b.size_bytes.unwrap_or_default(),
                    b.gtid_position.as_deref().unwrap_or("")
                ),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown backup step {other}"))),
    }
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    let Some(mut b) = app.store.backup_for_operation(&op.id).await? else {
        return Ok(());
    };
    app.blobs
        .delete_prefix(&prefix(&b))
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    b.status = BackupStatus::Failed;
    b.finished_at = Some(now_rfc3339());
    b.error = Some(e.to_string());
    app.store.update_backup(&b).await?;
    if app.store.get_cluster(None, &b.cluster_id).await?.is_some() {
        app.event(
            &b.tenant_id,
            &b.cluster_id,
            None,
            "backup_failed",
            format!("backup {} failed: {e}", b.id),
        )
        .await;
    }
    Ok(())
}
