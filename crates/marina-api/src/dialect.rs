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
//!
//! MedStack and replication-manager keep their own: MedStack's errors are
//! Marina's JSON body; replication-manager answers plain texts itself.

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
}

/// A seed whose paths answer errors in its own form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Trove,
    Ovh,
    Cloud66,
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
        }
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
    let body = dialect.body(parts.status, &info);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let fresh = axum::Json(body).into_response();
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
        }
    }

    #[test]
    fn paths_pick_their_dialect() {
        assert_eq!(Dialect::of("/v1.0/t/instances"), Some(Dialect::Trove));
        assert_eq!(Dialect::of("/v1.0"), Some(Dialect::Trove));
        assert_eq!(Dialect::of("/1.0/stackMysql"), Some(Dialect::Ovh));
        assert_eq!(Dialect::of("/api/3/stacks.json"), Some(Dialect::Cloud66));
        assert_eq!(Dialect::of("/v1/clusters"), None);
        assert_eq!(Dialect::of("/api/clusters/x/status"), None);
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
    }
}
