//! `GET /api/v1/stats/card-use`: the card-use monitoring figures for the
//! card office, as JSON rows or (`Accept: text/csv`) CSV with the national
//! codes, for the monitoring report.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::domain::{Grouping, Period};
use crate::error::{AppError, ErrorBody};
use crate::http::views::CardUseReportView;
use crate::request::auth::{blocking, AdminAuth};
use crate::request::State;
use crate::service::monitoring::{self, CardUseReport};

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct CardUseQuery {
    /// First monitoring day (China Standard Time), `YYYY-MM-DD`, included.
    pub from: Option<String>,
    /// Last monitoring day, `YYYY-MM-DD`, included; at most 366 days after `from` counted inclusively.
    pub to: Option<String>,
    /// Comma-separated subset of `day,clinic,channel,step,outcome`; none: one total.
    pub by: Option<String>,
}

/// Whether the client asked for CSV.
fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().map(str::trim) == Some("text/csv"))
}

/// The report as the client asked for it.
pub fn answer(report: &CardUseReport, csv: bool) -> HttpResponse {
    if csv {
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8; header=present")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(report.to_csv())
    } else {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(CardUseReportView::from(report))
    }
}

/// Card uses in a period grouped by any of day, clinic, channel, step and outcome.
#[utoipa::path(tag = "ops", params(CardUseQuery),
    responses(
        (status = 200, body = CardUseReportView, description = "JSON, or CSV with `Accept: text/csv`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_date, invalid_period, period_too_long or invalid_group_by")),
    security(("admin" = [])))]
#[get("/api/v1/stats/card-use")]
pub(crate) async fn card_use(
    req: HttpRequest,
    state: web::Data<State>,
    _admin: AdminAuth,
    q: web::Query<CardUseQuery>,
) -> Result<HttpResponse, AppError> {
    let period = Period::parse(
        q.from.as_deref().unwrap_or_default(),
        q.to.as_deref().unwrap_or_default(),
    )?;
    let by = Grouping::parse(q.by.as_deref().unwrap_or_default())?;
    let ctx = state.ctx.clone();
    let report = blocking(move || monitoring::card_use(&mut *ctx.conn()?, period, by)).await?;
    Ok(answer(&report, wants_csv(&req)))
}
