//! Federation routes (issue 18): the trust list this node uses, and the two
//! node-to-node routes a visiting node calls on a card's home node, each
//! request signed with the caller's node key (RFC 9421, see
//! `service::federation`).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{AppError, ErrorBody};
use crate::request::State;
use crate::service::federation::{self as fed, SignedRequest};
use crate::token::message_signature as msig;

/// The compact JWS trust list this node uses (as the operator signed it).
#[utoipa::path(tag = "federation",
    responses((status = 200, content_type = "application/jose", body = String, description = "the compact JWS"),
        (status = 404, body = ErrorBody, description = "`no_trust_list`: not federated, or no list yet")))]
#[get("/.well-known/healthcard-trust-list")]
pub(crate) async fn trust_list(state: web::Data<State>) -> Result<HttpResponse, AppError> {
    let list = state
        .ctx
        .federation
        .list()
        .ok_or_else(|| AppError::NotFoundCode {
            code: "no_trust_list",
            message: "this node holds no trust list".into(),
        })?;
    Ok(HttpResponse::Ok()
        .content_type("application/jose")
        .insert_header(("Cache-Control", "public, max-age=60"))
        .body(list.jws.clone()))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The request's signature checked on the worker (CPU only); a nonce this
/// node accepted within its lifetime is refused at once (a replay must not
/// spend the real peer's rate nor cost a batch rollback); then the peer's
/// rate limit. The nonce is spent in the database by what the request
/// does, which stays the authority across the city's nodes.
fn authenticate(
    state: &web::Data<State>,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(fed::Peer, fed::Nonce), AppError> {
    let (peer, nonce) = fed::authenticate(
        &state.ctx,
        &SignedRequest {
            method: req.method().as_str(),
            path: req.path(),
            query: req.query_string(),
            body,
            content_digest: header(req, msig::CONTENT_DIGEST),
            signature_input: header(req, msig::SIGNATURE_INPUT),
            signature: header(req, msig::SIGNATURE),
        },
    )?;
    let federation = &state.ctx.federation;
    if federation.nonce_seen(&nonce) {
        return Err(fed::FederationError::Replayed.into());
    }
    state.limits.peer_rate(&peer.node_kid)?;
    if !federation.remember_nonce(&nonce) {
        return Err(fed::FederationError::Replayed.into());
    }
    Ok((peer, nonce))
}

/// A peer node asks this (home) node to judge one of its cards for one of
/// the peer's clinics: the answer a clinic without `pii` would get.
#[utoipa::path(tag = "federation",
    request_body(content = String, content_type = "application/json", description = "`{token, clinic: {code, name}, channel?, step?}`, signed (RFC 9421)"),
    responses((status = 200, description = "`{valid, reason?, card_id?, resident?}`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "unsigned, stale, replayed or badly signed; `unknown_node`: not a node key of the trust list"),
        (status = 429, body = ErrorBody, description = "`rate_limited`: this peer node key's rate (HEALTHCARD_FEDERATION_PEER_RATE_PER_SEC) is spent"),
        (status = 503, body = ErrorBody, description = "`trust_list_expired`")))]
#[post("/federation/v1/resolve")]
pub(crate) async fn resolve(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (peer, nonce) = authenticate(&state, &req, &body)?;
    let answer = fed::resolve_for_peer(&state.ctx, peer, nonce, &body).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

#[derive(Deserialize, IntoParams)]
pub struct PeerFeedQuery {
    /// The `next` of the previous answer; 0 or absent for the start.
    pub since: Option<String>,
}

/// A peer node reads this node's card changes (revoked, suspended,
/// replaced, reinstated) after a cursor.
#[utoipa::path(tag = "federation", params(PeerFeedQuery),
    responses((status = 200, description = "`{revoked: [{card_id, status, at}], next}`"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "`rate_limited`")))]
#[get("/federation/v1/revocations")]
pub(crate) async fn revocations(
    state: web::Data<State>,
    req: HttpRequest,
    q: web::Query<PeerFeedQuery>,
) -> Result<HttpResponse, AppError> {
    let (_, nonce) = authenticate(&state, &req, b"")?;
    let since = super::revocations::parse_cursor(q.since.as_deref())?;
    let ctx = state.ctx.clone();
    let feed = web::block(move || {
        fed::spend_nonce(&ctx, &nonce)?;
        fed::own_changes(&ctx, since, 1000).map_err(fed::FederationError::from)
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    Ok(HttpResponse::Ok().json(feed))
}
