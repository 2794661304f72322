//! The SQLite implementation of `Store` (WAL mode, migrations embedded in the
//! binary). Rows are read with the helpers at the bottom; every status string is
//! parsed back into its enum, and an unknown value is a `Corrupt` error.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::{Page, PageRequest, Store, StoreError, StoreResult};

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    /// Connection pool; SQLite serialises writers, WAL lets readers run alongside.
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &std::path::Path) -> StoreResult<Self> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(opts, 4).await
    }

    /// A private in-memory store (unit tests).
    pub async fn in_memory() -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .foreign_keys(true);
        Self::connect(opts, 1).await
    }

    async fn connect(opts: SqliteConnectOptions, max: u32) -> StoreResult<Self> {
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations: {e}")))?;
        Ok(SqliteStore { pool })
    }
}

const CLUSTER_COLS: &str = "seq, id, tenant_id, name, status, size_id, version, replication, node_count, \
    writer_host, reader_host, endpoint_port, endpoints_ready, secrets_enc, generation, failover_mode, writer_paused, created_at, updated_at";
const NODE_COLS: &str = "id, cluster_id, ordinal, role, status, host, port, size_id, server_id, status_reason, \
    rejoin_gtid, created_at, updated_at";
const OP_COLS: &str = "seq, id, tenant_id, cluster_id, node_id, op_type, status, error_code, error_message, \
    created_at, started_at, finished_at";

/// Joins statuses for the `instr` membership test used by guarded updates.
fn status_set(expected: &[ClusterStatus]) -> String {
    let mut s = String::from(",");
    for st in expected {
        s.push_str(st.as_str());
        s.push(',');
    }
    s
}

fn parse_cursor(cursor: Option<&str>) -> StoreResult<Option<i64>> {
    cursor
        .map(|c| c.parse::<i64>().map_err(|_| StoreError::Conflict("bad cursor".into())))
        .transpose()
}

#[async_trait]
impl Store for SqliteStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&self.pool)
            .await?;
        Ok(n == 0)
    }

    async fn create_tenant(&self, t: &Tenant) -> StoreResult<()> {
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_tenant(&self, id: &str) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Tenant {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn create_token(&self, t: &TokenRecord, secret_hash: &str) -> StoreResult<()> {
        let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
        sqlx::query(
            "INSERT INTO tokens (id, tenant_id, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(&t.tenant_id)
        .bind(&t.name)
        .bind(secret_hash)
        .bind(scopes.join(","))
        .bind(&t.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_token(&self, secret_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT id, tenant_id, name, scopes, created_at, last_used_at FROM tokens \
             WHERE secret_hash = $1 AND revoked_at IS NULL",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let scopes: String = r.try_get("scopes")?;
            Ok(TokenRecord {
                id: r.try_get("id")?,
                tenant_id: r.try_get("tenant_id")?,
                name: r.try_get("name")?,
                scopes: scopes
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| Scope::parse(s).ok_or_else(|| corrupt("scope", s)))
                    .collect::<StoreResult<_>>()?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
            })
        })
        .transpose()
    }

    async fn touch_token(&self, id: &str, at: &str) -> StoreResult<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_cluster(&self, c: &ClusterRecord, nodes: &[NodeRecord], op: &Operation) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO clusters (id, tenant_id, name, status, size_id, version, replication, node_count, \
             writer_host, reader_host, endpoint_port, endpoints_ready, secrets_enc, generation, created_at, updated_at, \
             failover_mode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
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
        .execute(&mut *tx)
        .await?;
        for n in nodes {
            sqlx::query(
                "INSERT INTO nodes (id, cluster_id, ordinal, role, status, host, port, size_id, server_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        let now = marina_common::time_fmt::now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE clusters SET status = $1, generation = generation + 1, updated_at = $2 \
             WHERE id = $3 AND instr($4, ',' || status || ',') > 0",
        )
        .bind(status.as_str())
        .bind(&now)
        .bind(id)
        .bind(status_set(expected))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_operation(&mut tx, op).await?;
        tx.commit().await?;
        Ok(true)
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

    async fn begin_cluster_delete(&self, id: &str, expected: &[ClusterStatus], op: &Operation) -> StoreResult<bool> {
        let now = marina_common::time_fmt::now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE clusters SET status = 'deleting', generation = generation + 1, updated_at = $1 \
             WHERE id = $2 AND instr($3, ',' || status || ',') > 0",
        )
        .bind(&now)
        .bind(id)
        .bind(status_set(expected))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE nodes SET status = 'deleting', updated_at = $1 WHERE cluster_id = $2")
            .bind(&now)
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

    async fn used_ports(&self) -> StoreResult<Vec<u16>> {
        let ports: Vec<i64> = sqlx::query_scalar("SELECT port FROM nodes")
            .fetch_all(&self.pool)
            .await?;
        Ok(ports.into_iter().map(|p| p as u16).collect())
    }

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
        let mut items = Vec::new();
        for r in rows.iter().take(page.limit as usize) {
            items.push(self.operation_with_steps(r).await?);
        }
        let next_cursor = next_cursor(&rows, page.limit)?;
        Ok(Page { items, next_cursor })
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

    async fn finish_operation(
        &self,
        id: &str,
        status: OperationStatus,
        error: Option<&OperationError>,
        at: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE operations SET status = $1, error_code = $2, error_message = $3, finished_at = $4, \
             started_at = COALESCE(started_at, $4) WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_event(&self, tenant_id: &str, cluster_id: &str, e: &Event) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO events (id, tenant_id, cluster_id, node_id, event_type, message, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(tenant_id)
        .bind(cluster_id)
        .bind(&e.node_id)
        .bind(&e.event_type)
        .bind(&e.message)
        .bind(&e.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_events(&self, cluster_id: &str, page: PageRequest<'_>) -> StoreResult<Page<Event>> {
        let before = parse_cursor(page.cursor)?.unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT seq, id, node_id, event_type, message, created_at FROM events \
             WHERE cluster_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(cluster_id)
        .bind(before)
        .bind(page.limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        paginate(&rows, page.limit, |r| {
            Ok(Event {
                id: r.try_get("id")?,
                object: "event",
                event_type: r.try_get("event_type")?,
                message: r.try_get("message")?,
                node_id: r.try_get("node_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
    }
}

impl SqliteStore {
    async fn operation_with_steps(&self, r: &SqliteRow) -> StoreResult<Operation> {
        let mut op = operation_from_row(r)?;
        let rows = sqlx::query(
            "SELECT name, status, started_at, finished_at FROM operation_steps WHERE operation_id = $1 ORDER BY idx",
        )
        .bind(&op.id)
        .fetch_all(&self.pool)
        .await?;
        for s in rows {
            let status: String = s.try_get("status")?;
            op.steps.push(OperationStep {
                name: s.try_get("name")?,
                status: StepStatus::parse(&status).ok_or_else(|| corrupt("step status", &status))?,
                started_at: s.try_get("started_at")?,
                finished_at: s.try_get("finished_at")?,
            });
        }
        Ok(op)
    }
}

async fn insert_operation(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, op: &Operation) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO operations (id, tenant_id, cluster_id, node_id, op_type, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&op.id)
    .bind(&op.tenant_id)
    .bind(&op.cluster_id)
    .bind(&op.node_id)
    .bind(op.op_type.as_str())
    .bind(op.status.as_str())
    .bind(&op.created_at)
    .execute(&mut **tx)
    .await?;
    for (idx, step) in op.steps.iter().enumerate() {
        sqlx::query("INSERT INTO operation_steps (operation_id, idx, name, status) VALUES ($1, $2, $3, $4)")
            .bind(&op.id)
            .bind(idx as i64)
            .bind(&step.name)
            .bind(step.status.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

fn next_cursor(rows: &[SqliteRow], limit: u32) -> StoreResult<Option<String>> {
    if rows.len() > limit as usize {
        let seq: i64 = rows[limit as usize - 1].try_get("seq")?;
        Ok(Some(seq.to_string()))
    } else {
        Ok(None)
    }
}

fn paginate<T>(rows: &[SqliteRow], limit: u32, f: impl Fn(&SqliteRow) -> StoreResult<T>) -> StoreResult<Page<T>> {
    let items = rows
        .iter()
        .take(limit as usize)
        .map(f)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page {
        items,
        next_cursor: next_cursor(rows, limit)?,
    })
}

fn cluster_from_row(r: &SqliteRow) -> StoreResult<ClusterRecord> {
    let status: String = r.try_get("status")?;
    let replication: String = r.try_get("replication")?;
    Ok(ClusterRecord {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        status: ClusterStatus::parse(&status).ok_or_else(|| corrupt("cluster status", &status))?,
        size_id: r.try_get("size_id")?,
        version: r.try_get("version")?,
        replication: Replication::parse(&replication).ok_or_else(|| corrupt("replication", &replication))?,
        node_count: r.try_get::<i64, _>("node_count")? as u32,
        writer_host: r.try_get("writer_host")?,
        reader_host: r.try_get("reader_host")?,
        endpoint_port: r.try_get::<i64, _>("endpoint_port")? as u16,
        endpoints_ready: r.try_get("endpoints_ready")?,
        secrets_enc: r.try_get("secrets_enc")?,
        generation: r.try_get("generation")?,
        failover_mode: {
            let m: String = r.try_get("failover_mode")?;
            FailoverMode::parse(&m).ok_or_else(|| corrupt("failover mode", &m))?
        },
        writer_paused: r.try_get("writer_paused")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn node_from_row(r: &SqliteRow) -> StoreResult<NodeRecord> {
    let role: String = r.try_get("role")?;
    let status: String = r.try_get("status")?;
    Ok(NodeRecord {
        id: r.try_get("id")?,
        cluster_id: r.try_get("cluster_id")?,
        ordinal: r.try_get::<i64, _>("ordinal")? as u32,
        role: NodeRole::parse(&role).ok_or_else(|| corrupt("node role", &role))?,
        status: NodeStatus::parse(&status).ok_or_else(|| corrupt("node status", &status))?,
        host: r.try_get("host")?,
        port: r.try_get::<i64, _>("port")? as u16,
        size_id: r.try_get("size_id")?,
        server_id: r.try_get::<i64, _>("server_id")? as u32,
        status_reason: r.try_get("status_reason")?,
        rejoin_gtid: r.try_get("rejoin_gtid")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn operation_from_row(r: &SqliteRow) -> StoreResult<Operation> {
    let op_type: String = r.try_get("op_type")?;
    let status: String = r.try_get("status")?;
    let code: Option<String> = r.try_get("error_code")?;
    let message: Option<String> = r.try_get("error_message")?;
    Ok(Operation {
        id: r.try_get("id")?,
        object: "operation",
        op_type: OperationType::parse(&op_type).ok_or_else(|| corrupt("operation type", &op_type))?,
        status: OperationStatus::parse(&status).ok_or_else(|| corrupt("operation status", &status))?,
        cluster_id: r.try_get("cluster_id")?,
        node_id: r.try_get("node_id")?,
        tenant_id: r.try_get("tenant_id")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        error: code.map(|code| OperationError {
            code,
            message: message.unwrap_or_default(),
        }),
        steps: Vec::new(),
    })
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
