//! The audit log: who changed what, from where, with what result.
//!
//! Rules:
//! - Every mutating API call (any method but GET, HEAD, OPTIONS) made with a
//!   known token is recorded once, after it was answered, with the token and
//!   tenant, source address, method, route template and path, status and error
//!   code. Calls without a valid token have no tenant to belong to: they are
//!   counted and logged as failed authentications instead.
//! - Recording is best effort: a store failure is logged and never changes the
//!   answer the client already has.
//! - A tenant's admins read their tenant's log, newest first.
//! - The pruner removes entries older than `audit.retention_days`, hourly.

use std::time::Duration;

use marina_common::model::{AuditEvent, Scope};
use marina_common::{Error, ids, time_fmt};
use marina_store::{Page, PageRequest};

use crate::Marina;
use crate::auth::AuthContext;

/// How often old entries are pruned.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What the API layer knows about a call once it was answered.
#[derive(Debug, Clone)]
pub struct AuditedCall {
    pub source: String,
    pub method: String,
    pub route: String,
    pub path: String,
    pub status: u16,
    pub error_code: Option<String>,
    pub request_id: String,
}

impl Marina {
    /// Records a mutating call made by `auth` (best effort).
    pub async fn record_audit(&self, auth: &AuthContext, call: AuditedCall) {
        let e = AuditEvent {
            id: ids::new_id(ids::prefix::AUDIT_EVENT),
            object: "audit_event",
            tenant_id: auth.tenant_id.clone(),
            token_id: auth.token_id.clone(),
            source: call.source,
            method: call.method,
            route: call.route,
            path: call.path,
            status: call.status,
            result: AuditEvent::result_of(call.status).into(),
            error_code: call.error_code,
            request_id: call.request_id,
            created_at: time_fmt::now_rfc3339(),
        };
        if let Err(err) = self.store.insert_audit_event(&e).await {
            tracing::warn!(error = %err, request_id = %e.request_id, "could not record an audit event");
        }
    }

    /// The caller's tenant's audit log (scope `admin`).
    pub async fn audit_events(&self, auth: &AuthContext, page: PageRequest<'_>) -> Result<Page<AuditEvent>, Error> {
        auth.require(Scope::Admin)?;
        Ok(self.store.list_audit_events(&auth.tenant_id, page).await?)
    }

    /// Removes entries older than the retention period; returns how many.
    pub async fn prune_audit_events(&self) -> Result<u64, Error> {
        let keep = time::Duration::days(i64::from(self.config.audit.retention_days));
        let before = time_fmt::format_rfc3339(time::OffsetDateTime::now_utc() - keep);
        Ok(self.store.prune_audit_events(&before).await?)
    }
}
