//! The SQLite implementation of the store traits (WAL mode, migrations embedded in the
//! binary). Rows are read with the helpers at the bottom; every status string is
//! parsed back into its enum, and an unknown value is a `Corrupt` error.

mod audit;
mod backups;
mod clusters;
mod events;
mod hosts;
mod nodes;
mod operations;
mod security_groups;
mod tenants;

use std::str::FromStr;
use std::time::Duration;

use marina_common::model::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::{Page, StoreError, StoreResult};

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
    writer_host, reader_host, endpoint_port, endpoints_ready, secrets_enc, generation, failover_mode, writer_paused, restore_source, backup_policy, backup_slot, auto_reseed, primary_read_only, binlog_archive_since, created_at, updated_at";
const NODE_COLS: &str = "id, cluster_id, ordinal, role, status, host, port, size_id, server_id, status_reason, \
    rejoin_gtid, fenced, host_id, zone, created_at, updated_at";
const OP_COLS: &str = "seq, id, tenant_id, cluster_id, node_id, params, op_type, status, error_code, error_message, \
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
        "INSERT INTO operations (id, tenant_id, cluster_id, node_id, op_type, status, created_at, params) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&op.id)
    .bind(&op.tenant_id)
    .bind(&op.cluster_id)
    .bind(&op.node_id)
    .bind(op.op_type.as_str())
    .bind(op.status.as_str())
    .bind(&op.created_at)
    .bind(op.params.as_ref().map(|p| p.to_string()))
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
        restore: match r.try_get::<Option<String>, _>("restore_source")? {
            Some(json) => Some(serde_json::from_str(&json).map_err(|_| corrupt("restore source", &json))?),
            None => None,
        },
        backup_policy: match r.try_get::<Option<String>, _>("backup_policy")? {
            Some(json) => Some(serde_json::from_str(&json).map_err(|_| corrupt("backup policy", &json))?),
            None => None,
        },
        backup_slot: r.try_get("backup_slot")?,
        auto_reseed: r.try_get("auto_reseed")?,
        primary_read_only: r.try_get("primary_read_only")?,
        binlog_archive_since: r.try_get("binlog_archive_since")?,
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
        fenced: r.try_get::<i64, _>("fenced")? != 0,
        host_id: r.try_get("host_id")?,
        zone: r.try_get("zone")?,
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
        params: match r.try_get::<Option<String>, _>("params")? {
            Some(json) => Some(serde_json::from_str(&json).map_err(|_| corrupt("operation params", &json))?),
            None => None,
        },
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
