//! Maps Marina's error enum to HTTP — the only place that knows status codes —
//! and renders the contract's error body with the request's id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use marina_common::Error;

use crate::views::{ErrorBody, ErrorDetail};

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// The current request's id, or `-` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(|id| id.clone()).unwrap_or_else(|_| "-".into())
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl From<marina_store::StoreError> for ApiError {
    fn from(e: marina_store::StoreError) -> Self {
        ApiError(e.into())
    }
}

/// The HTTP status of each error.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::CapacityExceeded(_) | Error::QuotaExceeded(_) => StatusCode::CONFLICT,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let request_id = current_request_id();
        let body_message = self.0.public_message();
        if status.is_server_error() {
            tracing::error!(%request_id, error = %self.0, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.0.code().into(),
                message: body_message.clone(),
                request_id,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(crate::dialect::ErrorInfo {
            code: self.0.code(),
            message: body_message,
            missing: match &self.0 {
                Error::NotFound { kind, .. } => Some(*kind),
                _ => None,
            },
        });
        if let Error::RateLimited { retry_after_secs } = self.0
            && let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
