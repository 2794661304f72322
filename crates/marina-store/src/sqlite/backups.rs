//! SQLite: backup records (the data itself lives in a blob store).

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::*;
use crate::{BackupStore, Page, PageRequest, StoreError, StoreResult};

/// `SELECT <columns> FROM backups ` followed by the given clause, as one
/// literal (sqlx only takes literal SQL).
macro_rules! select_backups {
    ($rest:literal) => {
        concat!(
            "SELECT seq, id, tenant_id, cluster_id, method, status, size_bytes, gtid_position, started_at, \
             finished_at, source_node_id, checksum, mariadb_version, operation_id, error, trigger, created_at FROM backups ",
            $rest
        )
    };
}

fn backup_from_row(r: &SqliteRow) -> StoreResult<BackupRecord> {
    let method: String = r.try_get("method")?;
    let status: String = r.try_get("status")?;
    Ok(BackupRecord {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        cluster_id: r.try_get("cluster_id")?,
        method: BackupMethod::parse(&method).ok_or_else(|| corrupt("backup method", &method))?,
        status: BackupStatus::parse(&status).ok_or_else(|| corrupt("backup status", &status))?,
        size_bytes: r.try_get::<Option<i64>, _>("size_bytes")?.map(|v| v as u64),
        gtid_position: r.try_get("gtid_position")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        source_node_id: r.try_get("source_node_id")?,
        checksum: r.try_get("checksum")?,
        mariadb_version: r.try_get("mariadb_version")?,
        operation_id: r.try_get("operation_id")?,
        trigger: r.try_get("trigger")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl BackupStore for SqliteStore {
    async fn create_backup(
        &self,
        b: &BackupRecord,
        op: &Operation,
        slot: Option<(Option<&str>, &str)>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO backups (id, tenant_id, cluster_id, method, status, mariadb_version, operation_id, created_at, \
             trigger) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&b.id)
        .bind(&b.tenant_id)
        .bind(&b.cluster_id)
        .bind(b.method.as_str())
        .bind(b.status.as_str())
        .bind(&b.mariadb_version)
        .bind(&b.operation_id)
        .bind(&b.created_at)
        .bind(&b.trigger)
        .execute(&mut *tx)
        .await?;
        insert_operation(&mut tx, op).await?;
        if let Some((expected, slot)) = slot {
            // The schedule's slot moves in the same transaction: a slot takes
            // one backup even if the process dies right after.
            let moved = sqlx::query("UPDATE clusters SET backup_slot = $1 WHERE id = $2 AND backup_slot IS $3")
                .bind(slot)
                .bind(&b.cluster_id)
                .bind(expected)
                .execute(&mut *tx)
                .await?;
            if moved.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "the backup slot of {} moved",
                    b.cluster_id
                )));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_backup(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<BackupRecord>> {
        let row = sqlx::query(select_backups!("WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(backup_from_row).transpose()
    }

    async fn backup_for_operation(&self, op_id: &str) -> StoreResult<Option<BackupRecord>> {
        let row = sqlx::query(select_backups!("WHERE operation_id = $1"))
            .bind(op_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(backup_from_row).transpose()
    }

    async fn list_backups(&self, cluster_id: &str, page: PageRequest<'_>) -> StoreResult<Page<BackupRecord>> {
        let before = parse_cursor(page.cursor)?.unwrap_or(i64::MAX);
        let rows = sqlx::query(select_backups!(
            "WHERE cluster_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(cluster_id)
        .bind(before)
        .bind(page.limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        paginate(&rows, page.limit, backup_from_row)
    }

    async fn unfinished_backups(&self, cluster_id: &str) -> StoreResult<Vec<BackupRecord>> {
        let rows = sqlx::query(select_backups!(
            "WHERE cluster_id = $1 AND status IN ('pending', 'running') ORDER BY seq"
        ))
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(backup_from_row).collect()
    }

    async fn update_backup(&self, b: &BackupRecord) -> StoreResult<()> {
        sqlx::query(
            "UPDATE backups SET status = $1, size_bytes = $2, gtid_position = $3, started_at = $4, finished_at = $5, \
             source_node_id = $6, checksum = $7, error = $8 WHERE id = $9",
        )
        .bind(b.status.as_str())
        .bind(b.size_bytes.map(|v| v as i64))
        .bind(&b.gtid_position)
        .bind(&b.started_at)
        .bind(&b.finished_at)
        .bind(&b.source_node_id)
        .bind(&b.checksum)
        .bind(&b.error)
        .bind(&b.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_backup_policy(&self, cluster_id: &str, policy: Option<&BackupPolicy>, slot: &str) -> StoreResult<()> {
        sqlx::query("UPDATE clusters SET backup_policy = $1, backup_slot = $2 WHERE id = $3")
            .bind(policy.map(|p| serde_json::to_string(p).unwrap_or_default()))
            .bind(slot)
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn move_backup_slot(&self, cluster_id: &str, expected: Option<&str>, slot: &str) -> StoreResult<bool> {
        let moved = sqlx::query("UPDATE clusters SET backup_slot = $1 WHERE id = $2 AND backup_slot IS $3")
            .bind(slot)
            .bind(cluster_id)
            .bind(expected)
            .execute(&self.pool)
            .await?;
        Ok(moved.rows_affected() == 1)
    }

    async fn add_archived_binlog(&self, b: &ArchivedBinlog) -> StoreResult<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO archived_binlogs (cluster_id, node_id, file, gtid_start, gtid_end, size_bytes, \
             checksum, rotated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&b.cluster_id)
        .bind(&b.node_id)
        .bind(&b.file)
        .bind(&b.gtid_start)
        .bind(&b.gtid_end)
        .bind(b.size_bytes as i64)
        .bind(&b.checksum)
        .bind(&b.rotated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn archived_binlogs(&self, cluster_id: &str) -> StoreResult<Vec<ArchivedBinlog>> {
        let rows = sqlx::query(
            "SELECT cluster_id, node_id, file, gtid_start, gtid_end, size_bytes, checksum, rotated_at \
             FROM archived_binlogs WHERE cluster_id = $1 ORDER BY seq",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ArchivedBinlog {
                    cluster_id: r.try_get("cluster_id")?,
                    node_id: r.try_get("node_id")?,
                    file: r.try_get("file")?,
                    gtid_start: r.try_get("gtid_start")?,
                    gtid_end: r.try_get("gtid_end")?,
                    size_bytes: r.try_get::<i64, _>("size_bytes")? as u64,
                    checksum: r.try_get("checksum")?,
                    rotated_at: r.try_get("rotated_at")?,
                })
            })
            .collect()
    }

    async fn delete_archived_binlog(&self, cluster_id: &str, node_id: &str, file: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM archived_binlogs WHERE cluster_id = $1 AND node_id = $2 AND file = $3")
            .bind(cluster_id)
            .bind(node_id)
            .bind(file)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_binlog_archive_since(&self, cluster_id: &str, since: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE clusters SET binlog_archive_since = $1 WHERE id = $2")
            .bind(since)
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_backup(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM backups WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
