//! Counts every answered request for `/metrics`: its route template (from
//! `MatchedPath`, `(unmatched)` for the fallback — never the raw path), its
//! method (`OTHER` for unusual ones), its status and its latency.
//!
//! Failed authentications are counted (`marina_auth_failures_total`) and
//! logged with their source and path — never the secret presented — here,
//! once for every way in: any 401 (bearer and Basic tokens, replication-manager's
//! `/api/login`, health checks with a token), and every refused OVH signature
//! or consumer key (which OVH's API answers with 400/403, marked `AuthRefused`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use marina_core::Marina;

/// The method label (a bounded set).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Marks a response that refused a credential without a 401.
#[derive(Debug, Clone, Copy)]
pub struct AuthRefused;

/// Records the request once answered.
pub async fn count(State(app): State<Arc<Marina>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |m| m.as_str().to_string());
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if status == 401 || resp.extensions().get::<AuthRefused>().is_some() {
        let failures = app.auth_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        tracing::warn!(%source, %path, status, failures, "authentication failed");
    }
    app.metrics.http_request(&route, method, status, started.elapsed());
    resp
}
