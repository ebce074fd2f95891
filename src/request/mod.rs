//! What every HTTP adapter (the JSON API, the pages, FHIR) knows about a
//! request: who is asking (`auth`: a clinic's API key, an administrator's
//! session, a holder's credential), how often (`limits`), how it is counted
//! (`metrics`), how a path's id is read (`extract`), and the worker's
//! [`State`]. It sits below the adapters, so none of them imports another.

pub mod auth;
pub mod extract;
pub mod limits;
pub mod metrics;

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
