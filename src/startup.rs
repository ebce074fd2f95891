//! The application: every route, middleware and shared state wired in one
//! place. Tests bind port 0 and read the real port back.

use std::net::TcpListener;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{from_fn, DefaultHeaders, Next};
use actix_web::{web, App, HttpMessage, HttpResponse, HttpServer};
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::config::Settings;
use crate::error::ErrorBody;
use crate::http::handlers::{
    admin, cards, clinics, families, federation, holder, identify, keys, links, ops, residents,
    revocations, stats, temporary, verify,
};
use crate::request::{extract, metrics, State};
use crate::service::{AppContext, StartupReport};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "healthcard",
        description = "Unified electronic health card: signed EHC1 QR tokens and their verification."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("admin", "session token from POST /api/v1/admin/login"),
            (
                "clinic",
                "clinic API key (hck_…) with scopes verify, link, pii, xref, search",
            ),
            (
                "holder",
                "holder credential (hch_…) returned when a card is issued",
            ),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}

/// Request spans without the query string (it may hold an ID number) and
/// without client addresses: route pattern, method, status, request id.
pub struct QuietSpans;

impl RootSpanBuilder for QuietSpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|r| r.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "http",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(res) => res.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        span.record("status", status);
        // Successes are counted in /metrics; logging each one at info would
        // cost more than a verification at tens of thousands a second.
        if status >= 500 {
            tracing::warn!(parent: &span, status, "request failed");
        } else if status >= 400 {
            tracing::info!(parent: &span, status, "request refused");
        } else {
            tracing::debug!(parent: &span, status, "request done");
        }
    }
}

fn is_page(path: &str) -> bool {
    ["/admin", "/card", "/kiosk", "/static", "/assets"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// Makes sure every API error has the JSON body of API.md, including the
/// ones actix-web answers itself (unknown route, wrong method, payload errors).
async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    // The FHIR scope answers OperationOutcomes of its own (`crate::fhir`).
    let page = is_page(req.path()) || req.path() == "/fhir" || req.path().starts_with("/fhir/");
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if page || status.as_u16() < 400 || is_json {
        return Ok(res.map_into_left_body());
    }
    let (code, message) = match status.as_u16() {
        400 => ("bad_request", "the request could not be understood"),
        401 => ("unauthorized", "authentication required"),
        403 => ("forbidden", "not allowed"),
        404 => ("not_found", "no such route or resource"),
        405 => ("method_not_allowed", "this route does not take that method"),
        408 => ("request_timeout", "the request took too long"),
        413 => ("payload_too_large", "the request body is too large"),
        415 => (
            "unsupported_media_type",
            "send the body as application/json",
        ),
        431 => ("headers_too_large", "the request headers are too large"),
        503 => ("unavailable", "the service is unavailable"),
        s if s < 500 => ("bad_request", "the request could not be handled"),
        _ => ("internal_error", "internal error"),
    };
    let (req, _) = res.into_parts();
    let resp = HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ErrorBody {
            code: code.into(),
            message: message.into(),
        });
    Ok(ServiceResponse::new(req, resp).map_into_right_body())
}

/// `Strict-Transport-Security` on every answer to an HTTPS client (our own
/// TLS, or a trusted proxy's `X-Forwarded-Proto: https`), so the browser uses
/// HTTPS only from then on. Not over plain HTTP: RFC 6797 (section 7.2) says
/// a host must not send it there, and a local `http://127.0.0.1` would be
/// unreachable for a year after.
async fn hsts(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = crate::proxy::client(req.request()).https;
    let mut res = next.call(req).await?;
    if https {
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(res)
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody {
        code: "not_found".into(),
        message: "no such route or resource".into(),
    })
}

/// Every route of API.md plus the web pages, on one `App`.
pub fn app(
    state: web::Data<State>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .app_data(state.clone())
        .app_data(extract::json_config())
        .app_data(extract::path_config())
        .app_data(extract::query_config())
        .app_data(extract::form_config())
        .app_data(web::PayloadConfig::new(extract::JSON_LIMIT))
        .service(admin::login)
        .service(admin::logout)
        .service(residents::register)
        .service(residents::search)
        .service(residents::add_document)
        .service(residents::merge)
        .service(residents::find)
        .service(residents::get)
        .service(cards::issue)
        .service(cards::get)
        .service(cards::suspend)
        .service(cards::reinstate)
        .service(cards::revoke)
        .service(cards::reissue)
        .service(cards::mint)
        .service(cards::qr_svg)
        .service(cards::qr_png)
        .service(cards::card_links)
        .service(cards::card_access_log)
        .service(holder::tokens)
        .service(holder::qr_svg)
        .service(holder::qr_png)
        .service(holder::access)
        .service(families::holder_cards)
        .service(families::add)
        .service(families::remove)
        .service(verify::verify)
        .service(identify::identify)
        .service(temporary::issue)
        .service(links::create)
        .service(links::find)
        .service(revocations::feed)
        .service(clinics::create)
        .service(clinics::list)
        .service(clinics::keys)
        .service(clinics::add_key)
        .service(clinics::revoke_key)
        .service(keys::jwks)
        .service(keys::list)
        .service(keys::rotate)
        .service(keys::revoke)
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(stats::card_use)
        .service(federation::trust_list)
        .service(federation::resolve)
        .service(federation::revocations)
        .split_for_parts();
    let api = web::Data::new(mark_deprecated(api));
    let proxies = web::Data::new(state.ctx.settings.trusted_proxies.clone());
    app.app_data(api)
        .app_data(proxies)
        .route("/openapi.json", web::get().to(openapi))
        .configure(crate::web::routes)
        .configure(crate::fhir::routes)
        .default_service(web::to(not_found))
        .wrap(from_fn(json_errors))
        .wrap(from_fn(hsts))
        .wrap(from_fn(metrics::track))
        .wrap(
            DefaultHeaders::new()
                .add((
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .add((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
                .add((
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                // API answers hold personal data unless a handler says otherwise (JWKS does).
                .add((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .add((
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
                )),
        )
        .wrap(TracingLogger::<QuietSpans>::new())
}

/// Routes kept for old clients but not to be used by new ones (docs/api.md).
/// Marked here: utoipa reads `deprecated` only from Rust's own attribute,
/// which would also warn at every use of the handler.
fn mark_deprecated(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    // The full ID number in a URL; POST /api/v1/residents/search replaces it.
    if let Some(op) = api
        .paths
        .paths
        .get_mut("/api/v1/residents")
        .and_then(|p| p.get.as_mut())
    {
        op.deprecated = Some(utoipa::openapi::Deprecated::True);
    }
    api
}

/// The OpenAPI 3 document, generated from the handlers' annotations.
async fn openapi(api: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(api.get_ref())
}

/// A bound, not yet running server.
pub struct Application {
    addr: std::net::SocketAddr,
    server: Server,
    pub context: AppContext,
    pub report: StartupReport,
}

impl Application {
    /// Opens the database and keys, binds the listener.
    pub fn build(settings: Settings) -> anyhow::Result<Application> {
        let bind = settings.bind.clone();
        let refresh = std::time::Duration::from_secs(settings.key_refresh_secs.max(1));
        let (context, report) = AppContext::open(settings)?;
        context.keys.spawn_refresh(refresh);
        crate::service::federation::spawn_refresh(context.clone());
        let state = web::Data::new(State::new(context.clone()));
        spawn_housekeeping(state.clone());
        let listener = TcpListener::bind(&bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        let addr = listener.local_addr()?;
        let server = HttpServer::new(move || app(state.clone()))
            .listen(listener)?
            .shutdown_timeout(10)
            .run();
        Ok(Application {
            addr,
            server,
            context,
            report,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the listener really bound (port 0 resolved).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Purges expired replay entries, sessions and kiosk sessions, sign-in
/// failures older than `service::admins::FAILURE_MEMORY`, and idle
/// rate-limit keys, and rolls up settled days of card use, once a minute.
fn spawn_housekeeping(state: web::Data<State>) {
    std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
            state.limits.housekeeping();
            let now = chrono::Utc::now().naive_utc();
            crate::service::housekeeping::purge(&state.ctx, now);
            crate::service::housekeeping::settle_card_use(&state.ctx, now);
        })
        .expect("spawning a thread at start-up");
}
