//! The revocation feed for offline kiosks.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{AppError, ErrorBody};
use crate::request::auth::{blocking, ClinicAuth};
use crate::request::State;
use crate::service::lookup;

#[derive(Deserialize, IntoParams)]
pub struct FeedQuery {
    /// The `next` of the previous answer; 0 or absent for the start.
    pub since: Option<String>,
    /// At most this many changes (default and maximum 1000).
    pub limit: Option<i64>,
    /// Also list reinstated cards (`status: active`), so an offline kiosk can
    /// unblock them. Off by default: the contract's feed lists only revoked,
    /// suspended and replaced cards.
    pub include_reinstated: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Change {
    pub card_id: Uuid,
    /// `revoked`, `suspended`, `replaced` (or `active` for a reinstated card, with `include_reinstated=true`)
    pub status: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// For a foreign card this node has verified (federation): its
    /// issuer's code; absent for this node's own cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Feed {
    pub revoked: Vec<Change>,
    /// Cursor for the next call.
    pub next: String,
}

/// Cards revoked, suspended, replaced (or reinstated) after the cursor.
#[utoipa::path(tag = "verify", params(FeedQuery),
    responses((status = 200, body = Feed), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("clinic" = [])))]
#[get("/api/v1/revocations")]
pub(crate) async fn feed(
    state: web::Data<State>,
    _clinic: ClinicAuth,
    q: web::Query<FeedQuery>,
) -> Result<HttpResponse, AppError> {
    let since = parse_cursor(q.since.as_deref())?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let reinstated = q.include_reinstated.unwrap_or(false);
    let ctx = state.ctx.clone();
    let (changes, next) = blocking(move || lookup::card_changes(&ctx, since, limit)).await?;
    Ok(HttpResponse::Ok().json(Feed {
        revoked: changes
            .into_iter()
            .filter(|c| reinstated || c.status != crate::domain::CardStatus::Active)
            .map(|c| Change {
                card_id: c.card_id.into(),
                status: c.status.as_str().to_string(),
                at: c.at.and_utc(),
                issuer: c.issuer,
            })
            .collect(),
        next: next.to_string(),
    }))
}

/// A feed cursor: the `next` of a previous answer, 0 or absent for the start.
pub fn parse_cursor(since: Option<&str>) -> Result<i64, AppError> {
    match since.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s.parse().ok().filter(|n: &i64| *n >= 0).ok_or_else(|| {
            AppError::invalid(
                "invalid_cursor",
                "since must be a cursor returned as `next`",
            )
        }),
    }
}
