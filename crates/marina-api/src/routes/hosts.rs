//! Hosts: the machines nodes run on (operator's tenant only): list, show,
//! cordon, uncordon, drain.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use marina_common::model::{CreateJoinTokenInput, JoinHostInput, Scope};
use marina_core::Marina;

use marina_common::Error;
use marina_core::auth::AuthContext;

use crate::error::ApiResult;
use crate::extract::{Auth, Json};
use crate::views::*;

/// Every host with its nodes and memory (the operator's tenant only).
#[utoipa::path(get, path = "/v1/hosts", tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = HostList), (status = 403, body = ErrorBody)))]
pub async fn list(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<axum::Json<HostList>> {
    app.require_operator(&auth, Scope::Read, "list hosts").await?;
    let data = app.list_hosts().await?.into_iter().map(HostView::from).collect();
    Ok(axum::Json(HostList::new(data, None)))
}

/// One host (the operator's tenant only).
#[utoipa::path(get, path = "/v1/hosts/{host_id}", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    operator_on_host(&app, &auth, Scope::Read, &id).await?;
    Ok(axum::Json(HostView::from(app.get_host(&id).await?)))
}

/// Cordons a host: it keeps its nodes and takes no new one.
#[utoipa::path(post, path = "/v1/hosts/{host_id}/cordon", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn cordon(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    operator_on_host(&app, &auth, Scope::Admin, &id).await?;
    Ok(axum::Json(HostView::from(app.cordon_host(&id).await?)))
}

/// Uncordons a host: it takes new nodes again.
#[utoipa::path(post, path = "/v1/hosts/{host_id}/uncordon", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn uncordon(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    operator_on_host(&app, &auth, Scope::Admin, &id).await?;
    Ok(axum::Json(HostView::from(app.uncordon_host(&id).await?)))
}

/// Drains a host: it takes no new node and its nodes move to other hosts
/// (a host with nodes is refused until another host can take them).
#[utoipa::path(post, path = "/v1/hosts/{host_id}/drain", tag = "hosts", security(("bearer" = [])),
    params(("host_id" = String, Path)),
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn drain(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HostView>> {
    operator_on_host(&app, &auth, Scope::Admin, &id).await?;
    Ok(axum::Json(HostView::from(app.drain_host(&id).await?)))
}

/// A one-time token a host agent joins with; its secret is in this answer
/// only (the operator's tenant, admin scope).
#[utoipa::path(post, path = "/v1/hosts/join-tokens", tag = "hosts", security(("bearer" = [])),
    request_body = CreateJoinTokenInput,
    responses((status = 201, body = JoinTokenCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_join_token(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Json(input): Json<CreateJoinTokenInput>,
) -> ApiResult<(StatusCode, axum::Json<JoinTokenCreated>)> {
    app.require_operator(&auth, Scope::Admin, "create join tokens").await?;
    let (token, secret) = app.create_join_token(input).await?;
    Ok((StatusCode::CREATED, axum::Json(JoinTokenCreated { token, secret })))
}

/// A host agent joins (`marina agent --join`): the join token in the body
/// is its credential; it gets its host record, a certificate for its public
/// key and the CA certificate. The host starts `cordoned`.
#[utoipa::path(post, path = "/v1/hosts/join", tag = "hosts", request_body = JoinHostInput,
    responses((status = 201, body = HostJoined), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn join(
    State(app): State<Arc<Marina>>,
    Json(input): Json<JoinHostInput>,
) -> ApiResult<(StatusCode, axum::Json<HostJoined>)> {
    let j = app.join_host(input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(HostJoined {
            host: j.host,
            certificate_pem: j.certificate_pem,
            ca_pem: j.ca_pem,
        }),
    ))
}

/// A host exists only for the operator's tenant: another tenant gets 404
/// for it, as for anything not its own; the operator's token needs `scope`.
async fn operator_on_host(app: &Marina, auth: &AuthContext, scope: Scope, id: &str) -> Result<(), Error> {
    auth.require(scope)?;
    app.require_operator(auth, scope, "manage hosts")
        .await
        .map_err(|_| Error::not_found("host", id))
}
