//! Prometheus metrics: requests by route and status, latency, verification
//! outcomes by reason and channel, and database pool use.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::service::verification::Counters;
use crate::store::DbPool;

use super::State;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
}

impl Metrics {
    /// The request metrics, exported beside the service's verification counters.
    pub fn new(counters: &Counters) -> Metrics {
        let registry = Registry::new_custom(Some("healthcard".into()), None)
            .expect("a constant, valid prefix");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
            &["route"],
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(counters.verifications.clone()),
            Box::new(pool.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool,
        }
    }

    /// The text exposition format.
    pub fn render(&self, pool: &DbPool) -> String {
        let st = pool.state();
        let idle = st.idle_connections as i64;
        self.pool.with_label_values(&["idle"]).set(idle);
        self.pool
            .with_label_values(&["in_use"])
            .set(st.connections as i64 - idle);
        self.pool
            .with_label_values(&["max"])
            .set(pool.max_size() as i64);
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Middleware: counts every request by its route pattern (never the raw path,
/// which may hold identifiers) and status.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let state = req.app_data::<web::Data<State>>().cloned();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let status = res.status().as_u16().to_string();
        state
            .metrics
            .requests
            .with_label_values(&[&method, &route, &status])
            .inc();
        state
            .metrics
            .latency
            .with_label_values(&[&route])
            .observe(start.elapsed().as_secs_f64());
    }
    Ok(res)
}
