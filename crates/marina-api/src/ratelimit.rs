//! Request rate limiting: one token bucket per source (an IPv4 address or an
//! IPv6 /64, `transport::source_key`) and one per API token (keyed by the secret's hash, never the secret). A request needs both;
//! otherwise it gets 429 `rate_limited` with `Retry-After`. `/healthz` is exempt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use marina_common::Error;
use marina_core::Marina;

use crate::error::ApiError;

/// One bucket.
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// All buckets; idle ones are dropped when the map grows.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one request from `key`'s bucket; `Err(seconds)` until it may retry.
    fn take(&self, key: &str, rate: f64, burst: f64) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, b| now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// The middleware.
pub async fn limit(
    State((app, limiter)): State<(Arc<Marina>, Arc<RateLimiter>)>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let (rate, burst) = (app.config.limits.requests_per_second, app.config.limits.burst);
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| crate::transport::source_key(c.0.ip()).to_string());
    let token = crate::extract::bearer(req.headers()).map(marina_core::secrets::hash_token);
    for key in [source.map(|s| format!("ip:{s}")), token.map(|t| format!("tok:{t}"))]
        .into_iter()
        .flatten()
    {
        if let Err(retry_after_secs) = limiter.take(&key, rate, burst) {
            return ApiError(Error::RateLimited { retry_after_secs }).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let l = RateLimiter::default();
        for _ in 0..3 {
            assert!(l.take("k", 1.0, 3.0).is_ok());
        }
        assert_eq!(l.take("k", 1.0, 3.0), Err(1));
        assert!(l.take("other", 1.0, 3.0).is_ok(), "keys are independent");
    }
}
