//! The audit middleware: every mutating call answered to a known token is
//! recorded in the audit log (see `marina_core::audit` for the rules).
//!
//! The `Auth` extractor leaves the caller in an `AuditSlot` this middleware put
//! in the request; errors leave their contract code in the response's
//! extensions (`dialect::ErrorInfo`); the route template comes from `MatchedPath`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use marina_core::Marina;
use marina_core::audit::AuditedCall;
use marina_core::auth::AuthContext;

/// Where `Auth` leaves the authenticated caller for the audit middleware.
#[derive(Clone, Default)]
pub struct AuditSlot(Arc<Mutex<Option<AuthContext>>>);

impl AuditSlot {
    pub fn set(&self, auth: &AuthContext) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth.clone());
    }

    fn take(&self) -> Option<AuthContext> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Records mutating calls after they are answered.
pub async fn audit(State(app): State<Arc<Marina>>, mut req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "(no route)".into());
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    if let Some(auth) = slot.take() {
        let call = AuditedCall {
            source,
            method,
            route,
            path,
            status: resp.status().as_u16(),
            error_code: resp
                .extensions()
                .get::<crate::dialect::ErrorInfo>()
                .map(|c| c.code.to_string()),
            request_id: crate::error::current_request_id(),
        };
        app.record_audit(&auth, call).await;
    }
    resp
}
