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
    /// Federation: the trust list's sequence, age and time to expiry.
    trust_list: IntGaugeVec,
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
        let trust_list = IntGaugeVec::new(
            Opts::new(
                "trust_list",
                "Federation trust list in use: sequence, age_seconds, expires_in_seconds, issuers (absent when not federated)",
            ),
            &["measure"],
        )
        .expect("valid metric");
        for c in [
            Box::new(trust_list.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(counters.verifications.clone()),
            Box::new(counters.identifications.clone()),
            Box::new(pool.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool,
            trust_list,
        }
    }

    /// The text exposition format.
    pub fn render(&self, pool: &DbPool, fed: &crate::service::federation::Status) -> String {
        if fed.federated {
            for (measure, value) in [
                ("sequence", fed.sequence.map(|s| s as i64)),
                ("age_seconds", fed.age_secs),
                ("expires_in_seconds", fed.expires_in_secs),
                ("issuers", Some(fed.issuers as i64)),
            ] {
                self.trust_list
                    .with_label_values(&[measure])
                    .set(value.unwrap_or(-1));
            }
        }
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

/// The method as a metrics label: one of the methods of RFC 9110 (and PATCH),
/// else `other`. Any token is a valid method on the wire, and each distinct
/// label is a series kept until restart, so a client must not choose them.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == m.as_str())
        .unwrap_or("other")
}

/// Middleware: counts every request by its route pattern (never the raw path,
/// which may hold identifiers, and `unmatched` when no route matched), its
/// method (from a fixed set) and status. Every label comes from a set fixed
/// by the code, so no request can add series.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method());
    let state = req.app_data::<web::Data<State>>().cloned();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let status = res.status().as_u16().to_string();
        state
            .metrics
            .requests
            .with_label_values(&[method, &route, &status])
            .inc();
        state
            .metrics
            .latency
            .with_label_values(&[&route])
            .observe(start.elapsed().as_secs_f64());
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn only_known_methods_become_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
        let long = Method::from_bytes("X".repeat(7000).as_bytes()).unwrap();
        assert_eq!(method_label(&long), "other");
    }
}
