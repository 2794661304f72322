//! Authentication and scope checks: a bearer secret becomes an `AuthContext`
//! (tenant + scopes) or a 401; a missing scope is a 403.

use marina_common::model::{Scope, Tenant, TokenRecord};
use marina_common::{Error, ids, time_fmt};

use crate::Marina;
use crate::secrets::{hash_token, new_token_secret, write_secret_file};

/// `last_used_at` is written at most this often per token.
const TOUCH_INTERVAL_SECS: i64 = 30;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub tenant_id: String,
    pub token_id: String,
    pub scopes: Vec<Scope>,
}

impl AuthContext {
    /// 403 unless the token has `scope` (`admin` implies `write` implies `read`).
    pub fn require(&self, scope: Scope) -> Result<(), Error> {
        let rank = |s: &Scope| match s {
            Scope::Read => 0,
            Scope::Write => 1,
            Scope::Admin => 2,
        };
        let needed = rank(&scope);
        if self.scopes.iter().any(|s| rank(s) >= needed) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                format!("this token lacks the {scope:?} scope").to_lowercase(),
            ))
        }
    }
}

impl Marina {
    /// Resolves a bearer secret.
    pub async fn authenticate(&self, secret: Option<&str>) -> Result<AuthContext, Error> {
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Unauthenticated("missing token: send Authorization: Bearer <token>".into()))?;
        let token = self
            .store
            .find_token(&hash_token(secret))
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown or revoked token".into()))?;
        let stale = token
            .last_used_at
            .as_deref()
            .and_then(time_fmt::parse_rfc3339)
            .is_none_or(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds() >= TOUCH_INTERVAL_SECS);
        if stale {
            self.store.touch_token(&token.id, &time_fmt::now_rfc3339()).await?;
        }
        Ok(AuthContext {
            tenant_id: token.tenant_id,
            token_id: token.id,
            scopes: token.scopes,
        })
    }

    /// At every start, this machine is registered as the local host
    /// (`hosts.rs`). On first start (empty store): tenant `default` and an
    /// admin token whose secret is written to `<data-dir>/admin-token` (0600)
    /// and returned once.
    pub async fn bootstrap(&self) -> Result<Option<String>, Error> {
        self.register_local_host().await?;
        if !self.store.is_empty().await? {
            return Ok(None);
        }
        let tenant = Tenant {
            id: ids::new_id(ids::prefix::TENANT),
            name: "default".into(),
            created_at: time_fmt::now_rfc3339(),
            operator: true,
        };
        let secret = new_token_secret();
        write_secret_file(
            &self.config.data_dir.join("admin-token"),
            format!("{secret}\n").as_bytes(),
        )?;
        self.store.create_tenant(&tenant).await?;
        self.create_token_for(
            &tenant.id,
            "bootstrap-admin",
            &[Scope::Read, Scope::Write, Scope::Admin],
            &secret,
        )
        .await?;
        Ok(Some(secret))
    }

    /// Stores a token for `secret` (only its hash is kept).
    pub async fn create_token_for(
        &self,
        tenant_id: &str,
        name: &str,
        scopes: &[Scope],
        secret: &str,
    ) -> Result<TokenRecord, Error> {
        let token = TokenRecord {
            id: ids::new_id(ids::prefix::TOKEN),
            tenant_id: tenant_id.into(),
            name: name.into(),
            scopes: scopes.to_vec(),
            created_at: time_fmt::now_rfc3339(),
            last_used_at: None,
        };
        self.store.create_token(&token, &hash_token(secret)).await?;
        Ok(token)
    }
}

/// The host root's way back in when the operator has no admin token left
/// (lost, or the store edited by hand): a new admin token of the operator's
/// tenant, written straight into the store under `data_dir` and into
/// `<data_dir>/admin-token` (0600). Works with `marina serve` stopped or
/// running (SQLite serialises the two writers). Needs read and write access
/// to the data dir, which only its owner (root) has: whoever has that already
/// holds every secret, so this grants nothing new. Returns the token and the
/// file it was written to.
pub async fn recover_admin_token(data_dir: &std::path::Path) -> Result<(TokenRecord, std::path::PathBuf), Error> {
    use marina_store::TenantStore;
    let db = data_dir.join("marina.db");
    if !db.is_file() {
        return Err(Error::NotFound {
            kind: "data dir",
            id: format!(
                "{} (no marina.db there: give the data dir `marina serve` uses)",
                data_dir.display()
            ),
        });
    }
    let store = marina_store::SqliteStore::open(&db).await?;
    let tenant = store.operator_tenant().await?.ok_or_else(|| {
        Error::Conflict("the store has no operator tenant yet: start `marina serve` once to create it".into())
    })?;
    let secret = new_token_secret();
    let token = TokenRecord {
        id: ids::new_id(ids::prefix::TOKEN),
        tenant_id: tenant.id,
        name: format!("recovery-admin-{}", time::OffsetDateTime::now_utc().unix_timestamp()),
        scopes: vec![Scope::Read, Scope::Write, Scope::Admin],
        created_at: time_fmt::now_rfc3339(),
        last_used_at: None,
    };
    let path = data_dir.join("admin-token");
    // The token first: the file keeps its old (maybe still valid) secret
    // when the store refuses the write.
    store.create_token(&token, &hash_token(&secret)).await?;
    write_secret_file(&path, format!("{secret}\n").as_bytes())?;
    Ok((token, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_ordered() {
        let ctx = |s: Vec<Scope>| AuthContext {
            tenant_id: "t".into(),
            token_id: "k".into(),
            scopes: s,
        };
        assert!(ctx(vec![Scope::Read]).require(Scope::Read).is_ok());
        assert!(ctx(vec![Scope::Read]).require(Scope::Write).is_err());
        assert!(ctx(vec![Scope::Write]).require(Scope::Read).is_ok());
        assert!(ctx(vec![Scope::Admin]).require(Scope::Write).is_ok());
        let e = ctx(vec![Scope::Read]).require(Scope::Admin).unwrap_err();
        assert_eq!(e.code(), "forbidden");
    }
}
