//! SQLite: nodes of clusters: roles, statuses, ports.

use async_trait::async_trait;
use marina_common::model::*;

use super::*;
use crate::{NodeStore, StoreResult};

#[async_trait]
impl NodeStore for SqliteStore {
    async fn list_nodes(&self, cluster_id: &str) -> StoreResult<Vec<NodeRecord>> {
        let sql = format!("SELECT {NODE_COLS} FROM nodes WHERE cluster_id = $1 ORDER BY ordinal");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cluster_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(node_from_row).collect()
    }

    async fn all_nodes(&self) -> StoreResult<Vec<NodeRecord>> {
        let sql = format!("SELECT {NODE_COLS} FROM nodes ORDER BY seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(node_from_row).collect()
    }

    async fn update_node(&self, id: &str, role: NodeRole, status: NodeStatus) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET role = $1, status = $2, updated_at = $3 WHERE id = $4")
            .bind(role.as_str())
            .bind(status.as_str())
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn fail_node(&self, id: &str, reason: &str) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET status = $1, status_reason = $2, updated_at = $3 WHERE id = $4")
            .bind(NodeStatus::Failed.as_str())
            .bind(reason)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_node_ha(&self, id: &str, status_reason: Option<&str>, rejoin_gtid: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET status_reason = $1, rejoin_gtid = $2, updated_at = $3 WHERE id = $4")
            .bind(status_reason)
            .bind(rejoin_gtid)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_node_status_if(
        &self,
        id: &str,
        role: NodeRole,
        from: NodeStatus,
        to: NodeStatus,
    ) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE nodes SET status = $1, updated_at = $2 WHERE id = $3 AND role = $4 AND status = $5")
                .bind(to.as_str())
                .bind(marina_common::time_fmt::now_rfc3339())
                .bind(id)
                .bind(role.as_str())
                .bind(from.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_node_fenced(&self, id: &str, fenced: bool) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET fenced = $1, updated_at = $2 WHERE id = $3")
            .bind(fenced as i64)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_node_size(&self, id: &str, size_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET size_id = $1, updated_at = $2 WHERE id = $3")
            .bind(size_id)
            .bind(marina_common::time_fmt::now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn used_ports(&self) -> StoreResult<Vec<u16>> {
        let ports: Vec<i64> = sqlx::query_scalar("SELECT port FROM nodes")
            .fetch_all(&self.pool)
            .await?;
        Ok(ports.into_iter().map(|p| p as u16).collect())
    }
}
