//! Scheduled backups and retention: a small reconciler run by the control
//! plane every `SCHEDULE_EVERY`.
//!
//! Rules:
//! - A cluster with a `backup_policy` has a slot: the last schedule time it
//!   acted on (set to "now" when the policy is set, so a new policy never
//!   fires for a time before it existed). A backup is due when the schedule's
//!   first time after the slot has passed.
//! - A due backup and the slot's move to "now" are one store transaction,
//!   guarded by the slot's old value: after a crash, or with several control
//!   planes, one slot takes exactly one backup. Missed times (Marina was down)
//!   collapse into one backup.
//! - A due slot of a cluster that cannot be backed up (not serving, or a backup
//!   still running) is skipped with an event, not queued.
//! - Retention prunes completed *scheduled* backups only (manual backups are
//!   the user's): beyond the newest `retain_count`, and older than
//!   `retain_days`. Failed scheduled backups older than a day are removed too.
//!   With binlog archiving, archived binlogs that end before the oldest kept
//!   backup's GTID position go as well (no restore can use them).

use std::time::Duration;

use marina_common::model::{BackupPolicy, BackupStatus, ClusterRecord, ClusterStatus};
use marina_common::{Error, time_fmt};

use crate::Marina;
use crate::cron::Cron;

/// How often schedules and retention are checked.
pub(crate) const SCHEDULE_EVERY: Duration = Duration::from_secs(1);

/// Parses and checks a policy from a PATCH body.
pub fn check_policy(v: &serde_json::Value) -> Result<BackupPolicy, Error> {
    let p: BackupPolicy =
        serde_json::from_value(v.clone()).map_err(|e| Error::InvalidRequest(format!("backup_policy: {e}")))?;
    Cron::parse(&p.schedule).map_err(|e| Error::InvalidRequest(format!("backup_policy.schedule: {e}")))?;
    if p.retain_count == Some(0) || p.retain_days == Some(0) {
        return Err(Error::InvalidRequest(
            "backup_policy.retain_count and retain_days must be at least 1 when given".into(),
        ));
    }
    Ok(p)
}

impl Marina {
    /// Sets or clears a cluster's policy; the schedule counts from now.
    pub(crate) async fn set_backup_policy(
        &self,
        c: &ClusterRecord,
        policy: Option<&BackupPolicy>,
    ) -> Result<(), Error> {
        let now = time_fmt::now_rfc3339();
        self.store.set_backup_policy(&c.id, policy, &now).await?;
        let archive = policy.is_some_and(|p| p.binlog_archive);
        if archive != c.binlog_archive_since.is_some() {
            self.store
                .set_binlog_archive_since(&c.id, archive.then_some(now.as_str()))
                .await?;
        }
        let message = match policy {
            Some(p) => format!("backup policy set: {} backups on {:?}", p.method, p.schedule),
            None => "backup policy removed".to_string(),
        };
        self.event(&c.tenant_id, &c.id, None, "backup_policy", message).await;
        Ok(())
    }
}

/// One pass: take due backups, prune beyond retention.
pub async fn schedule_once(app: &Marina) -> Result<(), Error> {
    let now = time::OffsetDateTime::now_utc();
    for c in app.store.live_clusters().await? {
        let Some(policy) = c.backup_policy.clone() else {
            continue;
        };
        if let Err(e) = take_if_due(app, &c, &policy, now).await {
            tracing::warn!(cluster_id = %c.id, error = %e, "scheduled backup check failed");
        }
        if let Err(e) = prune(app, &c, &policy, now).await {
            tracing::warn!(cluster_id = %c.id, error = %e, "backup retention failed");
        }
    }
    Ok(())
}

async fn take_if_due(
    app: &Marina,
    c: &ClusterRecord,
    policy: &BackupPolicy,
    now: time::OffsetDateTime,
) -> Result<(), Error> {
    let cron = Cron::parse(&policy.schedule).map_err(Error::internal)?;
    let from = c
        .backup_slot
        .as_deref()
        .and_then(time_fmt::parse_rfc3339)
        .unwrap_or(now);
    let Some(due) = cron.next_after(from) else {
        return Ok(());
    };
    if due > now {
        return Ok(());
    }
    let slot = time_fmt::format_rfc3339(now);
    let expected = c.backup_slot.as_deref();
    let busy = c.status != ClusterStatus::Active && c.status != ClusterStatus::Degraded
        || !app.store.unfinished_backups(&c.id).await?.is_empty();
    if busy {
        if app.store.move_backup_slot(&c.id, expected, &slot).await? {
            app.event(
                &c.tenant_id,
                &c.id,
                None,
                "backup_skipped",
                format!(
                    "scheduled backup of {} skipped: the cluster is {} or a backup is still running",
                    time_fmt::format_rfc3339(due),
                    c.status
                ),
            )
            .await;
        }
        return Ok(());
    }
    match app
        .start_backup(c, policy.method, "schedule", Some((expected, &slot)))
        .await
    {
        Ok(_) => Ok(()),
        // Another pass (or control plane) took this slot.
        Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn prune(app: &Marina, c: &ClusterRecord, policy: &BackupPolicy, now: time::OffsetDateTime) -> Result<(), Error> {
    let scheduled: Vec<_> = app
        .all_backups(&c.id)
        .await?
        .into_iter()
        .filter(|b| b.trigger == "schedule")
        .collect();
    // Newest first.
    let age_days = |at: &Option<String>| {
        at.as_deref()
            .and_then(time_fmt::parse_rfc3339)
            .map(|t| (now - t).as_seconds_f64() / 86_400.0)
    };
    let mut kept = 0u32;
    for b in scheduled {
        let expired = match b.status {
            BackupStatus::Completed => {
                kept += 1;
                policy.retain_count.is_some_and(|n| kept > n)
                    || policy
                        .retain_days
                        .is_some_and(|d| age_days(&b.finished_at).is_some_and(|a| a > f64::from(d)))
            }
            BackupStatus::Failed => age_days(&b.finished_at).is_some_and(|a| a > 1.0),
            BackupStatus::Pending | BackupStatus::Running => false,
        };
        if expired {
            app.delete_backup(&c.tenant_id, &b.id).await?;
            tracing::info!(cluster_id = %c.id, backup_id = %b.id, "scheduled backup pruned by retention");
        }
    }
    if policy.binlog_archive {
        prune_binlogs(app, c).await?;
    }
    Ok(())
}

/// Archived binlogs that end before the oldest kept backup's GTID position
/// can serve no restore any more: they go.
async fn prune_binlogs(app: &Marina, c: &ClusterRecord) -> Result<(), Error> {
    // Newest first: the last completed one is the oldest kept.
    let oldest = app
        .all_backups(&c.id)
        .await?
        .into_iter()
        .rfind(|b| b.status == BackupStatus::Completed);
    let Some(oldest) = oldest else { return Ok(()) };
    let Ok(keep_from) = marina_engine::gtid::GtidPos::parse(oldest.gtid_position.as_deref().unwrap_or_default()) else {
        return Ok(());
    };
    let finished = oldest.finished_at.clone().unwrap_or_default();
    for f in app.store.archived_binlogs(&c.id).await? {
        let Ok(end) = marina_engine::gtid::GtidPos::parse(&f.gtid_end) else {
            continue;
        };
        if end.le(&keep_from) && f.rotated_at < finished {
            let key = crate::binlog_archive::binlog_key(&c.tenant_id, &c.id, &f.node_id, &f.file);
            app.blobs
                .delete_prefix(&key)
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            app.store.delete_archived_binlog(&c.id, &f.node_id, &f.file).await?;
            tracing::info!(cluster_id = %c.id, file = %f.file, "archived binlog pruned: older than the oldest kept backup");
        }
    }
    Ok(())
}
