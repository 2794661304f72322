//! Extractors: a JSON body and a query string whose rejections use the contract's
//! error body (400 / 415), and `Auth`, which turns the bearer secret into the
//! caller's tenant and scopes (401 otherwise).

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use marina_common::Error;
use marina_core::Marina;
use marina_core::auth::AuthContext;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError(Error::UnsupportedMediaType(
                "the body must be JSON with Content-Type: application/json".into(),
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError(Error::InvalidRequest(format!(
                "invalid request body: {}",
                e.body_text()
                    .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
            )))),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError(Error::InvalidRequest(format!(
                "the body is not valid JSON: {}",
                e.body_text()
                    .trim_start_matches("Failed to parse the request body as JSON: ")
            )))),
            Err(other) if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError(Error::PayloadTooLarge(format!(
                    "the request body is larger than {} bytes",
                    crate::server::BODY_LIMIT
                ))))
            }
            Err(other) => Err(ApiError(Error::InvalidRequest(format!(
                "cannot read the request body: {}",
                other.body_text()
            )))),
        }
    }
}

/// The whole body (at most `BODY_LIMIT`; 413 `payload_too_large` above).
pub async fn body_bytes(body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, crate::server::BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError(Error::PayloadTooLarge(format!(
                "the request body is larger than {} bytes",
                crate::server::BODY_LIMIT
            )))
        })
}

/// A JSON body that may be absent (an empty body means `T::default()`).
pub struct JsonOrEmpty<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrEmpty<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = body_bytes(body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        Json::<T>::from_request(req, state).await.map(|Json(v)| JsonOrEmpty(v))
    }
}

/// A body sent as a form (`curl -d key=value`) or as JSON, told apart by its
/// `Content-Type` (a form when it is not JSON).
pub struct FormOrJson<T>(pub T);

impl<S, T> FromRequest<S> for FormOrJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            return Json::<T>::from_request(req, state).await.map(|Json(v)| FormOrJson(v));
        }
        let bytes = body_bytes(req.into_body()).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormOrJson)
            .map_err(|e| ApiError(Error::InvalidRequest(format!("invalid form body: {e}"))))
    }
}

/// Query-string parameters.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e: QueryRejection| {
                ApiError(Error::InvalidRequest(format!(
                    "invalid query string: {}",
                    e.body_text()
                )))
            })
    }
}

/// The authenticated caller.
pub struct Auth(pub AuthContext);

/// The secret a request carries: `Authorization: Bearer …` or `X-Auth-Token`.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let x_auth = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::trim);
    bearer.or(x_auth).filter(|s| !s.is_empty())
}

/// `Authorization: Basic base64(token_id:secret)` (MedStack's form): the
/// token id and the secret.
pub fn basic(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?
        .trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (key, value) = text.split_once(':')?;
    Some((key.to_string(), value.to_string()))
}

/// Authenticates a request's bearer token, `X-Auth-Token`, or Basic
/// credentials (whose user part must be the token's id).
async fn authenticate(app: &Marina, headers: &axum::http::HeaderMap) -> Result<marina_core::auth::AuthContext, Error> {
    if let Some(secret) = bearer(headers) {
        return app.authenticate(Some(secret)).await;
    }
    match basic(headers) {
        Some((key, secret)) => {
            let a = app.authenticate(Some(&secret)).await?;
            if a.token_id != key {
                return Err(Error::Unauthenticated(
                    "the token key does not match the token value".into(),
                ));
            }
            Ok(a)
        }
        None => app.authenticate(None).await,
    }
}

impl FromRequestParts<Arc<Marina>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<Marina>) -> Result<Self, Self::Rejection> {
        match authenticate(app, &parts.headers).await {
            Ok(a) => {
                if let Some(slot) = parts.extensions.get::<crate::audit::AuditSlot>() {
                    slot.set(&a);
                }
                Ok(Auth(a))
            }
            // A 401 is counted and logged by `observe::count`.
            Err(e) => Err(e.into()),
        }
    }
}

/// A seed API's path names the tenant (MedStack's company, Trove's
/// `tenant_id`): it must be the token's, else 404 `kind`, as for any other
/// tenant's resource.
pub fn own_tenant(auth: &AuthContext, kind: &'static str, id: &str) -> Result<(), Error> {
    if auth.tenant_id == id {
        Ok(())
    } else {
        Err(Error::not_found(kind, id))
    }
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Default page size.
pub const LIMIT_DEFAULT: u32 = 50;
/// Largest page size.
pub const LIMIT_MAX: u32 = 500;

impl ListParams {
    /// Validated page request.
    pub fn page(&self) -> Result<marina_store::PageRequest<'_>, ApiError> {
        let limit = self.limit.unwrap_or(LIMIT_DEFAULT);
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(ApiError(Error::InvalidRequest(format!(
                "limit must be between 1 and {LIMIT_MAX}"
            ))));
        }
        if let Some(c) = &self.cursor
            && c.parse::<u64>().is_err()
        {
            return Err(ApiError(Error::InvalidRequest(
                "cursor is not one this server issued".into(),
            )));
        }
        Ok(marina_store::PageRequest {
            limit,
            cursor: self.cursor.as_deref(),
        })
    }
}
