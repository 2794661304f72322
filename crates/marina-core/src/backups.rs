//! Backup services: take one (a record and its `backup` operation, in one
//! transaction), read, list, delete, and check a cluster create's `restore`
//! source. The work is done by the `backup` and `restore_cluster` operations.
//!
//! Rules:
//! - A backup is taken from a serving cluster (`active` or `degraded`), one at
//!   a time per cluster (409 while another is pending or running).
//! - Backups belong to the tenant and outlive their cluster (like manual RDS
//!   snapshots): `GET /v1/backups/{id}` and restores keep working after the
//!   cluster is deleted.
//! - Objects live under `<tenant>/<cluster>/<backup>/` in the blob store: the
//!   data object, then `manifest.json`, committed last.
//! - A running backup cannot be deleted (409); deleting removes the objects,
//!   then the record.

use marina_common::model::*;
use marina_common::{Error, ids, time_fmt};
use marina_store::{Page, PageRequest};

use crate::Marina;
use crate::operations::new_operation;

/// Cluster statuses a backup may be taken in.
const BACKUP_FROM: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded];

/// Where a backup's objects live.
pub fn prefix(b: &BackupRecord) -> String {
    format!("{}/{}/{}", b.tenant_id, b.cluster_id, b.id)
}

/// The data object's key.
pub fn data_key(b: &BackupRecord) -> String {
    match b.method {
        BackupMethod::Physical => format!("{}/data.mbstream.zst", prefix(b)),
        BackupMethod::Logical => format!("{}/dump.sql.zst", prefix(b)),
    }
}

/// The manifest's key.
pub fn manifest_key(b: &BackupRecord) -> String {
    format!("{}/manifest.json", prefix(b))
}

impl Marina {
    /// Records a backup of a cluster and the operation that takes it.
    pub async fn create_backup(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        input: CreateBackupInput,
    ) -> Result<(BackupRecord, Operation), Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        let method = input.method.unwrap_or(BackupMethod::Physical);
        self.start_backup(&c, method, "manual", None).await
    }

    /// A backup to the local store must fit beside the host's reserve: its
    /// size is bounded by the largest node directory of the cluster (the
    /// copy is compressed, so usually much smaller). `capacity_exceeded`
    /// (409) when it would not fit; S3-compatible stores are not checked.
    async fn check_backup_fits(&self, c: &ClusterRecord) -> Result<(), Error> {
        if self.config.backups.s3.is_some() {
            return Ok(());
        }
        let dir = self
            .config
            .backups
            .dir
            .clone()
            .unwrap_or_else(|| self.config.data_dir.join("backups"));
        let probe = dir
            .ancestors()
            .find(|a| a.exists())
            .unwrap_or(&self.config.data_dir)
            .to_path_buf();
        let Some(free) = crate::monitor::disk::free_bytes(&probe) else {
            return Ok(());
        };
        let largest = self
            .store
            .list_nodes(&c.id)
            .await?
            .iter()
            .filter_map(|n| self.monitor.node_disk(&n.id))
            .map(|d| d.used_bytes)
            .max()
            .unwrap_or(0);
        let reserve = (self.config.capacity.disk_reserve_gib * (1u64 << 30) as f64) as u64;
        if largest.saturating_add(reserve) > free {
            return Err(Error::CapacityExceeded(format!(
                "a backup of cluster {} may need up to {} MiB and the backup store has {} MiB free, of which {} MiB \
                 are kept for Marina: free space or use an S3-compatible store",
                c.id,
                largest >> 20,
                free >> 20,
                reserve >> 20
            )));
        }
        Ok(())
    }

    /// Checks that `c` can be backed up now and records the backup with its
    /// operation (moving the schedule slot with it when `slot` is given).
    pub(crate) async fn start_backup(
        &self,
        c: &ClusterRecord,
        method: BackupMethod,
        trigger: &str,
        slot: Option<(Option<&str>, &str)>,
    ) -> Result<(BackupRecord, Operation), Error> {
        if !BACKUP_FROM.contains(&c.status) {
            return Err(Error::Conflict(format!(
                "cluster {} is {}; backups are taken from active or degraded clusters",
                c.id, c.status
            )));
        }
        if let Some(running) = self.store.unfinished_backups(&c.id).await?.first() {
            return Err(Error::Conflict(format!(
                "backup {} of cluster {} is still {}; one backup runs at a time",
                running.id, c.id, running.status
            )));
        }
        self.check_backup_fits(c).await?;
        let op = new_operation(&c.tenant_id, OperationType::Backup, &c.id);
        let b = BackupRecord {
            id: ids::new_id(ids::prefix::BACKUP),
            tenant_id: c.tenant_id.clone(),
            cluster_id: c.id.clone(),
            method,
            status: BackupStatus::Pending,
            size_bytes: None,
            gtid_position: None,
            started_at: None,
            finished_at: None,
            source_node_id: None,
            checksum: None,
            mariadb_version: c.version.clone(),
            operation_id: op.id.clone(),
            trigger: trigger.into(),
            error: None,
            created_at: time_fmt::now_rfc3339(),
        };
        self.store.create_backup(&b, &op, slot).await?;
        self.event(
            &c.tenant_id,
            &c.id,
            None,
            "backup_requested",
            format!("{} backup {} requested ({trigger})", b.method, b.id),
        )
        .await;
        self.work.notify_one();
        Ok((b, op))
    }

    /// Every backup of a cluster, newest first (all pages).
    pub async fn all_backups(&self, cluster_id: &str) -> Result<Vec<BackupRecord>, Error> {
        let store = &self.store;
        Ok(marina_store::all_pages(|cursor| async move {
            let page = PageRequest {
                limit: marina_store::PAGE_ALL,
                cursor: cursor.as_deref(),
            };
            store.list_backups(cluster_id, page).await
        })
        .await?)
    }

    /// A backup of the tenant, or 404.
    pub async fn backup(&self, tenant_id: &str, id: &str) -> Result<BackupRecord, Error> {
        self.store
            .get_backup(Some(tenant_id), id)
            .await?
            .ok_or_else(|| Error::not_found("backup", id))
    }

    /// A (live) cluster's backups, newest first.
    pub async fn cluster_backups(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        page: PageRequest<'_>,
    ) -> Result<Page<BackupRecord>, Error> {
        let c = self.cluster(tenant_id, cluster_id).await?;
        Ok(self.store.list_backups(&c.id, page).await?)
    }

    /// Deletes a finished backup: its objects, then its record.
    pub async fn delete_backup(&self, tenant_id: &str, id: &str) -> Result<(), Error> {
        let b = self.backup(tenant_id, id).await?;
        if matches!(b.status, BackupStatus::Pending | BackupStatus::Running) {
            return Err(Error::Conflict(format!("backup {id} is still {}", b.status)));
        }
        self.blobs
            .delete_prefix(&prefix(&b))
            .await
            .map_err(|e| Error::Unavailable(format!("removing backup {id}: {e}")))?;
        self.store.delete_backup(&b.id).await?;
        if self.store.get_cluster(Some(tenant_id), &b.cluster_id).await?.is_some() {
            self.event(
                tenant_id,
                &b.cluster_id,
                None,
                "backup_deleted",
                format!("backup {id} deleted"),
            )
            .await;
        }
        Ok(())
    }

    /// Checks a create's `restore` and says where the data comes from.
    pub(crate) async fn restore_source(
        &self,
        tenant_id: &str,
        input: &RestoreInput,
        installed_version: &str,
    ) -> Result<RestoreSource, Error> {
        let (backup_id, point_in_time) = match (&input.backup_id, &input.cluster_id, &input.point_in_time) {
            (Some(b), None, None) => (b.clone(), None),
            (None, Some(cluster_id), Some(at)) => self.point_in_time_source(tenant_id, cluster_id, at).await?,
            _ => {
                return Err(Error::InvalidRequest(
                    "restore takes either {\"backup_id\"} or {\"cluster_id\", \"point_in_time\"}".into(),
                ));
            }
        };
        let b = self
            .store
            .get_backup(Some(tenant_id), &backup_id)
            .await?
            .ok_or_else(|| Error::InvalidRequest(format!("restore.backup_id: no backup {backup_id:?}")))?;
        if b.status != BackupStatus::Completed {
            return Err(Error::Conflict(format!(
                "backup {backup_id} is {}; only completed backups can be restored",
                b.status
            )));
        }
        if b.method == BackupMethod::Physical && b.mariadb_version != installed_version {
            return Err(Error::InvalidRequest(format!(
                "backup {backup_id} is a physical backup of MariaDB {}; this host runs {installed_version} \
                 (restore a logical backup instead)",
                b.mariadb_version
            )));
        }
        Ok(RestoreSource {
            backup_id,
            point_in_time,
        })
    }

    /// For a point-in-time restore: the newest completed backup of the cluster
    /// finished at or before `at`, once `at` is checked against the window.
    async fn point_in_time_source(
        &self,
        tenant_id: &str,
        cluster_id: &str,
        at: &str,
    ) -> Result<(String, Option<String>), Error> {
        let c = self
            .store
            .get_cluster(Some(tenant_id), cluster_id)
            .await?
            .ok_or_else(|| Error::InvalidRequest(format!("restore.cluster_id: no cluster {cluster_id:?}")))?;
        let t = time_fmt::parse_rfc3339(at)
            .ok_or_else(|| Error::InvalidRequest(format!("restore.point_in_time: {at:?} is not an RFC 3339 time")))?;
        if t.nanosecond() != 0 {
            return Err(Error::InvalidRequest(format!(
                "restore.point_in_time {at} has a fraction of a second: binlog events carry whole seconds, so a \
                 restore reaches whole seconds exactly (it includes what was committed before that second)"
            )));
        }
        let at = time_fmt::format_rfc3339(t);
        let (earliest, latest) = crate::binlog_archive::restore_window(self, &c).await?.ok_or_else(|| {
            Error::Conflict(format!(
                "cluster {cluster_id} has no restore window yet: it needs backup_policy.binlog_archive, a backup \
                 taken since, and one archived binlog"
            ))
        })?;
        if at < earliest || at > latest {
            return Err(Error::InvalidRequest(format!(
                "restore.point_in_time {at} is outside the restore window {earliest} .. {latest}"
            )));
        }
        let b = self
            .all_backups(&c.id)
            .await?
            .into_iter()
            .find(|b| b.status == BackupStatus::Completed && b.finished_at.as_deref().is_some_and(|f| f <= at.as_str()))
            .ok_or_else(|| Error::Conflict(format!("no completed backup of {cluster_id} before {at}")))?;
        Ok((b.id, Some(at)))
    }
}
