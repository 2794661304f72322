//! Binlog archiving for point-in-time recovery: a small reconciler that keeps
//! the blob store holding every closed binlog file of each archived cluster's
//! current primary.
//!
//! Rules:
//! - Every `backups.binlog_flush_secs`, for each cluster whose policy has
//!   `binlog_archive`, the primary's binlog is rotated (`FLUSH BINARY LOGS`,
//!   then every closed file not yet archived
//!   for that node is copied to `<tenant>/<cluster>/binlogs/<node>/<file>` with
//!   its SHA-256, its GTID range (its own `Gtid_list`, the next file's) and
//!   its `rotated_at`: the file's modification time, which is when it was
//!   closed (the server's last write to it is the rotate event), so every
//!   event in it is older. Not the pass's time: a pass that archives several
//!   files (after a failure, or when archiving starts) would otherwise date
//!   old files late, and a restore would stop before files it still needs.
//! - It follows failovers by construction: it always reads whichever node is
//!   the primary now; with `log_slave_updates` a new primary's binlog holds the
//!   transactions it replicated too, so overlapping ranges are expected and the
//!   replay skips what it already applied (by GTID).
//! - Idempotent: a file already recorded is never copied twice; a crash
//!   between copy and record copies it again, over the same key.
//! - The restore window runs from the oldest completed backup finished after
//!   archiving started to the newest archived file's `rotated_at`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use marina_common::model::{ArchivedBinlog, ClusterRecord, ClusterStatus, NodeRole, NodeStatus};
use marina_common::{Error, time_fmt};

use crate::Marina;
use crate::operations::admin_err;

/// When each cluster's primary binlog was last rotated by the archiver.
#[derive(Default)]
pub struct ArchiverState {
    last_flush: Mutex<HashMap<String, Instant>>,
}

/// One activation (`background/`): archives every archiving cluster that is
/// due; returns how many clusters archive and how many failed (one
/// cluster's failure never stops the others).
pub(crate) async fn archive_all(app: &Marina) -> Result<(usize, usize), Error> {
    let (mut archiving, mut failed) = (0, 0);
    for c in app.store.live_clusters().await? {
        if c.backup_policy.as_ref().is_some_and(|p| p.binlog_archive)
            && matches!(
                c.status,
                ClusterStatus::Active | ClusterStatus::Degraded | ClusterStatus::Updating
            )
        {
            archiving += 1;
            if let Err(e) = archive_once(app, &c).await {
                failed += 1;
                tracing::warn!(cluster_id = %c.id, error = %e, "binlog archiving failed; next pass retries");
            }
        }
    }
    Ok((archiving, failed))
}

/// The blob key of an archived binlog file.
pub fn binlog_key(tenant_id: &str, cluster_id: &str, node_id: &str, file: &str) -> String {
    format!("{tenant_id}/{cluster_id}/binlogs/{node_id}/{file}")
}

/// Rotates and archives one cluster's primary binlog when it is due.
pub async fn archive_once(app: &Marina, c: &ClusterRecord) -> Result<(), Error> {
    let every = Duration::from_secs(app.config.backups.binlog_flush_secs.max(1));
    let due = app
        .archiver
        .last_flush
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&c.id)
        .is_none_or(|t| t.elapsed() >= every);
    if !due {
        return Ok(());
    }
    let nodes = app.store.list_nodes(&c.id).await?;
    let Some(primary) = nodes
        .iter()
        .find(|n| n.role == NodeRole::Primary && n.status == NodeStatus::Active)
    else {
        return Ok(());
    };
    let secrets = app.cluster_secrets(c)?;
    let addr = app.mgmt_addr(primary, &secrets);
    let flushed_at = time::OffsetDateTime::now_utc();
    app.admin.flush_binary_logs(&addr).await.map_err(admin_err)?;
    app.archiver
        .last_flush
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(c.id.clone(), Instant::now());
    let files = app.admin.binlog_files(&addr).await.map_err(admin_err)?;
    let archived: Vec<String> = app
        .store
        .archived_binlogs(&c.id)
        .await?
        .into_iter()
        .filter(|b| b.node_id == primary.id)
        .map(|b| b.file)
        .collect();
    // Every file but the last (the one being written) is closed.
    for pair in files.windows(2) {
        let (file, next) = (&pair[0].0, &pair[1].0);
        if archived.contains(file) {
            continue;
        }
        let gtid_start = app.admin.binlog_start_state(&addr, file).await.map_err(admin_err)?;
        let gtid_end = app.admin.binlog_start_state(&addr, next).await.map_err(admin_err)?;
        let key = binlog_key(&c.tenant_id, &c.id, &primary.id, file);
        let mut f = app
            .runtime_of(primary)
            .await?
            .open_binlog(&primary.id, file)
            .await
            .map_err(|e| Error::internal(format!("opening binlog {file}: {e}")))?;
        let closed_at = closed_at(f.modified, flushed_at);
        let written = app
            .blobs
            .write(&key, f.reader.as_mut())
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        app.blobs
            .commit(&key)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        app.store
            .add_archived_binlog(&ArchivedBinlog {
                cluster_id: c.id.clone(),
                node_id: primary.id.clone(),
                file: file.clone(),
                gtid_start,
                gtid_end,
                size_bytes: written.size,
                checksum: format!("sha256:{}", written.sha256),
                rotated_at: time_fmt::format_rfc3339(closed_at),
            })
            .await?;
    }
    Ok(())
}

/// When a closed binlog file was closed: its modification time (no later
/// than the flush that closed the newest one, in case the clock or the file
/// system says otherwise).
fn closed_at(modified: Option<std::time::SystemTime>, flushed_at: time::OffsetDateTime) -> time::OffsetDateTime {
    match modified {
        Some(t) => time::OffsetDateTime::from(t).min(flushed_at + time::Duration::SECOND),
        None => flushed_at,
    }
}

/// `{earliest, latest}` a cluster can be restored to, if any.
pub async fn restore_window(app: &Marina, c: &ClusterRecord) -> Result<Option<(String, String)>, Error> {
    let Some(since) = c.binlog_archive_since.as_deref() else {
        return Ok(None);
    };
    let earliest = app
        .all_backups(&c.id)
        .await?
        .iter()
        .filter(|b| b.status == marina_common::model::BackupStatus::Completed)
        .filter_map(|b| b.finished_at.clone())
        .filter(|f| f.as_str() >= since)
        .min();
    let latest = app
        .store
        .archived_binlogs(&c.id)
        .await?
        .into_iter()
        .map(|b| b.rotated_at)
        .max();
    // Whole seconds, the resolution a restore reaches exactly.
    let second = |s: &str, up: bool| {
        let t = time_fmt::parse_rfc3339(s)?;
        let down = t.replace_nanosecond(0).ok()?;
        let t = if up && down != t {
            down + time::Duration::SECOND
        } else {
            down
        };
        Some(time_fmt::format_rfc3339(t))
    };
    Ok(match (earliest, latest) {
        (Some(e), Some(l)) => match (second(&e, true), second(&l, false)) {
            (Some(e), Some(l)) if e <= l => Some((e, l)),
            _ => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_closes_when_modified_but_never_after_the_flush() {
        let flushed = time::macros::datetime!(2026-12-06 12:00:10 UTC);
        let at = |s: i64| std::time::SystemTime::from(flushed + time::Duration::seconds(s));
        let cases = [
            (Some(at(-8)), flushed - time::Duration::seconds(8)),
            (Some(at(1)), flushed + time::Duration::SECOND),
            (Some(at(30)), flushed + time::Duration::SECOND),
            (None, flushed),
        ];
        for (modified, want) in cases {
            assert_eq!(closed_at(modified, flushed), want, "{modified:?}");
        }
    }
}
