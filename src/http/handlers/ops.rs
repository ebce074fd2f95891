//! Operations: liveness, readiness, metrics, the OpenAPI document.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::http::auth::blocking;
use crate::http::State;
use crate::store;

/// Liveness: the process answers.
#[utoipa::path(tag = "ops", responses((status = 200, description = "alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[utoipa::path(tag = "ops", responses((status = 200, description = "ready"), (status = 503, body = crate::error::ErrorBody)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<State>) -> Result<HttpResponse, crate::error::AppError> {
    let ctx = state.ctx.clone();
    blocking(move || store::ping(&mut *ctx.conn()?)).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// Prometheus text exposition.
#[utoipa::path(tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&state.ctx.pool))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: chrono::NaiveDate,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: chrono::NaiveDate,
}

/// Card-use figures: verifications by clinic and channel over whole UTC days.
#[utoipa::path(tag = "ops", params(UsageQuery),
    responses((status = 200, body = Vec<crate::service::usage::UsageRow>), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("admin" = [])))]
#[get("/api/v1/stats/card-use")]
pub async fn card_use(
    state: web::Data<State>,
    _admin: crate::http::auth::AdminAuth,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, crate::error::AppError> {
    if q.to < q.from || (q.to - q.from).num_days() > 366 {
        return Err(crate::error::AppError::invalid(
            "invalid_period",
            "`to` must be on or after `from`, at most 366 days later",
        ));
    }
    let bad_period =
        || crate::error::AppError::invalid("invalid_period", "the dates are out of range");
    let from = q.from.and_hms_opt(0, 0, 0).ok_or_else(bad_period)?;
    let to =
        q.to.checked_add_days(chrono::Days::new(1))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(bad_period)?;
    let ctx = state.ctx.clone();
    let rows =
        blocking(move || crate::service::usage::card_use(&mut *ctx.conn()?, from, to)).await?;
    Ok(HttpResponse::Ok().json(rows))
}
