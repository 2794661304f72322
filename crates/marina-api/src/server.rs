//! The HTTP server: the router (every route registered through `utoipa-axum`, so
//! the OpenAPI document is generated from the same handlers the router serves),
//! the request-id middleware, JSON fallbacks for unknown routes and methods, and
//! graceful shutdown driven by a future the caller passes in.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use marina_common::Error;
use marina_core::Marina;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, REQUEST_ID};
use crate::routes::{
    audit, backups, catalog, cloud66, clusters, ha, hosts, medstack, metrics, node_sizes, nodes, operations, ovh,
    repman, repman_actions, repman_api, security_groups, service, tokens, trove,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Marina API", version = "v1", description = "Self-hosted managed MariaDB: replicated clusters, endpoints and durable operations."),
    modifiers(&BearerAuth),
    tags((name = "service"), (name = "tenants"), (name = "node-sizes"), (name = "clusters"), (name = "high-availability"), (name = "operations"), (name = "hosts"), (name = "tokens"), (name = "security-groups"), (name = "backups"), (name = "nodes"), (name = "databases"), (name = "compat: cloud66"), (name = "compat: medstack"), (name = "compat: ovh"), (name = "compat: replication-manager"), (name = "compat: trove"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    }
}

fn api_router() -> OpenApiRouter<Arc<Marina>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(service::versions))
        .routes(routes!(service::version))
        .routes(routes!(service::healthz))
        .routes(routes!(service::openapi))
        .routes(routes!(metrics::metrics))
        .routes(routes!(service::background_tasks))
        .routes(routes!(audit::list))
        .routes(routes!(backups::create, backups::list))
        .routes(routes!(backups::get, backups::delete))
        .routes(routes!(backups::reseed))
        .routes(routes!(backups::restore_window))
        .routes(routes!(service::current_tenant))
        .routes(routes!(service::list_tenants, tokens::create_tenant))
        .routes(routes!(service::get_tenant))
        .routes(routes!(operations::list))
        .routes(routes!(hosts::list))
        .routes(routes!(hosts::get))
        .routes(routes!(hosts::cordon))
        .routes(routes!(hosts::uncordon))
        .routes(routes!(hosts::drain))
        .routes(routes!(hosts::create_join_token))
        .routes(routes!(hosts::join))
        .routes(routes!(node_sizes::list))
        .routes(routes!(node_sizes::get))
        .routes(routes!(clusters::create, clusters::list))
        .routes(routes!(clusters::get, clusters::delete, ha::patch))
        .routes(routes!(ha::status))
        .routes(routes!(ha::history))
        .routes(routes!(ha::switchover))
        .routes(routes!(ha::failover))
        .routes(routes!(ha::is_primary))
        .routes(routes!(ha::is_replica))
        .routes(routes!(clusters::nodes, nodes::add))
        .routes(routes!(clusters::node, nodes::remove, nodes::resize))
        .routes(routes!(nodes::reboot))
        .routes(routes!(nodes::reboot_cluster))
        .routes(routes!(nodes::start))
        .routes(routes!(nodes::stop))
        .routes(routes!(nodes::maintenance))
        .routes(routes!(nodes::read_only))
        .routes(routes!(catalog::processlist))
        .routes(routes!(catalog::variables))
        .routes(routes!(catalog::status_variables))
        .routes(routes!(catalog::create_database, catalog::list_databases))
        .routes(routes!(catalog::delete_database))
        .routes(routes!(catalog::create_user, catalog::list_users))
        .routes(routes!(catalog::delete_user))
        .routes(routes!(catalog::reset_password))
        .routes(routes!(cloud66::stacks_json))
        .routes(routes!(cloud66::stacks))
        .routes(routes!(cloud66::get_stack))
        .routes(routes!(cloud66::services))
        .routes(routes!(cloud66::start_action))
        .routes(routes!(cloud66::get_action))
        .routes(routes!(ovh::time))
        .routes(routes!(ovh::create, ovh::list))
        .routes(routes!(ovh::get, ovh::delete))
        .routes(routes!(ovh::status))
        .routes(routes!(ovh::create_app, ovh::list_apps))
        .routes(routes!(ovh::delete_app))
        .routes(routes!(service::trove_version))
        .routes(routes!(trove::instances::list, trove::instances::create))
        .routes(routes!(trove::instances::detail))
        .routes(routes!(trove::instances::get, trove::instances::delete))
        .routes(routes!(trove::instances::action))
        .routes(routes!(trove::flavors::list))
        .routes(routes!(trove::flavors::detail))
        .routes(routes!(trove::flavors::get))
        .routes(routes!(trove::security_groups::list))
        .routes(routes!(trove::security_groups::get))
        .routes(routes!(trove::security_groups::create_rule))
        .routes(routes!(
            trove::security_groups::get_rule,
            trove::security_groups::delete_rule
        ))
        .routes(routes!(medstack::current_company))
        .routes(routes!(medstack::clusters))
        .routes(routes!(medstack::node_sizes))
        .routes(routes!(medstack::create_node))
        .routes(routes!(
            medstack::get_node,
            medstack::resize_node,
            medstack::delete_node
        ))
        .routes(routes!(medstack::reboot_node))
        .routes(routes!(repman::master_status))
        .routes(routes!(repman::master_status_by_port))
        .routes(routes!(repman::slave_status))
        .routes(routes!(repman::slave_status_by_port))
        .routes(routes!(repman::is_master))
        .routes(routes!(repman::is_master_by_port))
        .routes(routes!(repman::is_slave))
        .routes(routes!(repman::is_slave_by_port))
        .routes(routes!(repman::cluster_status))
        .routes(routes!(repman_api::login))
        .routes(routes!(repman_api::monitor))
        .routes(routes!(repman_api::cluster))
        .routes(routes!(repman_api::cluster_settings))
        .routes(routes!(repman_api::topology))
        .routes(routes!(repman_api::server_view))
        .routes(routes!(repman_actions::switchover))
        .routes(routes!(repman_actions::failover))
        .routes(routes!(repman_actions::bootstrap))
        .routes(routes!(repman_actions::server_action))
        .routes(routes!(repman_actions::reseed))
        .routes(routes!(clusters::operations))
        .routes(routes!(clusters::events))
        .routes(routes!(operations::get))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(security_groups::create, security_groups::list))
        .routes(routes!(security_groups::get, security_groups::delete))
        .routes(routes!(security_groups::add_rule))
        .routes(routes!(security_groups::delete_rule))
}

static OPENAPI: OnceLock<serde_json::Value> = OnceLock::new();

/// Largest request body accepted (413 `payload_too_large` above it).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Reads the whole body (at most `BODY_LIMIT`) within `limits.body_timeout_ms`
/// before any handler runs, so no handler ever waits on a slow client (408
/// `request_timeout`, and the connection is closed).
async fn buffer_body(State(app): State<Arc<Marina>>, req: Request, next: Next) -> Response {
    let limit = std::time::Duration::from_millis(app.config.limits.body_timeout_ms);
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(limit, crate::extract::body_bytes(body)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(too_large)) => too_large.into_response(),
        Err(_) => {
            let mut resp = ApiError(Error::RequestTimeout(format!(
                "the request body did not arrive within {} ms",
                limit.as_millis()
            )))
            .into_response();
            resp.headers_mut()
                .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

/// The OpenAPI document, as JSON.
pub fn openapi_json() -> &'static serde_json::Value {
    OPENAPI.get_or_init(|| {
        let (_, doc) = api_router().split_for_parts();
        serde_json::to_value(&doc).unwrap_or_default()
    })
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError(Error::NotFound {
        kind: "route",
        id: format!("{method} {}", uri.path()),
    })
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let mut r = ApiError(Error::InvalidRequest(format!(
        "method {method} is not allowed on {}",
        uri.path()
    )))
    .into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Turns a panic anywhere below it into a 500 with the contract's body (and
/// the request id, set by `request_id` outside this layer) instead of a
/// dropped connection. No input should panic a handler; this is the net
/// under that rule, and the panic is logged with its request id.
async fn catch_panic(req: Request, next: Next) -> Response {
    use futures_util::FutureExt;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            ApiError(Error::internal(format!("{method} {path} panicked: {what}"))).into_response()
        }
    }
}

async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .map(String::from)
        .unwrap_or_else(|| marina_common::ids::new_id("req"));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    tracing::debug!(request_id = %id, %method, %path, status = resp.status().as_u16(), "request");
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The complete router.
pub fn router(app: Arc<Marina>) -> Router {
    let (router, _) = api_router().split_for_parts();
    // The console is not part of the API document.
    let router = router
        .route("/ui", axum::routing::get(crate::routes::ui::index))
        .route("/ui/", axum::routing::get(crate::routes::ui::index))
        .route("/ui/{*path}", axum::routing::get(crate::routes::ui::asset))
        .route("/docs", axum::routing::get(crate::routes::ui::docs))
        .route("/docs/", axum::routing::get(crate::routes::ui::docs));
    let limiter = Arc::new(crate::ratelimit::RateLimiter::default());
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(app.clone(), buffer_body))
        .layer(axum::middleware::from_fn_with_state(app.clone(), crate::audit::audit))
        .layer(axum::middleware::from_fn_with_state(
            (app.clone(), limiter),
            crate::ratelimit::limit,
        ))
        .layer(axum::middleware::from_fn(crate::dialect::seed_errors))
        .layer(axum::middleware::from_fn_with_state(app.clone(), crate::observe::count))
        .layer(axum::middleware::from_fn(catch_panic))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(app)
}

/// Serves the API on `listener` (TLS when `tls` is given) until `shutdown`
/// resolves.
pub async fn serve(
    app: Arc<Marina>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let l = &app.config.limits;
    let limits = crate::transport::Limits {
        header_timeout: std::time::Duration::from_millis(l.header_timeout_ms),
        write_timeout: std::time::Duration::from_millis(l.write_timeout_ms),
        max_connections: l.max_connections,
        max_connections_per_source: l.max_connections_per_source,
    };
    crate::transport::serve(router(app), listener, tls, limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_contract_body() {
        async fn boom() -> &'static str {
            panic!("index out of bounds")
        }
        let router: Router = Router::new()
            .route("/boom", axum::routing::get(boom))
            .layer(axum::middleware::from_fn(catch_panic))
            .layer(axum::middleware::from_fn(request_id));
        let req = Request::builder()
            .uri("/boom")
            .header("x-request-id", "req-panic-1")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()["x-request-id"], "req-panic-1");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal");
        assert_eq!(v["error"]["request_id"], "req-panic-1");
        // The panic's text is for the log, not the client.
        assert!(!v.to_string().contains("index out of bounds"), "{v}");
    }
}
