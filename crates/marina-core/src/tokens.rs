//! Tokens and tenants: personal API tokens with scopes (secret shown once,
//! stored as a hash, revocable at once) and tenant creation by the operator.

use marina_common::model::{CreateTenantInput, CreateTokenInput, Scope, Tenant, TokenRecord};
use marina_common::{Error, ids, time_fmt};
use marina_store::{Page, PageRequest, Revoke};

use crate::Marina;
use crate::auth::AuthContext;
use crate::secrets::new_token_secret;

impl Marina {
    /// Creates a token in the caller's tenant; returns it with its secret (the
    /// only time the secret is shown). A token never grants more than its
    /// creator has.
    pub async fn create_token(
        &self,
        auth: &AuthContext,
        input: CreateTokenInput,
    ) -> Result<(TokenRecord, String), Error> {
        auth.require(Scope::Admin)?;
        ids::validate_name(&input.name).map_err(Error::InvalidRequest)?;
        if input.scopes.is_empty() {
            return Err(Error::InvalidRequest(
                "scopes must list at least one of read, write, admin".into(),
            ));
        }
        if let Some(s) = input.scopes.iter().find(|s| auth.require(**s).is_err()) {
            return Err(Error::Forbidden(format!(
                "this token cannot grant the {s} scope it does not have"
            )));
        }
        // Canonical order: read, write, admin.
        let scopes: Vec<Scope> = [Scope::Read, Scope::Write, Scope::Admin]
            .into_iter()
            .filter(|s| input.scopes.contains(s))
            .collect();
        let secret = new_token_secret();
        let token = self
            .create_token_for(&auth.tenant_id, &input.name, &scopes, &secret)
            .await?;
        Ok((token, secret))
    }

    /// The tenant's live tokens (never their secrets).
    pub async fn list_tokens(&self, auth: &AuthContext, page: PageRequest<'_>) -> Result<Page<TokenRecord>, Error> {
        auth.require(Scope::Admin)?;
        Ok(self.store.list_tokens(&auth.tenant_id, page).await?)
    }

    /// Revokes a token of the tenant; its secret is refused from the next
    /// request on. The tenant's last admin token cannot be revoked (409): for
    /// the operator that would lock everyone out of the whole service.
    pub async fn revoke_token(&self, auth: &AuthContext, id: &str) -> Result<(), Error> {
        auth.require(Scope::Admin)?;
        match self
            .store
            .revoke_token(&auth.tenant_id, id, &time_fmt::now_rfc3339())
            .await?
        {
            Revoke::Revoked => Ok(()),
            Revoke::NotFound => Err(Error::not_found("token", id)),
            Revoke::LastAdmin => Err(Error::Conflict(format!(
                "token {id} is this tenant's last token with the admin scope: create another admin token first \
                 (revoking it would leave nobody able to manage the tenant)"
            ))),
        }
    }

    /// Creates a tenant and its first admin token (operator only: an admin
    /// token of the bootstrap tenant).
    /// 403 unless the caller is a token of the operator's tenant with `scope`.
    pub async fn require_operator(&self, auth: &AuthContext, scope: Scope, what: &str) -> Result<(), Error> {
        auth.require(scope)?;
        let caller = self.store.get_tenant(&auth.tenant_id).await?;
        if !caller.is_some_and(|t| t.operator) {
            return Err(Error::Forbidden(format!("only the operator's tenant can {what}")));
        }
        Ok(())
    }

    pub async fn create_tenant(
        &self,
        auth: &AuthContext,
        input: CreateTenantInput,
    ) -> Result<(Tenant, TokenRecord, String), Error> {
        self.require_operator(auth, Scope::Admin, "create tenants").await?;
        ids::validate_name(&input.name).map_err(Error::InvalidRequest)?;
        let tenant = Tenant {
            id: ids::new_id(ids::prefix::TENANT),
            name: input.name.clone(),
            created_at: time_fmt::now_rfc3339(),
            operator: false,
        };
        self.store.create_tenant(&tenant).await.map_err(|e| match e {
            marina_store::StoreError::Conflict(_) => {
                Error::Conflict(format!("a tenant named {:?} already exists", input.name))
            }
            other => other.into(),
        })?;
        let secret = new_token_secret();
        let token = self
            .create_token_for(&tenant.id, "admin", &[Scope::Read, Scope::Write, Scope::Admin], &secret)
            .await?;
        Ok((tenant, token, secret))
    }
}
