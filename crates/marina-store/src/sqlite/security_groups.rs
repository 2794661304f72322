//! SQLite: security groups, their rules, and cluster attachments.

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::*;
use crate::{GroupDeletion, Page, PageRequest, SecurityGroupStore, StoreResult};

fn rule_from_row(r: &SqliteRow) -> StoreResult<SecurityGroupRule> {
    Ok(SecurityGroupRule {
        id: r.try_get("id")?,
        object: "security_group_rule",
        security_group_id: r.try_get("security_group_id")?,
        cidr: r.try_get("cidr")?,
        from_port: r.try_get::<i64, _>("from_port")? as u16,
        to_port: r.try_get::<i64, _>("to_port")? as u16,
        created_at: r.try_get("created_at")?,
    })
}

fn group_from_row(r: &SqliteRow) -> StoreResult<SecurityGroup> {
    Ok(SecurityGroup {
        id: r.try_get("id")?,
        object: "security_group",
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        rules: Vec::new(),
        created_at: r.try_get("created_at")?,
        tenant_id: r.try_get("tenant_id")?,
    })
}

const RULE_COLS: &str = "id, security_group_id, cidr, from_port, to_port, created_at";

impl SqliteStore {
    async fn rules_of(&self, group_id: &str) -> StoreResult<Vec<SecurityGroupRule>> {
        let sql = format!("SELECT {RULE_COLS} FROM security_group_rules WHERE security_group_id = $1 ORDER BY seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule_from_row).collect()
    }
}

#[async_trait]
impl SecurityGroupStore for SqliteStore {
    async fn create_security_group(&self, sg: &SecurityGroup) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO security_groups (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&sg.id)
        .bind(&sg.tenant_id)
        .bind(&sg.name)
        .bind(&sg.description)
        .bind(&sg.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_security_group(&self, tenant_id: &str, id: &str) -> StoreResult<Option<SecurityGroup>> {
        let row = sqlx::query(
            "SELECT seq, id, tenant_id, name, description, created_at FROM security_groups \
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut g = group_from_row(&row)?;
        g.rules = self.rules_of(&g.id).await?;
        Ok(Some(g))
    }

    async fn list_security_groups(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<SecurityGroup>> {
        let after = parse_cursor(page.cursor)?.unwrap_or(0);
        let rows = sqlx::query(
            "SELECT seq, id, tenant_id, name, description, created_at FROM security_groups \
             WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(page.limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut p = paginate(&rows, page.limit, group_from_row)?;
        for g in p.items.iter_mut() {
            g.rules = self.rules_of(&g.id).await?;
        }
        Ok(p)
    }

    async fn delete_security_group(&self, tenant_id: &str, id: &str) -> StoreResult<GroupDeletion> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM security_groups WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(GroupDeletion::NotFound);
        }
        let users: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM cluster_security_groups a JOIN clusters c ON c.id = a.cluster_id \
             WHERE a.security_group_id = $1 AND c.status <> 'deleted'",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if users > 0 {
            return Ok(GroupDeletion::InUse);
        }
        for sql in [
            "DELETE FROM cluster_security_groups WHERE security_group_id = $1",
            "DELETE FROM security_group_rules WHERE security_group_id = $1",
            "DELETE FROM security_groups WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(GroupDeletion::Deleted)
    }

    async fn add_rule(&self, r: &SecurityGroupRule) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO security_group_rules (id, security_group_id, cidr, from_port, to_port, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.id)
        .bind(&r.security_group_id)
        .bind(&r.cidr)
        .bind(r.from_port as i64)
        .bind(r.to_port as i64)
        .bind(&r.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_rule(&self, security_group_id: &str, rule_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM security_group_rules WHERE id = $1 AND security_group_id = $2")
            .bind(rule_id)
            .bind(security_group_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_cluster_security_groups(&self, cluster_id: &str, ids: &[String]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM cluster_security_groups WHERE cluster_id = $1")
            .bind(cluster_id)
            .execute(&mut *tx)
            .await?;
        for id in ids {
            sqlx::query(
                "INSERT OR IGNORE INTO cluster_security_groups (cluster_id, security_group_id) VALUES ($1, $2)",
            )
            .bind(cluster_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn cluster_security_groups(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT security_group_id FROM cluster_security_groups WHERE cluster_id = $1 ORDER BY security_group_id",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn cluster_rules(&self, cluster_id: &str) -> StoreResult<Vec<SecurityGroupRule>> {
        let sql = format!(
            "SELECT r.{} FROM security_group_rules r JOIN cluster_security_groups a \
             ON a.security_group_id = r.security_group_id WHERE a.cluster_id = $1 ORDER BY r.seq",
            RULE_COLS.replace(", ", ", r.")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cluster_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule_from_row).collect()
    }
}
