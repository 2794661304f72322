//! SQLite: operations and their steps.

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::*;
use crate::{OperationStore, Page, PageRequest, StoreResult};

impl SqliteStore {
    /// A page of operation rows (one more than `limit` fetched), each with its steps.
    async fn page_with_steps(&self, rows: &[SqliteRow], limit: u32) -> StoreResult<Page<Operation>> {
        let mut items = Vec::new();
        for r in rows.iter().take(limit as usize) {
            items.push(self.operation_with_steps(r).await?);
        }
        Ok(Page {
            items,
            next_cursor: next_cursor(rows, limit)?,
        })
    }
}

#[async_trait]
impl OperationStore for SqliteStore {
    async fn get_operation(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<Operation>> {
        let sql = format!("SELECT {OP_COLS} FROM operations WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.operation_with_steps(&r).await?)),
            None => Ok(None),
        }
    }

    async fn list_operations(&self, cluster_id: &str, page: PageRequest<'_>) -> StoreResult<Page<Operation>> {
        let before = parse_cursor(page.cursor)?.unwrap_or(i64::MAX);
        let sql =
            format!("SELECT {OP_COLS} FROM operations WHERE cluster_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cluster_id)
            .bind(before)
            .bind(page.limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?;
        self.page_with_steps(&rows, page.limit).await
    }

    async fn list_tenant_operations(
        &self,
        tenant_id: &str,
        cluster_id: Option<&str>,
        status: Option<OperationStatus>,
        page: PageRequest<'_>,
    ) -> StoreResult<Page<Operation>> {
        let before = parse_cursor(page.cursor)?.unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {OP_COLS} FROM operations WHERE tenant_id = $1 AND ($2 IS NULL OR cluster_id = $2) \
             AND ($3 IS NULL OR status = $3) AND seq < $4 ORDER BY seq DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(cluster_id)
            .bind(status.map(|s| s.as_str()))
            .bind(before)
            .bind(page.limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?;
        self.page_with_steps(&rows, page.limit).await
    }

    async fn unfinished_operations(&self) -> StoreResult<Vec<Operation>> {
        let sql = format!("SELECT {OP_COLS} FROM operations WHERE status IN ('pending', 'running') ORDER BY seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(self.operation_with_steps(r).await?);
        }
        Ok(out)
    }

    async fn start_operation(&self, id: &str, at: &str) -> StoreResult<()> {
        sqlx::query("UPDATE operations SET status = 'running', started_at = COALESCE(started_at, $1) WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_operation_node(&self, id: &str, node_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE operations SET node_id = $1 WHERE id = $2")
            .bind(node_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn count_operations_since(
        &self,
        cluster_id: &str,
        op_type: OperationType,
        since: &str,
    ) -> StoreResult<(u32, Option<String>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(created_at) AS last FROM operations \
             WHERE cluster_id = $1 AND op_type = $2 AND created_at >= $3 AND status <> 'failed'",
        )
        .bind(cluster_id)
        .bind(op_type.as_str())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get::<i64, _>("n")? as u32, row.try_get("last")?))
    }

    async fn operation_times_since(
        &self,
        cluster_id: &str,
        op_type: OperationType,
        since: &str,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT created_at FROM operations \
             WHERE cluster_id = $1 AND op_type = $2 AND created_at >= $3 AND status <> 'failed' \
             ORDER BY created_at DESC",
        )
        .bind(cluster_id)
        .bind(op_type.as_str())
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("created_at")?)).collect()
    }

    async fn update_step(&self, op_id: &str, idx: usize, status: StepStatus, at: &str) -> StoreResult<()> {
        let sql = match status {
            StepStatus::Running => {
                "UPDATE operation_steps SET status = $1, started_at = COALESCE(started_at, $2) \
                 WHERE operation_id = $3 AND idx = $4"
            }
            _ => {
                "UPDATE operation_steps SET status = $1, started_at = COALESCE(started_at, $2), finished_at = $2 \
                 WHERE operation_id = $3 AND idx = $4"
            }
        };
        sqlx::query(sql)
            .bind(status.as_str())
            .bind(at)
            .bind(op_id)
            .bind(idx as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_operation_error(&self, id: &str, error: &OperationError) -> StoreResult<()> {
        sqlx::query(
            "UPDATE operations SET error_code = $1, error_message = $2 \
             WHERE id = $3 AND status IN ('pending', 'running')",
        )
        .bind(&error.code)
        .bind(&error.message)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_operation(
        &self,
        id: &str,
        status: OperationStatus,
        error: Option<&OperationError>,
        at: &str,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE operations SET status = $1, error_code = $2, error_message = $3, finished_at = $4, \
             started_at = COALESCE(started_at, $4) WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // A step a panic or a crash left running ends with its operation.
        if status == OperationStatus::Failed {
            sqlx::query(
                "UPDATE operation_steps SET status = 'failed', finished_at = $1 \
                 WHERE operation_id = $2 AND status = 'running'",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
