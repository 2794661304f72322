//! SQLite: the audit log of mutating API calls, per tenant, with pruning.

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;

use super::*;
use crate::{AuditStore, Page, PageRequest, StoreResult};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn insert_audit_event(&self, e: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, token_id, source, method, route, path, status, \
             error_code, request_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&e.id)
        .bind(&e.tenant_id)
        .bind(&e.token_id)
        .bind(&e.source)
        .bind(&e.method)
        .bind(&e.route)
        .bind(&e.path)
        .bind(i64::from(e.status))
        .bind(&e.error_code)
        .bind(&e.request_id)
        .bind(&e.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit_events(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<AuditEvent>> {
        let before = parse_cursor(page.cursor)?.unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT seq, id, tenant_id, token_id, source, method, route, path, status, error_code, \
             request_id, created_at FROM audit_events \
             WHERE tenant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(before)
        .bind(page.limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        paginate(&rows, page.limit, |r| {
            let status = u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0);
            Ok(AuditEvent {
                id: r.try_get("id")?,
                object: "audit_event",
                tenant_id: r.try_get("tenant_id")?,
                token_id: r.try_get("token_id")?,
                source: r.try_get("source")?,
                method: r.try_get("method")?,
                route: r.try_get("route")?,
                path: r.try_get("path")?,
                status,
                result: AuditEvent::result_of(status).into(),
                error_code: r.try_get("error_code")?,
                request_id: r.try_get("request_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
    }

    async fn prune_audit_events(&self, before: &str) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
