//! The HTTP API of API.md: authentication extractors, handlers by area,
//! JSON views, limits and metrics. Routes are wired in `crate::startup`.

pub mod auth;
pub mod extract;
pub mod handlers;
pub mod limits;
pub mod metrics;
pub mod views;

use crate::service::AppContext;

/// Shared state of every worker.
pub struct State {
    pub ctx: AppContext,
    pub limits: limits::Limits,
    pub metrics: metrics::Metrics,
    pub clinic_cache: auth::ClinicCache,
}

impl State {
    pub fn new(ctx: AppContext) -> State {
        State {
            limits: limits::Limits::new(&ctx.settings),
            metrics: metrics::Metrics::new(&ctx.counters),
            clinic_cache: auth::ClinicCache::default(),
            ctx,
        }
    }
}
