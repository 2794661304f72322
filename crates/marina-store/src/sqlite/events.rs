//! SQLite: the per-cluster event log.

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;

use super::*;
use crate::{EventStore, Page, PageRequest, StoreResult};

#[async_trait]
impl EventStore for SqliteStore {
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
