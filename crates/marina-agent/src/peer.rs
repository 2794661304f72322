//! Copies streamed agent to agent (add-node and reseed between hosts): the
//! bytes go straight from the source's host to the target's, over mutual
//! TLS, not through the control plane.
//!
//! 1. The control plane asks the source's agent for an offer
//!    (`POST /v1/nodes/{id}/copy-offer`, epoch-fenced): a one-time ticket
//!    bound to the node, the copy's work entry and the one host allowed to
//!    pull it, valid `TICKET_TTL`.
//! 2. It hands the ticket to the target's agent (`POST
//!    /v1/nodes/{id}/copy-pull`, epoch-fenced), which calls the source's
//!    agent (`POST /v1/peer/copies/{ticket}`) with its own certificate,
//!    pinning the source's name, and installs what streams in the target's
//!    scratch entry.
//! 3. The source's agent serves a ticket once, and only to a certificate
//!    that names the host the ticket was made for: another agent, a reused
//!    or an expired ticket is refused (403) before anything is read.
//!
//! The peer route is the only one an agent serves to another agent; every
//! other route needs the control plane's certificate (`crate::server`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::data::GtidAnswer;
use crate::server::{AgentError, Fenced, node_id, parse};
use crate::tls::agent_name;

type Shared = Arc<crate::server::AgentState>;

/// How long an offered copy waits for its puller.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// At most this many offers wait at once (the oldest go first).
const MAX_TICKETS: usize = 64;
/// How long the pulling agent waits for the source's agent to connect,
/// and for the next bytes of the stream.
const PULL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PULL_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// What the control plane asks the source's agent to offer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyOfferBody {
    /// The copy tool's work entry.
    pub work: String,
    /// The only host whose agent may pull it.
    pub peer_host: String,
}

/// A one-time ticket for one pull.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyTicket {
    pub ticket: String,
}

/// What the control plane asks the target's agent to pull.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyPullBody {
    /// The target node's scratch entry the copy lands in.
    pub scratch: String,
    /// The source's host (its agent's certificate must name it).
    pub source_host: String,
    /// The source's agent, `https://address:port`.
    pub source_url: String,
    pub ticket: String,
}

/// What an offer gives to its one puller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub node: String,
    pub work: String,
    peer_host: String,
    expires: Instant,
}

/// Why a ticket was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, used or expired.
    NoSuchTicket,
    /// The caller's certificate does not name the host the offer is for.
    WrongPeer,
}

/// The offers waiting for their puller.
#[derive(Default)]
pub struct Tickets(Mutex<HashMap<String, Offer>>);

impl Tickets {
    /// A ticket for `peer_host` to pull a copy of `node`, valid `ttl`.
    pub fn offer(&self, node: &str, work: &str, peer_host: &str, ttl: Duration) -> String {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, o| o.expires > now);
        while map.len() >= MAX_TICKETS {
            let oldest = map.iter().min_by_key(|(_, o)| o.expires).map(|(t, _)| t.clone());
            match oldest {
                Some(t) => map.remove(&t),
                None => break,
            };
        }
        let ticket = marina_common::ids::random_secret(32);
        map.insert(
            ticket.clone(),
            Offer {
                node: node.into(),
                work: work.into(),
                peer_host: peer_host.into(),
                expires: now + ttl,
            },
        );
        ticket
    }

    /// The offer of `ticket` when `caller_is` holds for the host it was
    /// made for; it is then used up. A refused caller does not use it up.
    pub fn redeem(&self, ticket: &str, caller_is: impl Fn(&str) -> bool) -> Result<Offer, Refusal> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let offer = map.get(ticket).ok_or(Refusal::NoSuchTicket)?;
        if offer.expires <= Instant::now() {
            map.remove(ticket);
            return Err(Refusal::NoSuchTicket);
        }
        if !caller_is(&agent_name(&offer.peer_host)) {
            return Err(Refusal::WrongPeer);
        }
        map.remove(ticket).ok_or(Refusal::NoSuchTicket)
    }
}

/// A host id as a request may carry it (it becomes a certificate name).
fn host_id(id: &str) -> Result<(), AgentError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AgentError::invalid("a host id is 1 to 64 of a-z, 0-9 and _"))
    }
}

#[utoipa::path(post, path = "/v1/nodes/{id}/copy-offer", tag = "agent peer", params(crate::server::Epoch, ("id" = String, Path, description = "the running node to copy")), request_body = CopyOfferBody, responses((status = 200, body = CopyTicket), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch")))]
pub(crate) async fn copy_offer(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AgentError> {
    let node = node_id(id)?;
    let body: CopyOfferBody = parse(&body)?;
    host_id(&body.peer_host)?;
    let ticket = s.tickets.offer(&node, &body.work, &body.peer_host, TICKET_TTL);
    Ok(Json(CopyTicket { ticket }).into_response())
}

#[utoipa::path(post, path = "/v1/peer/copies/{ticket}", tag = "agent peer", params(("ticket" = String, Path, description = "from copy-offer")), responses((status = 200, content_type = "application/octet-stream", description = "the copy's mbstream bytes; a copy that fails ends the body early"), (status = 403, body = crate::wire::ErrorBody, description = "no such ticket (unknown, used, expired), or the caller's certificate is not the agent's it was offered to"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn serve_copy(
    State(s): State<Shared>,
    Path(ticket): Path<String>,
    cert: Option<axum::Extension<CertificateDer<'static>>>,
) -> Result<Response, AgentError> {
    let forbidden = |m: &str| AgentError::new(StatusCode::FORBIDDEN, "forbidden", m);
    let cert = cert.ok_or_else(|| forbidden("a client certificate is required"))?;
    let offer = s
        .tickets
        .redeem(&ticket, |name| s.callers.names(&cert.0, name))
        .map_err(|r| match r {
            Refusal::NoSuchTicket => forbidden("no such copy ticket (unknown, used or expired)"),
            Refusal::WrongPeer => forbidden("this copy was offered to another host"),
        })?;
    let stream = s.data.copy_out(&offer.node, &offer.work).await?;
    let mut response =
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(stream, 256 * 1024)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

#[utoipa::path(post, path = "/v1/nodes/{id}/copy-pull", tag = "agent peer", params(crate::server::Epoch, ("id" = String, Path, description = "the target node")), request_body = CopyPullBody, responses((status = 200, body = GtidAnswer), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody, description = "stale_epoch"), (status = 502, body = crate::wire::ErrorBody, description = "the source's agent refused or could not be reached"), (status = 500, body = crate::wire::ErrorBody)))]
pub(crate) async fn copy_pull(
    _: Fenced,
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AgentError> {
    let target = node_id(id)?;
    let body: CopyPullBody = parse(&body)?;
    host_id(&body.source_host)?;
    let base = body.source_url.trim_end_matches('/');
    if !base.starts_with("https://") || base.len() > 300 {
        return Err(AgentError::invalid("source_url is https://address:port"));
    }
    let peer = |m: String| AgentError::new(StatusCode::BAD_GATEWAY, "peer", m);
    let tls = s
        .identity
        .client_config(&body.source_host)
        .map_err(|e| AgentError::new(StatusCode::INTERNAL_SERVER_ERROR, "tls", e.to_string()))?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(PULL_CONNECT_TIMEOUT)
        .read_timeout(PULL_READ_TIMEOUT)
        .build()
        .map_err(|e| peer(format!("building the client: {e}")))?;
    let url = format!("{base}/v1/peer/copies/{}", body.ticket);
    let resp = http
        .post(&url)
        .send()
        .await
        .map_err(|e| peer(format!("reaching the source's agent {base}: {e}")))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(peer(format!(
            "the source's agent refused the copy ({status}): {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    let stream = resp.bytes_stream().map_err(std::io::Error::other);
    let reader = Box::new(tokio_util::io::StreamReader::new(stream));
    let gtid = s.data.copy_in(&target, &body.scratch, reader).await?;
    tracing::info!(%target, source_host = %body.source_host, %gtid, "copy pulled from another agent");
    Ok(Json(GtidAnswer { gtid }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_B: &str = "hs_bbbbbbbbbbbbbbbb";

    fn named(name: String) -> impl Fn(&str) -> bool {
        move |n| n == name
    }

    #[test]
    fn a_ticket_serves_once_and_only_the_host_it_names() {
        let t = Tickets::default();
        let ticket = t.offer("nd_a", "w.tmp", HOST_B, TICKET_TTL);
        assert!(ticket.len() >= 32, "{ticket}");
        assert_eq!(
            t.redeem(&ticket, named(agent_name("hs_cccccccccccccccc"))),
            Err(Refusal::WrongPeer)
        );
        assert_eq!(
            t.redeem(&ticket, named(crate::tls::CONTROL_PLANE_NAME.into())),
            Err(Refusal::WrongPeer)
        );
        let offer = t
            .redeem(&ticket, named(agent_name(HOST_B)))
            .expect("the named host pulls");
        assert_eq!((offer.node.as_str(), offer.work.as_str()), ("nd_a", "w.tmp"));
        assert_eq!(t.redeem(&ticket, named(agent_name(HOST_B))), Err(Refusal::NoSuchTicket));
        assert_eq!(t.redeem("guess", |_| true), Err(Refusal::NoSuchTicket));
    }

    #[test]
    fn tickets_expire_and_their_number_is_bounded() {
        let t = Tickets::default();
        let gone = t.offer("nd_a", "w", HOST_B, Duration::ZERO);
        assert_eq!(t.redeem(&gone, |_| true), Err(Refusal::NoSuchTicket));
        let first = t.offer("nd_a", "w", HOST_B, TICKET_TTL);
        let last: Vec<String> = (0..MAX_TICKETS)
            .map(|_| t.offer("nd_a", "w", HOST_B, TICKET_TTL))
            .collect();
        assert!(t.0.lock().unwrap().len() <= MAX_TICKETS);
        assert_eq!(
            t.redeem(&first, |_| true),
            Err(Refusal::NoSuchTicket),
            "the oldest went first"
        );
        assert!(t.redeem(&last[MAX_TICKETS - 1], |_| true).is_ok());
    }

    #[test]
    fn host_ids_that_stay_one_certificate_name() {
        assert!(host_id(HOST_B).is_ok());
        for bad in ["", "HS_X", "hs.x", "a/b", &"x".repeat(65)] {
            assert!(host_id(bad).is_err(), "{bad}");
        }
    }
}
