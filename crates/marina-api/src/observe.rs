//! Counts every answered request for `/metrics`: its route template (from
//! `MatchedPath`, `(unmatched)` for the fallback — never the raw path), its
//! method (`OTHER` for unusual ones), its status and its latency.

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

/// Records the request once answered.
pub async fn count(State(app): State<Arc<Marina>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |m| m.as_str().to_string());
    let resp = next.run(req).await;
    app.metrics
        .http_request(&route, method, resp.status().as_u16(), started.elapsed());
    resp
}
