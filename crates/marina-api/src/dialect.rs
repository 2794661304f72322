//! Error bodies in the seeds' own forms. Handlers of every adapter return
//! Marina's `Error` like any other handler; `ApiError` leaves the code and the
//! message in the response's extensions (`ErrorInfo`), and this middleware
//! rewrites the body of an error answered under a seed's paths into that
//! seed's form, keeping the status and the headers:
//!
//! - OpenStack Trove / HP Cloud (`/v1.0/…`): `{"itemNotFound": {"message", "code": 404}}`
//!   (`badRequest`, `unauthorized`, `forbidden`, `conflictingRequest`,
//!   `overLimit`, `badMediaType`, `serviceUnavailable`, `instanceFault`).
//! - OVH (`/1.0/…`): `{"errorCode": "NOT_FOUND", "httpCode": "400 Bad Request", "message"}`.
//! - Cloud 66 (`/api/3/…`): `{"error": "<code>", "error_description": "<message>"}`.
//! - replication-manager's protected API (`/api/monitor`, `/api/login`,
//!   `/api/clusters/…`): plain texts, `No valid ACL` (403), `No Cluster`
//!   (500 for an unknown cluster), else the message with its status.
//!
//! MedStack's errors are Marina's JSON body; replication-manager's health
//! checks answer their texts themselves.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What an error response was (left in its extensions by `ApiError`).
#[derive(Clone, Debug)]
pub struct ErrorInfo {
    /// The contract's error code (`not_found`, …).
    pub code: &'static str,
    /// The public message.
    pub message: String,
    /// What was not found (`cluster`, `node`, …) for `not_found`.
    pub missing: Option<&'static str>,
}

/// A seed whose paths answer errors in its own form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Trove,
    Ovh,
    Cloud66,
    /// replication-manager's protected API: plain texts.
    Repman,
}

impl Dialect {
    /// The dialect of a request path, if any.
    pub fn of(path: &str) -> Option<Dialect> {
        if path == "/v1.0" || path.starts_with("/v1.0/") {
            Some(Dialect::Trove)
        } else if path.starts_with("/1.0/") {
            Some(Dialect::Ovh)
        } else if path.starts_with("/api/3/") {
            Some(Dialect::Cloud66)
        } else if path == "/api/monitor" || path == "/api/login" || path.starts_with("/api/clusters/") {
            Some(Dialect::Repman)
        } else {
            None
        }
    }

    /// The error body of `info` answered with `status`.
    pub fn body(self, status: StatusCode, info: &ErrorInfo) -> serde_json::Value {
        match self {
            Dialect::Trove => {
                let kind = match status.as_u16() {
                    400 => "badRequest",
                    401 => "unauthorized",
                    403 => "forbidden",
                    404 => "itemNotFound",
                    409 => "conflictingRequest",
                    413 | 429 => "overLimit",
                    415 => "badMediaType",
                    503 => "serviceUnavailable",
                    _ => "instanceFault",
                };
                json!({ kind: { "message": info.message, "code": status.as_u16() } })
            }
            Dialect::Ovh => {
                let code = match status.as_u16() {
                    401 | 403 => "INVALID_CREDENTIAL",
                    404 => "NOT_FOUND",
                    409 => "CONFLICT",
                    429 => "QUERY_LIMIT_REACHED",
                    400..=499 => "BAD_REQUEST",
                    _ => "INTERNAL_SERVER_ERROR",
                };
                ovh_body(status, code, &info.message)
            }
            Dialect::Cloud66 => json!({ "error": info.code, "error_description": info.message }),
            Dialect::Repman => serde_json::Value::String(repman_text(info)),
        }
    }

    /// The status of an error answered with `status` (replication-manager
    /// answers an unknown cluster with 500).
    pub fn status(self, status: StatusCode, info: &ErrorInfo) -> StatusCode {
        match self {
            Dialect::Repman if info.code == "not_found" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => status,
        }
    }
}

/// replication-manager's texts: `No valid ACL` for a scope the token
/// lacks, `No Cluster` for an unknown cluster, else the message.
fn repman_text(info: &ErrorInfo) -> String {
    match info.code {
        "forbidden" => "No valid ACL".into(),
        "not_found" if info.missing == Some("cluster") => "No Cluster".into(),
        _ => info.message.clone(),
    }
}

/// OVH's error body (the OVH adapter answers its signature errors with it).
pub fn ovh_body(status: StatusCode, error_code: &str, message: &str) -> serde_json::Value {
    json!({
        "errorCode": error_code,
        "httpCode": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
        "message": message,
    })
}

/// Rewrites error bodies under a seed's paths into the seed's form.
pub async fn seed_errors(req: Request, next: Next) -> Response {
    let Some(dialect) = Dialect::of(req.uri().path()) else {
        return next.run(req).await;
    };
    let resp = next.run(req).await;
    let Some(info) = resp.extensions().get::<ErrorInfo>().cloned() else {
        return resp;
    };
    let (mut parts, _) = resp.into_parts();
    let fresh = match dialect.body(parts.status, &info) {
        serde_json::Value::String(text) => text.into_response(),
        body => axum::Json(body).into_response(),
    };
    parts.status = dialect.status(parts.status, &info);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    let (fresh_parts, fresh_body) = fresh.into_parts();
    parts.headers.extend(fresh_parts.headers);
    Response::from_parts(parts, fresh_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(code: &'static str) -> ErrorInfo {
        ErrorInfo {
            code,
            message: "m".into(),
            missing: None,
        }
    }

    #[test]
    fn paths_pick_their_dialect() {
        assert_eq!(Dialect::of("/v1.0/t/instances"), Some(Dialect::Trove));
        assert_eq!(Dialect::of("/v1.0"), Some(Dialect::Trove));
        assert_eq!(Dialect::of("/1.0/stackMysql"), Some(Dialect::Ovh));
        assert_eq!(Dialect::of("/api/3/stacks.json"), Some(Dialect::Cloud66));
        assert_eq!(Dialect::of("/v1/clusters"), None);
        assert_eq!(Dialect::of("/api/clusters/x/status"), Some(Dialect::Repman));
        assert_eq!(Dialect::of("/clusters/x/servers/y/master-status"), None);
        assert_eq!(Dialect::of("/v1.00"), None);
    }

    #[test]
    fn bodies_follow_each_seed() {
        let b = Dialect::Trove.body(StatusCode::NOT_FOUND, &info("not_found"));
        assert_eq!(b["itemNotFound"]["code"], 404);
        assert_eq!(b["itemNotFound"]["message"], "m");
        let b = Dialect::Ovh.body(StatusCode::BAD_REQUEST, &info("invalid_request"));
        assert_eq!(b["errorCode"], "BAD_REQUEST");
        assert_eq!(b["httpCode"], "400 Bad Request");
        let b = Dialect::Ovh.body(StatusCode::FORBIDDEN, &info("forbidden"));
        assert_eq!(b["errorCode"], "INVALID_CREDENTIAL");
        let b = Dialect::Cloud66.body(StatusCode::UNAUTHORIZED, &info("unauthenticated"));
        assert_eq!(b["error"], "unauthenticated");
        assert_eq!(b["error_description"], "m");
        let not_found = ErrorInfo {
            code: "not_found",
            message: "cluster \"x\" was not found".into(),
            missing: Some("cluster"),
        };
        assert_eq!(Dialect::Repman.body(StatusCode::NOT_FOUND, &not_found), "No Cluster");
        assert_eq!(Dialect::Repman.status(StatusCode::NOT_FOUND, &not_found), 500);
        assert_eq!(
            Dialect::Repman.body(StatusCode::FORBIDDEN, &info("forbidden")),
            "No valid ACL"
        );
        assert_eq!(Dialect::Repman.body(StatusCode::CONFLICT, &info("conflict")), "m");
    }
}
