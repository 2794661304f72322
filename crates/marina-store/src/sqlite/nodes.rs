//! SQLite: nodes of clusters: roles, statuses, ports.

use async_trait::async_trait;
use marina_common::model::*;

use super::*;
use crate::{MonitorWrite, NodeStore, StoreResult};

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

    async fn monitor_write(&self, cluster_id: &str, generation: i64, write: &MonitorWrite<'_>) -> StoreResult<bool> {
        // Every statement carries the same guard: the cluster's generation,
        // and the node's cluster and role.
        const AT: &str = "(SELECT generation FROM clusters WHERE id = $1) = $2";
        const NODE: &str = "AND id = $4 AND cluster_id = $1 AND role = $5";
        let now = marina_common::time_fmt::now_rfc3339();
        let q = |sql: String| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(cluster_id)
                .bind(generation)
                .bind(now.clone())
        };
        let sql = |set: &str| format!("UPDATE nodes SET {set}, updated_at = $3 WHERE {AT} {NODE}");
        let query = match *write {
            MonitorWrite::NodeStatus {
                node_id,
                role,
                from,
                to,
            } => q(sql("status = $6") + " AND status = $7")
                .bind(node_id)
                .bind(role.as_str())
                .bind(to.as_str())
                .bind(from.as_str()),
            MonitorWrite::FailNode { node_id, role, reason } => q(sql("status = 'failed', status_reason = $6"))
                .bind(node_id)
                .bind(role.as_str())
                .bind(reason),
            MonitorWrite::ClearRejoinLimit { node_id, role } => q(sql("status_reason = NULL, rejoin_gtid = NULL"))
                .bind(node_id)
                .bind(role.as_str()),
            MonitorWrite::Unfence { node_id, role } => q(sql("fenced = 0")).bind(node_id).bind(role.as_str()),
            MonitorWrite::ClusterStatus { to } => q(String::from(
                "UPDATE clusters SET status = $4, generation = generation + 1, updated_at = $3 \
                 WHERE id = $1 AND generation = $2 AND status IN ('active', 'degraded', 'failed')",
            ))
            .bind(to.as_str()),
        };
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
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
