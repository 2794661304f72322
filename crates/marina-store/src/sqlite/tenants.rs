//! SQLite: tenants and API tokens (secrets only as hashes).

use async_trait::async_trait;
use marina_common::model::*;
use sqlx::Row;

use super::*;
use crate::{StoreResult, TenantStore};

#[async_trait]
impl TenantStore for SqliteStore {
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
}
