//! The `restore_cluster` operation: a new cluster that starts from a backup.
//! A restore never touches a running cluster; it creates one.
//!
//! Steps (the create steps, around three of its own):
//! 1. `verify_backup`: the backup is still there, completed, and its data
//!    object matches its SHA-256 checksum — before anything is built.
//! 2. `prepare_nodes` (create's).
//! 3. `restore_data`: physical backups only — every node's datadir is replaced
//!    by the backup, extracted (`mbstream -x`) and prepared
//!    (`mariadb-backup --prepare`) in a scratch directory and swapped in; a
//!    marker file makes the step skip nodes already done.
//! 4. `start_nodes` (create's). The init file sets this cluster's passwords on
//!    the accounts the restored datadir brought along.
//! 5. `reset_history`: the restored datadir remembers its source's replication
//!    and binlog state; every node forgets it, so the new cluster starts from
//!    one empty history, like a fresh one.
//! 6. `configure_replication` (create's).
//! 7. `load_dump`: logical backups only — the dump is played into the primary
//!    with binary logging on, so the replicas receive it by replication, in a
//!    GTID domain of its own (after the backup position's domains) so that
//!    the replay below never mistakes the load's transactions for the
//!    source's. A dump recreates what it loads (`DROP TABLE IF EXISTS`), so a
//!    resumed load converges.
//! 8. `replay_binlogs`: point-in-time restores only — the source cluster's
//!    archived binlogs are played into the new primary with `mariadb-binlog
//!    --start-position=<GTID state> --stop-datetime=<T> | mariadb`, file by
//!    file in archive order; the state starts at the backup's GTID (or what the
//!    new primary already has, after a crash) and grows with each file, so
//!    ranges that overlap (a failover's new primary logged what it replicated)
//!    are never applied twice. Each file's checksum is verified first. A file
//!    that starts past the state reached (a gap in the archive), or an archive
//!    that ends before T, fails the restore: it never restores less than T.
//! 9. `activate` (create's).
//!
//! On failure: as for a create (nodes stopped, cluster `failed`).

use std::sync::Arc;

use marina_backup::pipeline;
use marina_common::Error;
use marina_common::model::{
    BackupMethod, BackupRecord, BackupStatus, ClusterRecord, ClusterSecrets, NodeRecord, Operation,
};
use marina_engine::gtid::GtidPos;
use marina_engine::users::MGMT_USER;

use super::datadir::{has_marker, install_prepared, pipeline_err};
use super::step::StepKind;
use super::{StepContext, admin_err, create, each_node, primary_of};
use crate::Marina;
use crate::backups::data_key;
use crate::binlog_archive::binlog_key;
use marina_host::Login;

pub(super) const STEPS: &[StepKind] = &[
    StepKind::VerifyBackup,
    StepKind::PrepareNodes,
    StepKind::RestoreData,
    StepKind::StartNodes,
    StepKind::ResetHistory,
    StepKind::ConfigureReplication,
    StepKind::LoadDump,
    StepKind::ReplayBinlogs,
    StepKind::Activate,
];

async fn source_backup(app: &Marina, cluster: &ClusterRecord) -> Result<BackupRecord, Error> {
    let restore = cluster
        .restore
        .as_ref()
        .ok_or_else(|| Error::internal(format!("cluster {} has nothing to restore", cluster.id)))?;
    let b = app
        .store
        .get_backup(Some(&cluster.tenant_id), &restore.backup_id)
        .await?
        .ok_or_else(|| Error::Conflict(format!("backup {} was deleted", restore.backup_id)))?;
    if b.status != BackupStatus::Completed {
        return Err(Error::Conflict(format!("backup {} is {}", b.id, b.status)));
    }
    Ok(b)
}

/// Replaces a node's datadir with a physical backup (idempotent by marker).
async fn restore_node(app: &Marina, node: &NodeRecord, b: &BackupRecord) -> Result<(), Error> {
    let marker = format!("restored-{}", b.id);
    if has_marker(app, node, &marker).await? {
        return Ok(());
    }
    app.data_of(node)
        .await?
        .extract_backup(app.blobs.as_ref(), &data_key(b), &node.id, "restore.tmp")
        .await
        .map_err(pipeline_err)?;
    install_prepared(app, node, "restore.tmp", &marker, &b.id).await
}

pub(super) async fn run_step(app: &Arc<Marina>, op: &Operation, step: StepKind) -> Result<(), Error> {
    if matches!(
        step,
        StepKind::PrepareNodes | StepKind::StartNodes | StepKind::ConfigureReplication
    ) {
        return create::run_step(app, op, step).await;
    }
    if step == StepKind::Activate {
        create::run_step(app, op, step).await?;
    }
    let StepContext {
        cluster,
        nodes,
        secrets,
    } = StepContext::load(app, op).await?;
    let b = source_backup(app, &cluster).await?;
    let primary = || primary_of(&nodes);
    match step {
        StepKind::VerifyBackup => {
            let checksum = b.checksum.as_deref().unwrap_or_default();
            let sha = checksum.strip_prefix("sha256:").unwrap_or(checksum);
            pipeline::verify(app.blobs.as_ref(), &data_key(&b), sha)
                .await
                .map_err(pipeline_err)?;
            Ok(())
        }
        StepKind::RestoreData => {
            if b.method != BackupMethod::Physical {
                return Ok(());
            }
            each_node(app, &nodes, move |app, n| {
                let b = b.clone();
                async move { restore_node(&app, &n, &b).await }
            })
            .await
        }
        StepKind::ResetHistory => {
            for n in &nodes {
                app.admin
                    .reset_history(&app.mgmt_addr(n, &secrets))
                    .await
                    .map_err(admin_err)?;
            }
            Ok(())
        }
        StepKind::LoadDump => {
            if b.method != BackupMethod::Logical {
                return Ok(());
            }
            // The load's own transactions get a GTID domain of their own, so
            // the replay never takes them for the source's (same domain,
            // same server id, higher numbers: every archived file looked
            // applied and a point-in-time restore lost what followed).
            let domain = format!("--init-command=SET SESSION gtid_domain_id = {}", load_domain(&b)?);
            app.data_of(primary()?)
                .await?
                .load_sql(
                    &primary()?.id,
                    &login(&secrets),
                    &[domain],
                    app.blobs.as_ref(),
                    &data_key(&b),
                )
                .await
                .map_err(pipeline_err)
        }
        StepKind::ReplayBinlogs => replay_binlogs(app, op, &cluster, primary()?, &secrets, &b).await,
        StepKind::Activate => {
            app.event(
                &cluster.tenant_id,
                &cluster.id,
                None,
                "cluster_restored",
                format!(
                    "cluster {} restored from {} backup {} (GTID {} of cluster {})",
                    cluster.name,
                    b.method,
                    b.id,
                    b.gtid_position.as_deref().unwrap_or(""),
                    b.cluster_id
                ),
            )
            .await;
            Ok(())
        }
        other => Err(Error::internal(format!("unknown restore step {other}"))),
    }
}

async fn replay_binlogs(
    app: &Arc<Marina>,
    op: &Operation,
    cluster: &ClusterRecord,
    primary: &NodeRecord,
    secrets: &ClusterSecrets,
    b: &BackupRecord,
) -> Result<(), Error> {
    let Some(until) = cluster.restore.as_ref().and_then(|r| r.point_in_time.clone()) else {
        return Ok(());
    };
    let until_t = marina_common::time_fmt::parse_rfc3339(&until)
        .ok_or_else(|| Error::internal(format!("bad point in time {until}")))?;
    // mariadb-binlog stops at the first event of the second T falls in.
    let stop_t = until_t
        .replace_nanosecond(0)
        .map_err(|e| Error::internal(format!("bad point in time {until}: {e}")))?;
    let stop = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        until_t.year(),
        u8::from(until_t.month()),
        until_t.day(),
        until_t.hour(),
        until_t.minute(),
        until_t.second()
    );
    let addr = app.mgmt_addr(primary, secrets);
    let parse = |s: &str| GtidPos::parse(s).map_err(Error::internal);
    // Resumable: what the new primary already applied of the source's
    // history (not a logical load's own domain) counts as replayed.
    let applied = app.admin.gtid_binlog_pos(&addr).await.map_err(admin_err)?;
    let applied = parse(&applied)?.without(load_domain(b)?);
    let mut state = parse(b.gtid_position.as_deref().unwrap_or_default())?.max(&applied);
    let files = app.store.archived_binlogs(&b.cluster_id).await?;
    for f in files {
        let (start, end) = (parse(&f.gtid_start)?, parse(&f.gtid_end)?);
        // Every event before T is in this file or an earlier one once
        // the file was closed at or after T (whole seconds: the stop).
        let closed_after_t = marina_common::time_fmt::parse_rfc3339(&f.rotated_at).is_some_and(|r| r >= stop_t);
        if end.le(&state) {
            // Nothing new (a quiet second's file, or one a newer primary
            // also holds): if it closed after T, T is reached.
            if closed_after_t {
                return Ok(());
            }
            continue;
        }
        if !start.le(&state) {
            return Err(Error::Conflict(format!(
                "the binlog archive of cluster {} has a gap: {} starts at {start} but the restore has only \
                 reached {state}; {until} cannot be reached exactly",
                b.cluster_id, f.file
            )));
        }
        let key = binlog_key(&b.tenant_id, &b.cluster_id, &f.node_id, &f.file);
        let sha = f.checksum.strip_prefix("sha256:").unwrap_or(&f.checksum);
        pipeline::verify(app.blobs.as_ref(), &key, sha)
            .await
            .map_err(pipeline_err)?;
        // mariadb-binlog must find the start state inside the file: a
        // file that starts at or after what is applied is played whole.
        let mut args = Vec::new();
        if !state.0.is_empty() && !state.le(&start) {
            args.push(format!("--start-position={state}"));
        }
        args.push(format!("--stop-datetime={stop}"));
        let local = format!("{}-{}", f.node_id, f.file);
        app.data_of(primary)
            .await?
            .replay_binlog(
                &primary.id,
                &login(secrets),
                app.blobs.as_ref(),
                (&key, &local),
                &args,
                &op.id,
            )
            .await
            .map_err(pipeline_err)?;
        state = state.max(&end);
        if closed_after_t {
            return Ok(());
        }
    }
    Err(Error::Conflict(format!(
        "the binlog archive of cluster {} ends before {until} (it reached {state}): the restore cannot reach \
         that time exactly",
        b.cluster_id
    )))
}

/// The GTID domain a logical backup's load writes in: after every domain the
/// backup's position names, so it is none of the source's.
fn load_domain(b: &BackupRecord) -> Result<u32, Error> {
    let pos = GtidPos::parse(b.gtid_position.as_deref().unwrap_or_default()).map_err(Error::internal)?;
    Ok(pos.next_domain())
}

/// The account SQL text is loaded into a node as: the management account.
fn login(secrets: &ClusterSecrets) -> Login<'_> {
    Login {
        user: MGMT_USER,
        password: &secrets.mgmt_password,
    }
}

pub(super) async fn on_failure(app: &Arc<Marina>, op: &Operation, e: &Error) -> Result<(), Error> {
    create::on_failure(app, op, e).await
}
