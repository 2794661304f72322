//! SQLite: clusters: the guarded writes that start and finish their operations.

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;

use super::*;
use crate::{ClusterStore, Page, PageRequest, StoreResult};

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn create_cluster(
        &self,
        c: &ClusterRecord,
        nodes: &[NodeRecord],
        op: &Operation,
        security_group_ids: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO clusters (id, tenant_id, name, status, size_id, version, replication, node_count, \
             writer_host, reader_host, endpoint_port, endpoints_ready, secrets_enc, generation, created_at, updated_at, \
             failover_mode, restore_source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(&c.id)
        .bind(&c.tenant_id)
        .bind(&c.name)
        .bind(c.status.as_str())
        .bind(&c.size_id)
        .bind(&c.version)
        .bind(c.replication.as_str())
        .bind(c.node_count as i64)
        .bind(&c.writer_host)
        .bind(&c.reader_host)
        .bind(c.endpoint_port as i64)
        .bind(c.endpoints_ready)
        .bind(&c.secrets_enc)
        .bind(c.generation)
        .bind(&c.created_at)
        .bind(&c.updated_at)
        .bind(c.failover_mode.as_str())
        .bind(c.restore.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default()))
        .execute(&mut *tx)
        .await?;
        for n in nodes {
            insert_node(&mut tx, n).await?;
        }
        for sg in security_group_ids {
            sqlx::query(
                "INSERT OR IGNORE INTO cluster_security_groups (cluster_id, security_group_id) VALUES ($1, $2)",
            )
            .bind(&c.id)
            .bind(sg)
            .execute(&mut *tx)
            .await?;
        }
        insert_operation(&mut tx, op).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_cluster(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<ClusterRecord>> {
        let sql = format!(
            "SELECT {CLUSTER_COLS} FROM clusters WHERE id = $1 AND status <> 'deleted' \
             AND ($2 IS NULL OR tenant_id = $2)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cluster_from_row).transpose()
    }

    async fn get_cluster_by_name(&self, tenant_id: &str, name: &str) -> StoreResult<Option<ClusterRecord>> {
        let sql =
            format!("SELECT {CLUSTER_COLS} FROM clusters WHERE name = $1 AND tenant_id = $2 AND status <> 'deleted'");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cluster_from_row).transpose()
    }

    async fn list_clusters(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<ClusterRecord>> {
        let after = parse_cursor(page.cursor)?.unwrap_or(0);
        let sql = format!(
            "SELECT {CLUSTER_COLS} FROM clusters WHERE tenant_id = $1 AND status <> 'deleted' AND seq > $2 \
             ORDER BY seq LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(after)
            .bind(page.limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?;
        paginate(&rows, page.limit, cluster_from_row)
    }

    async fn live_clusters(&self) -> StoreResult<Vec<ClusterRecord>> {
        let sql = format!("SELECT {CLUSTER_COLS} FROM clusters WHERE status <> 'deleted' ORDER BY seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(cluster_from_row).collect()
    }

    async fn update_cluster_status(
        &self,
        id: &str,
        expected: &[ClusterStatus],
        status: ClusterStatus,
        endpoints_ready: Option<bool>,
    ) -> StoreResult<Option<ClusterRecord>> {
        let now = marina_common::time_fmt::now_rfc3339();
        let done = sqlx::query(
            "UPDATE clusters SET status = $1, endpoints_ready = COALESCE($2, endpoints_ready), \
             generation = generation + 1, updated_at = $3 \
             WHERE id = $4 AND instr($5, ',' || status || ',') > 0",
        )
        .bind(status.as_str())
        .bind(endpoints_ready)
        .bind(&now)
        .bind(id)
        .bind(status_set(expected))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let sql = format!("SELECT {CLUSTER_COLS} FROM clusters WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cluster_from_row).transpose()
    }

    async fn begin_cluster_operation(
        &self,
        id: &str,
        expected: &[ClusterStatus],
        status: ClusterStatus,
        op: &Operation,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !guarded_status(&mut tx, id, expected, status).await? {
            return Ok(false);
        }
        insert_operation(&mut tx, op).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn begin_add_node(
        &self,
        id: &str,
        expected: &[ClusterStatus],
        status: ClusterStatus,
        node: &NodeRecord,
        op: &Operation,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !guarded_status(&mut tx, id, expected, status).await? {
            return Ok(false);
        }
        insert_node(&mut tx, node).await?;
        sqlx::query(
            "UPDATE clusters SET node_count = (SELECT COUNT(*) FROM nodes WHERE cluster_id = $1) WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        insert_operation(&mut tx, op).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_cluster_size(&self, id: &str, size_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE clusters SET size_id = $1, updated_at = $2 WHERE id = $3")
            .bind(size_id)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_cluster_secrets(&self, id: &str, secrets_enc: &str) -> StoreResult<()> {
        sqlx::query("UPDATE clusters SET secrets_enc = $1, updated_at = $2 WHERE id = $3")
            .bind(secrets_enc)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove_node(&self, id: &str, node_id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1 AND cluster_id = $2")
            .bind(node_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE clusters SET node_count = (SELECT COUNT(*) FROM nodes WHERE cluster_id = $1), \
             generation = generation + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(marina_common::time_fmt::now_rfc3339())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_writer_paused(&self, id: &str, paused: bool) -> StoreResult<()> {
        sqlx::query("UPDATE clusters SET writer_paused = $1, updated_at = $2 WHERE id = $3")
            .bind(paused)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_primary_read_only(&self, id: &str, on: bool) -> StoreResult<()> {
        sqlx::query("UPDATE clusters SET primary_read_only = $1, updated_at = $2 WHERE id = $3")
            .bind(on)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_auto_reseed(&self, id: &str, on: bool) -> StoreResult<()> {
        sqlx::query("UPDATE clusters SET auto_reseed = $1, updated_at = $2 WHERE id = $3")
            .bind(on)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_failover_mode(&self, id: &str, mode: FailoverMode) -> StoreResult<()> {
        sqlx::query(
            "UPDATE clusters SET failover_mode = $1, generation = generation + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(mode.as_str())
        .bind(marina_common::time_fmt::now_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn begin_cluster_delete(&self, id: &str, expected: &[ClusterStatus], op: &Operation) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !guarded_status(&mut tx, id, expected, ClusterStatus::Deleting).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE nodes SET status = 'deleting', updated_at = $1 WHERE cluster_id = $2")
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_operation(&mut tx, op).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn finish_cluster_delete(&self, id: &str) -> StoreResult<bool> {
        let now = marina_common::time_fmt::now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE clusters SET status = 'deleted', generation = generation + 1, updated_at = $1 \
             WHERE id = $2 AND status = 'deleting'",
        )
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM nodes WHERE cluster_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn used_endpoint_hosts(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT writer_host, reader_host FROM clusters WHERE status <> 'deleted'")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len() * 2);
        for r in rows {
            out.push(r.try_get("writer_host")?);
            out.push(r.try_get("reader_host")?);
        }
        Ok(out)
    }
}

/// In `tx`: sets the cluster's status to `status` if it is one of `expected`
/// (bumping the generation); false when the guard failed.
async fn guarded_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: &str,
    expected: &[ClusterStatus],
    status: ClusterStatus,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE clusters SET status = $1, generation = generation + 1, updated_at = $2 \
         WHERE id = $3 AND instr($4, ',' || status || ',') > 0",
    )
    .bind(status.as_str())
    .bind(marina_common::time_fmt::now_rfc3339())
    .bind(id)
    .bind(status_set(expected))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// In `tx`: inserts a node row.
pub(super) async fn insert_node(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, n: &NodeRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO nodes (id, cluster_id, ordinal, role, status, host, port, size_id, server_id, created_at, updated_at, \
         host_id, zone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&n.id)
    .bind(&n.cluster_id)
    .bind(n.ordinal as i64)
    .bind(n.role.as_str())
    .bind(n.status.as_str())
    .bind(&n.host)
    .bind(n.port as i64)
    .bind(&n.size_id)
    .bind(n.server_id as i64)
    .bind(&n.created_at)
    .bind(&n.updated_at)
    .bind(&n.host_id)
    .bind(&n.zone)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
