//! The web console at `/ui` and the API reference at `/docs`: hand-written ES
//! modules, HTML and CSS embedded in the binary (`crates/marina-api/ui/`), so
//! they work offline and need no build step. Served with a strict Content-Security-Policy (same origin
//! only: no inline scripts, no external fonts or CDNs).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (path under `/ui/`, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
    ("js/api.js", JS, include_str!("../../ui/js/api.js")),
    ("js/dom.js", JS, include_str!("../../ui/js/dom.js")),
    ("js/ops.js", JS, include_str!("../../ui/js/ops.js")),
    ("js/topology.js", JS, include_str!("../../ui/js/topology.js")),
    ("js/charts.js", JS, include_str!("../../ui/js/charts.js")),
    ("js/app.js", JS, include_str!("../../ui/js/app.js")),
    (
        "docs.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/docs.html"),
    ),
    ("js/docs.js", JS, include_str!("../../ui/js/docs.js")),
    (
        "js/pages/clusters.js",
        JS,
        include_str!("../../ui/js/pages/clusters.js"),
    ),
    ("js/pages/cluster.js", JS, include_str!("../../ui/js/pages/cluster.js")),
    ("js/pages/groups.js", JS, include_str!("../../ui/js/pages/groups.js")),
    ("js/pages/tokens.js", JS, include_str!("../../ui/js/pages/tokens.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Same origin only; `data:` for the empty favicon.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn serve(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// `/ui` and `/ui/`: the console's page.
pub async fn index() -> Response {
    serve("index.html")
}

/// `/docs`: the API reference (the OpenAPI document rendered, with "try it").
pub async fn docs() -> Response {
    serve("docs.html")
}

/// `/ui/{*path}`: the console's scripts and style sheet.
pub async fn asset(Path(path): Path<String>) -> Response {
    serve(if path.is_empty() { "index.html" } else { &path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_served() {
        for (path, _, body) in ASSETS.iter().filter(|(p, _, _)| p.ends_with(".js")) {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit_once(" from \"")
                    .map(|(_, t)| t.trim_end_matches("\";"))
                    .unwrap();
                let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
                for seg in target.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    ASSETS.iter().any(|(p, _, _)| *p == resolved),
                    "{path} imports {target} ({resolved}), which is not served"
                );
            }
        }
    }
}
