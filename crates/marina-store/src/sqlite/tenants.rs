//! SQLite: tenants, API tokens (secrets only as hashes) and OVH applications
//! (secrets sealed).

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::*;
use crate::{Page, PageRequest, Revoke, StoreResult, TenantStore};

#[async_trait]
impl TenantStore for SqliteStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&self.pool)
            .await?;
        Ok(n == 0)
    }

    async fn create_tenant(&self, t: &Tenant) -> StoreResult<()> {
        sqlx::query("INSERT INTO tenants (id, name, created_at, operator) VALUES ($1, $2, $3, $4)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.created_at)
            .bind(t.operator)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_tenant(&self, id: &str) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT seq, id, name, created_at, operator FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn list_tenants(&self, page: PageRequest<'_>) -> StoreResult<Page<Tenant>> {
        let after = parse_cursor(page.cursor)?.unwrap_or(0);
        let rows =
            sqlx::query("SELECT seq, id, name, created_at, operator FROM tenants WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(page.limit as i64 + 1)
                .fetch_all(&self.pool)
                .await?;
        paginate(&rows, page.limit, tenant_from_row)
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
        row.as_ref().map(token_from_row).transpose()
    }

    async fn touch_token(&self, id: &str, at: &str) -> StoreResult<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_tokens(&self, tenant_id: &str, page: PageRequest<'_>) -> StoreResult<Page<TokenRecord>> {
        let after = parse_cursor(page.cursor)?.unwrap_or(0);
        let rows = sqlx::query(
            "SELECT seq, id, tenant_id, name, scopes, created_at, last_used_at FROM tokens \
             WHERE tenant_id = $1 AND revoked_at IS NULL AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(page.limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        paginate(&rows, page.limit, token_from_row)
    }

    async fn revoke_token(&self, tenant_id: &str, id: &str, at: &str) -> StoreResult<Revoke> {
        // One statement: the "another admin token stays" check and the write
        // cannot be split by a concurrent revocation.
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL \
             AND (',' || scopes || ',' NOT LIKE '%,admin,%' OR EXISTS (SELECT 1 FROM tokens o \
                  WHERE o.tenant_id = $3 AND o.id <> $2 AND o.revoked_at IS NULL \
                  AND ',' || o.scopes || ',' LIKE '%,admin,%'))",
        )
        .bind(at)
        .bind(id)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Revoke::Revoked);
        }
        let live: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL")
                .bind(id)
                .bind(tenant_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(if live > 0 { Revoke::LastAdmin } else { Revoke::NotFound })
    }

    async fn operator_tenant(&self) -> StoreResult<Option<Tenant>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM tenants WHERE operator = 1 ORDER BY created_at, id LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some(id) => self.get_tenant(&id).await,
            None => Ok(None),
        }
    }

    async fn create_ovh_app(&self, app: &OvhApplication, secret_sealed: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ovh_applications (app_key, tenant_id, name, secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&app.application_key)
        .bind(&app.tenant_id)
        .bind(&app.name)
        .bind(secret_sealed)
        .bind(&app.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_ovh_app(&self, app_key: &str) -> StoreResult<Option<(OvhApplication, String)>> {
        let row = sqlx::query(
            "SELECT app_key, tenant_id, name, secret_sealed, created_at FROM ovh_applications WHERE app_key = $1",
        )
        .bind(app_key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((ovh_app_from_row(&r)?, r.try_get("secret_sealed")?)))
            .transpose()
    }

    async fn list_ovh_apps(&self, tenant_id: &str) -> StoreResult<Vec<OvhApplication>> {
        let rows = sqlx::query(
            "SELECT app_key, tenant_id, name, created_at FROM ovh_applications \
             WHERE tenant_id = $1 ORDER BY created_at, app_key",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ovh_app_from_row).collect()
    }

    async fn delete_ovh_app(&self, tenant_id: &str, app_key: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ovh_applications WHERE app_key = $1 AND tenant_id = $2")
            .bind(app_key)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn ovh_app_from_row(r: &SqliteRow) -> StoreResult<OvhApplication> {
    Ok(OvhApplication {
        application_key: r.try_get("app_key")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
    })
}

fn token_from_row(r: &SqliteRow) -> StoreResult<TokenRecord> {
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
}

fn tenant_from_row(r: &SqliteRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        operator: r.try_get("operator")?,
    })
}
