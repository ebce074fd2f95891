//! Operations: liveness, readiness, metrics, the OpenAPI document.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::request::auth::blocking;
use crate::request::State;
use crate::store;

/// Liveness: the process answers.
#[utoipa::path(tag = "ops", responses((status = 200, description = "alive")))]
#[get("/healthz")]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[utoipa::path(tag = "ops", responses((status = 200, description = "ready"), (status = 503, body = crate::error::ErrorBody)))]
#[get("/readyz")]
pub(crate) async fn readyz(
    state: web::Data<State>,
) -> Result<HttpResponse, crate::error::AppError> {
    let ctx = state.ctx.clone();
    blocking(move || store::ping(&mut *ctx.conn()?)).await?;
    let fed = state.ctx.federation.status();
    if !fed.federated {
        return Ok(HttpResponse::Ok().json(json!({"status": "ready"})));
    }
    // An expired list stops foreign cards only: the node stays ready for its own.
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "trust_list": fed})))
}

/// Prometheus text exposition.
#[utoipa::path(tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub(crate) async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            state
                .metrics
                .render(&state.ctx.pool, &state.ctx.federation.status()),
        )
}
