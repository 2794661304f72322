//! SQLite: hosts (the local host registered at start) and which host each
//! node runs on.

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::*;
use crate::{HostStore, StoreResult};

const HOST_COLS: &str = "id, name, zone, address, status, local, memory_bytes, disk_bytes, cpus, version, agent_port, seen_at, \
     created_at, updated_at";

fn host_from_row(r: &SqliteRow) -> StoreResult<HostRecord> {
    let status: String = r.try_get("status")?;
    Ok(HostRecord {
        id: r.try_get("id")?,
        object: "host",
        name: r.try_get("name")?,
        zone: r.try_get("zone")?,
        address: r.try_get("address")?,
        status: HostStatus::parse(&status).ok_or_else(|| corrupt("host status", &status))?,
        local: r.try_get::<i64, _>("local")? != 0,
        memory_bytes: r.try_get::<i64, _>("memory_bytes")?.max(0) as u64,
        disk_bytes: r.try_get::<i64, _>("disk_bytes")?.max(0) as u64,
        cpus: r.try_get::<i64, _>("cpus")?.max(0) as u32,
        version: r.try_get("version")?,
        agent_port: r
            .try_get::<Option<i64>, _>("agent_port")?
            .and_then(|p| u16::try_from(p).ok()),
        seen_at: r.try_get("seen_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl HostStore for SqliteStore {
    async fn ensure_local_host(&self, f: &HostRecord) -> StoreResult<HostRecord> {
        let mut tx = self.pool.begin().await?;
        // A new local host takes the facts' id, zone and status; a known one
        // keeps its own and has its facts refreshed.
        sqlx::query(
            "INSERT INTO hosts (id, name, zone, address, status, local, memory_bytes, disk_bytes, cpus, version, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (local) WHERE local = 1 DO UPDATE SET name = excluded.name, address = excluded.address, \
             memory_bytes = excluded.memory_bytes, disk_bytes = excluded.disk_bytes, cpus = excluded.cpus, \
             version = excluded.version, updated_at = excluded.updated_at",
        )
        .bind(&f.id)
        .bind(&f.name)
        .bind(&f.zone)
        .bind(&f.address)
        .bind(f.status.as_str())
        .bind(f.memory_bytes as i64)
        .bind(f.disk_bytes as i64)
        .bind(f.cpus as i64)
        .bind(&f.version)
        .bind(&f.updated_at)
        .execute(&mut *tx)
        .await?;
        let sql = format!("SELECT {HOST_COLS} FROM hosts WHERE local = 1");
        let host = host_from_row(&sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *tx).await?)?;
        sqlx::query("UPDATE nodes SET host_id = $1, zone = $2 WHERE host_id IS NULL")
            .bind(&host.id)
            .bind(&host.zone)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(host)
    }

    async fn list_hosts(&self) -> StoreResult<Vec<HostRecord>> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts ORDER BY created_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(host_from_row).collect()
    }

    async fn get_host(&self, id: &str) -> StoreResult<Option<HostRecord>> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(host_from_row).transpose()
    }

    async fn set_host_status(&self, id: &str, from: &[HostStatus], to: HostStatus, at: &str) -> StoreResult<bool> {
        let mut done = false;
        // One guarded write per allowed status (a handful at most).
        for f in from {
            let r = sqlx::query("UPDATE hosts SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
                .bind(to.as_str())
                .bind(at)
                .bind(id)
                .bind(f.as_str())
                .execute(&self.pool)
                .await?;
            if r.rows_affected() > 0 {
                done = true;
                break;
            }
        }
        Ok(done)
    }

    async fn host_heard(&self, id: &str, facts: &HostFactsUpdate, at: &str) -> StoreResult<bool> {
        // A `down` host whose agent answers is active again; any other
        // status (an operator's cordon, a drain) stays.
        let r = sqlx::query(
            "UPDATE hosts SET memory_bytes = $1, disk_bytes = $2, cpus = $3, version = $4, seen_at = $5, \
             status = CASE WHEN status = 'down' THEN 'active' ELSE status END, \
             updated_at = CASE WHEN status = 'down' THEN $5 ELSE updated_at END \
             WHERE id = $6 AND local = 0",
        )
        .bind(facts.memory_bytes as i64)
        .bind(facts.disk_bytes as i64)
        .bind(facts.cpus as i64)
        .bind(&facts.version)
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_join_token(&self, t: &JoinToken, secret_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO join_tokens (id, secret_hash, zone, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.id)
        .bind(secret_hash)
        .bind(&t.zone)
        .bind(&t.created_at)
        .bind(&t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn join_host(&self, secret_hash: &str, now: &str, host: &HostRecord) -> StoreResult<Option<JoinToken>> {
        let mut tx = self.pool.begin().await?;
        // The first statement writes: the transaction takes SQLite's write
        // lock at once (waiting its turn), where a read first would have to
        // upgrade and fail as busy beside another writer. Guarded: a token
        // used or expired meanwhile matches nothing. Times are fixed-width
        // RFC 3339 UTC: they compare as strings.
        let zone: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE join_tokens SET used_at = $2 WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING zone",
        )
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(zone) = zone else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO hosts (id, name, zone, address, status, local, memory_bytes, disk_bytes, cpus, version, \
             agent_port, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $11, $10, $10)",
        )
        .bind(&host.id)
        .bind(&host.name)
        .bind(zone.as_deref().unwrap_or(&host.zone))
        .bind(&host.address)
        .bind(host.status.as_str())
        .bind(host.memory_bytes as i64)
        .bind(host.disk_bytes as i64)
        .bind(host.cpus as i64)
        .bind(&host.version)
        .bind(now)
        .bind(host.agent_port.map(i64::from))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "UPDATE join_tokens SET host_id = $2 WHERE secret_hash = $3 AND used_at = $1 \
             RETURNING id, zone, created_at, expires_at, used_at, host_id",
        )
        .bind(now)
        .bind(&host.id)
        .bind(secret_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let token = JoinToken {
            id: r.try_get("id")?,
            object: "join_token",
            zone: r.try_get("zone")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
            host_id: r.try_get("host_id")?,
        };
        tx.commit().await?;
        Ok(Some(token))
    }

    async fn nodes_by_host(&self) -> StoreResult<Vec<(String, String, String, String)>> {
        let rows = sqlx::query(
            "SELECT n.host_id, n.id, n.cluster_id, n.size_id FROM nodes n JOIN clusters c ON c.id = n.cluster_id \
             WHERE c.status <> 'deleted' AND n.host_id IS NOT NULL ORDER BY n.seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("host_id")?,
                    r.try_get("id")?,
                    r.try_get("cluster_id")?,
                    r.try_get("size_id")?,
                ))
            })
            .collect()
    }
}
