//! The FHIR R4 facade (issue 16) under `/fhir`: Patient read and PDQm search
//! (ITI-78), PIXm cross-reference (`$ihe-pix`, ITI-83) and feed (ITI-104),
//! and `$resolve-card`, the FHIR form of `/api/v1/verify`. A thin adapter:
//! it parses FHIR requests, calls `service`, and renders resources; what a
//! clinic may see is decided in `service::patients`. JSON only; XML is 406.

mod error;
mod resources;

use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

pub use error::FhirError;

use crate::domain::{MobileNumber, ResidentId, Scope, Sex, SystemValue};
use crate::error::AppError;
use crate::request::auth::ClinicAuth;
use crate::request::State;
use crate::service::patients::{self, Feed, NameFilter, Search};
use crate::service::verification::{self, Outcome};
use crate::store::clinics::Clinic;

/// The content type of every answer.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Wires `/fhir`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/fhir")
            .wrap(from_fn(guard))
            .route("/metadata", web::get().to(metadata))
            .route(
                "/OperationDefinition/resolve-card",
                web::get().to(resolve_card_definition),
            )
            .service(
                web::resource("/Patient/$ihe-pix")
                    .route(web::get().to(pix_get))
                    .route(web::post().to(pix_post)),
            )
            .service(web::resource("/Patient/$resolve-card").route(web::post().to(resolve_card)))
            .service(web::resource("/Patient/{id}").route(web::get().to(read)))
            .service(
                web::resource("/Patient")
                    .route(web::get().to(search))
                    .route(web::put().to(feed))
                    .route(web::delete().to(unlink)),
            )
            // An empty 404; `guard` makes it an OperationOutcome.
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() })),
    );
}

fn wants_xml(req: &ServiceRequest) -> bool {
    let format = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.0)
        .unwrap_or_default();
    let json_ok = |v: &str| {
        let v = v.trim().to_ascii_lowercase();
        ["json", "application/json", "application/fhir+json"]
            .iter()
            .any(|j| v == *j || v.starts_with(&format!("{j};")))
    };
    if let Some((_, f)) = format.iter().find(|(k, _)| k == "_format") {
        return !json_ok(f);
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let types: Vec<String> = accept
        .split(',')
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect();
    !types.is_empty()
        && types.iter().any(|t| t.contains("xml"))
        && !types
            .iter()
            .any(|t| json_ok(t) || t == "*/*" || t == "application/*")
}

/// XML is refused before the handler runs; every error that is not already
/// an OperationOutcome (unknown route, wrong method, body too large)
/// becomes one.
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    if wants_xml(&req) {
        let (r, _) = req.into_parts();
        let resp = FhirError::NotAcceptable.error_response();
        return Ok(ServiceResponse::new(r, resp).map_into_right_body());
    }
    let res = next.call(req).await?;
    let status = res.status();
    let is_fhir = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+json"));
    if status.as_u16() < 400 || is_fhir {
        return Ok(res.map_into_left_body());
    }
    let (issue, code, text) = match status.as_u16() {
        400 => (
            "invalid",
            "bad_request",
            "the request could not be understood",
        ),
        401 => ("login", "unauthorized", "authentication required"),
        403 => ("forbidden", "forbidden", "not allowed"),
        404 => ("not-found", "not_found", "no such route or resource"),
        405 => (
            "not-supported",
            "method_not_allowed",
            "this route does not take that method",
        ),
        413 => (
            "too-long",
            "payload_too_large",
            "the request body is too large",
        ),
        429 => ("throttled", "rate_limited", "too many requests"),
        503 => ("transient", "unavailable", "the service is unavailable"),
        s if s < 500 => ("invalid", "bad_request", "the request could not be handled"),
        _ => ("exception", "internal_error", "internal error"),
    };
    let severity = if status.is_server_error() {
        "fatal"
    } else {
        "error"
    };
    let (req, _) = res.into_parts();
    let resp = HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type(FHIR_JSON)
        .body(error::outcome(severity, issue, code, text).to_string());
    Ok(ServiceResponse::new(req, resp).map_into_right_body())
}

fn ok(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type(FHIR_JSON)
        .body(body.to_string())
}

fn state(req: &HttpRequest) -> Result<web::Data<State>, FhirError> {
    req.app_data::<web::Data<State>>()
        .cloned()
        .ok_or_else(|| FhirError::App(AppError::Internal("application state missing".into())))
}

/// The calling clinic, holding `scope`.
async fn clinic(req: &HttpRequest, scope: Scope) -> Result<Arc<Clinic>, FhirError> {
    let auth = ClinicAuth::from_request(req, &mut Payload::None).await?;
    auth.require(scope)?;
    Ok(auth.0)
}

/// Runs a blocking use case off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, patients::PatientError> + Send + 'static,
) -> Result<T, FhirError> {
    match web::block(f).await {
        Ok(r) => r.map_err(FhirError::from),
        Err(_) => Err(FhirError::App(AppError::Unavailable)),
    }
}

fn query(req: &HttpRequest) -> Result<Vec<(String, String)>, FhirError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.0)
        .map_err(|_| FhirError::bad_request("bad_query", "the query string could not be read"))
}

/// This server's FHIR base: the configured public URL, else the scheme and
/// host the client used (forwarded ones only from trusted proxies).
fn base_url(req: &HttpRequest) -> String {
    if let Some(url) = req
        .app_data::<web::Data<State>>()
        .and_then(|st| st.ctx.settings.public_url.clone())
    {
        return format!("{}/fhir", url.trim_end_matches('/'));
    }
    let c = crate::proxy::client(req);
    let scheme = if c.https { "https" } else { "http" };
    format!(
        "{scheme}://{}/fhir",
        c.host.as_deref().unwrap_or("localhost")
    )
}

fn token(text: &str) -> Result<SystemValue, FhirError> {
    SystemValue::parse(text).map_err(|_| {
        FhirError::bad_request(
            "invalid_identifier",
            "an identifier is system|value, both parts given",
        )
    })
}

async fn metadata(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    let resolve = format!("{}/OperationDefinition/resolve-card", base_url(&req));
    Ok(ok(
        StatusCode::OK,
        &resources::capability_statement(&resolve),
    ))
}

async fn resolve_card_definition(req: HttpRequest) -> HttpResponse {
    let url = format!("{}/OperationDefinition/resolve-card", base_url(&req));
    ok(StatusCode::OK, &resources::resolve_card_definition(&url))
}

async fn read(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, FhirError> {
    let clinic = clinic(&req, Scope::Verify).await?;
    let st = state(&req)?;
    // An id that is no resident id names no one.
    let id: ResidentId = path
        .into_inner()
        .parse()
        .map_err(|_| FhirError::Patient(patients::PatientError::NotFound))?;
    let ctx = st.ctx.clone();
    let rec = blocking(move || patients::read(&ctx, &clinic, id)).await?;
    Ok(ok(
        StatusCode::OK,
        &resources::patient(&patients::systems(&st.ctx), &rec),
    ))
}

fn parse_search(params: &[(String, String)]) -> Result<Search, FhirError> {
    let mut s = Search::default();
    for (k, v) in params {
        let (name, modifier) = k.split_once(':').unwrap_or((k.as_str(), ""));
        let exact = match modifier {
            "" => false,
            "exact" if matches!(name, "family" | "given") => true,
            _ => {
                return Err(FhirError::bad_request(
                    "unsupported_parameter",
                    format!("unsupported search modifier on {name}"),
                ))
            }
        };
        let v = v.trim();
        match name {
            "identifier" => s.identifiers.push(token(v)?),
            "family" | "given" if v.is_empty() || v.chars().count() > 64 => {
                return Err(FhirError::bad_request(
                    "invalid_name",
                    "a name is 1-64 characters",
                ))
            }
            "family" => s.family.push(NameFilter {
                value: v.into(),
                exact,
            }),
            "given" => s.given.push(NameFilter {
                value: v.into(),
                exact,
            }),
            "gender" => {
                s.gender = Some(match v {
                    "male" => Sex::Male,
                    "female" => Sex::Female,
                    _ => {
                        return Err(FhirError::bad_request(
                            "invalid_gender",
                            "gender is male or female",
                        ))
                    }
                })
            }
            "birthdate" => {
                let d = v.strip_prefix("eq").unwrap_or(v);
                s.birth_date = Some(chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(
                    |_| {
                        FhirError::bad_request(
                            "invalid_birthdate",
                            "birthdate is a whole date, YYYY-MM-DD (eq only)",
                        )
                    },
                )?)
            }
            "telecom" => {
                let number = v.split_once('|').map(|(_, n)| n).unwrap_or(v);
                s.telecom = Some(MobileNumber::parse(number).map_err(|_| {
                    FhirError::bad_request("invalid_telecom", "telecom is a mobile number")
                })?)
            }
            "active" => {
                s.active = Some(match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(FhirError::bad_request(
                            "invalid_active",
                            "active is true or false",
                        ))
                    }
                })
            }
            "_count" => {
                s.count = Some(v.parse().map_err(|_| {
                    FhirError::bad_request("invalid_count", "_count is a whole number")
                })?)
            }
            "_format" => {}
            other => {
                return Err(FhirError::bad_request(
                    "unsupported_parameter",
                    format!("unsupported search parameter {other}"),
                ))
            }
        }
    }
    Ok(s)
}

async fn search(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    let clinic = clinic(&req, Scope::Verify).await?;
    let st = state(&req)?;
    let query = parse_search(&query(&req)?)?;
    let ctx = st.ctx.clone();
    let found = blocking(move || patients::search(&ctx, &clinic, &query)).await?;
    let systems = patients::systems(&st.ctx);
    let base = base_url(&req);
    let self_url = format!("{base}/Patient?{}", req.query_string());
    let entries = found
        .iter()
        .map(|r| resources::patient(&systems, r))
        .collect();
    Ok(ok(
        StatusCode::OK,
        &resources::searchset(&base, &self_url, entries),
    ))
}

/// The `$ihe-pix` inputs, from the query or a Parameters body.
fn pix_inputs(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Result<(SystemValue, Vec<String>), FhirError> {
    let mut sources = Vec::new();
    let mut targets = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "sourceIdentifier" => sources.push(v),
            "targetSystem" => targets.push(v.trim().to_string()),
            "_format" => {}
            other => {
                return Err(FhirError::bad_request(
                    "unsupported_parameter",
                    format!("$ihe-pix takes no parameter {other}"),
                ))
            }
        }
    }
    if sources.len() != 1 {
        return Err(FhirError::bad_request(
            "source_identifier_required",
            "sourceIdentifier is required exactly once",
        ));
    }
    Ok((token(&sources[0])?, targets))
}

async fn pix(
    req: HttpRequest,
    source: SystemValue,
    targets: Vec<String>,
) -> Result<HttpResponse, FhirError> {
    let clinic = clinic(&req, Scope::Verify).await?;
    let st = state(&req)?;
    let ctx = st.ctx.clone();
    let xref =
        blocking(move || patients::cross_reference(&ctx, &clinic, &source, &targets)).await?;
    let systems = patients::systems(&st.ctx);
    let mut parameter: Vec<Value> = xref
        .identifiers
        .iter()
        .map(|(d, v)| {
            json!({"name": "targetIdentifier", "valueIdentifier": {"system": systems.uri(d), "value": v}})
        })
        .collect();
    parameter.push(json!({"name": "targetId", "valueReference": {"reference": format!("Patient/{}", xref.resident)}}));
    Ok(ok(
        StatusCode::OK,
        &json!({"resourceType": "Parameters", "parameter": parameter}),
    ))
}

async fn pix_get(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    let (source, targets) = pix_inputs(query(&req)?)?;
    pix(req, source, targets).await
}

/// The body as a resource of `kind`.
fn resource(body: &[u8], kind: &str) -> Result<Value, FhirError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| FhirError::bad_request("invalid_json", "the body is not JSON"))?;
    if v["resourceType"] != kind {
        return Err(FhirError::bad_request(
            "wrong_resource_type",
            format!("the body must be a {kind} resource"),
        ));
    }
    Ok(v)
}

/// A Parameters' (name, value) pairs; values of type string, code or uri as
/// text, an Identifier as system|value.
fn parameter_pairs(params: &Value) -> Result<Vec<(String, String)>, FhirError> {
    let list = match &params["parameter"] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => {
            return Err(FhirError::bad_request(
                "invalid_parameters",
                "parameter must be a list",
            ))
        }
    };
    let mut pairs = Vec::new();
    for p in list {
        let name = p["name"].as_str().ok_or_else(|| {
            FhirError::bad_request("invalid_parameters", "every parameter needs a name")
        })?;
        let text = ["valueString", "valueCode", "valueUri"]
            .iter()
            .find_map(|k| p[*k].as_str().map(str::to_string));
        let value = match (text, &p["valueIdentifier"]) {
            (Some(t), _) => t,
            (None, Value::Object(id)) => format!(
                "{}|{}",
                id.get("system").and_then(Value::as_str).unwrap_or(""),
                id.get("value").and_then(Value::as_str).unwrap_or("")
            ),
            _ => {
                return Err(FhirError::bad_request(
                    "invalid_parameters",
                    format!("parameter {name} has no value of a supported type"),
                ))
            }
        };
        pairs.push((name.to_string(), value));
    }
    Ok(pairs)
}

async fn pix_post(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, FhirError> {
    let params = resource(&body, "Parameters")?;
    let (source, targets) = pix_inputs(parameter_pairs(&params)?)?;
    pix(req, source, targets).await
}

async fn resolve_card(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, FhirError> {
    let clinic = clinic(&req, Scope::Verify).await?;
    let st = state(&req)?;
    let params = resource(&body, "Parameters")?;
    let (mut tokens, mut channel, mut step) = (Vec::new(), None, None);
    for (k, v) in parameter_pairs(&params)? {
        match k.as_str() {
            "token" => tokens.push(v),
            "channel" => channel = Some(v),
            "step" => step = Some(v),
            other => {
                return Err(FhirError::bad_request(
                    "unsupported_parameter",
                    format!("$resolve-card takes no parameter {other}"),
                ))
            }
        }
    }
    if tokens.len() != 1 {
        return Err(FhirError::bad_request(
            "token_required",
            "token is required exactly once",
        ));
    }
    let used = verification::Use::parse(
        channel.as_deref().map(str::trim),
        step.as_deref().map(str::trim),
    )
    .map_err(AppError::from)?;
    let outcome = verification::verify_scanned(&st.ctx, &clinic, &tokens[0], used)
        .await
        .map_err(AppError::from)?;
    let mut parameter = vec![
        json!({"name": "valid", "valueBoolean": matches!(outcome, Outcome::Valid { .. } | Outcome::Foreign { .. })}),
    ];
    match &outcome {
        Outcome::Valid { resolution, .. } => {
            let pii = clinic.scopes.contains(Scope::Pii);
            let systems = patients::systems(&st.ctx);
            parameter.push(json!({"name": "patient", "resource": resources::scanned_patient(&systems, resolution, &clinic.code, pii)}));
        }
        Outcome::Invalid { reason, .. } => {
            parameter.push(json!({"name": "reason", "valueCode": reason.code()}));
        }
        // A foreign card: what its home city disclosed, as a Patient.
        Outcome::Foreign { claims, resolution } => {
            let pii = clinic.scopes.contains(Scope::Pii);
            let systems = patients::systems(&st.ctx);
            parameter.push(json!({"name": "patient", "resource": resources::foreign_patient(&systems, claims, resolution, &clinic.code, pii)}));
            parameter.push(json!({"name": "issuer", "valueString": resolution.issuer.code}));
        }
    }
    Ok(ok(
        StatusCode::OK,
        &json!({"resourceType": "Parameters", "parameter": parameter}),
    ))
}

/// The one `identifier` of a conditional update or delete.
fn conditional_identifier(req: &HttpRequest) -> Result<SystemValue, FhirError> {
    let ids: Vec<String> = query(req)?
        .into_iter()
        .filter_map(|(k, v)| (k == "identifier").then_some(v))
        .collect();
    match ids.as_slice() {
        [one] => token(one),
        _ => Err(FhirError::bad_request(
            "identifier_required",
            "a conditional update or delete takes exactly one identifier=system|value",
        )),
    }
}

fn identifier_of(v: &Value) -> Option<SystemValue> {
    SystemValue::parse(&format!(
        "{}|{}",
        v["system"].as_str()?,
        v["value"].as_str()?
    ))
    .ok()
}

async fn feed(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, FhirError> {
    let clinic = clinic(&req, Scope::Link).await?;
    let st = state(&req)?;
    let number = conditional_identifier(&req)?;
    let p = resource(&body, "Patient")?;
    let identifiers = p["identifier"]
        .as_array()
        .map(|a| a.iter().filter_map(identifier_of).collect())
        .unwrap_or_default();
    let merged_into = if p["active"] == Value::Bool(false) {
        let by = p["link"].as_array().and_then(|links| {
            links
                .iter()
                .find(|l| l["type"] == "replaced-by")
                .and_then(|l| identifier_of(&l["other"]["identifier"]))
        });
        match by {
            Some(b) => Some(b),
            None => {
                return Err(FhirError::Patient(patients::PatientError::Invalid {
                    code: "replaced_by_required",
                    message: "active false needs a link of type replaced-by whose other.identifier is another of the clinic's numbers".into(),
                }))
            }
        }
    } else {
        None
    };
    let ctx = st.ctx.clone();
    let feed = Feed {
        number,
        identifiers,
        merged_into,
    };
    let done = blocking(move || patients::feed(&ctx, &clinic, &feed)).await?;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(ok(
        status,
        &resources::patient(&patients::systems(&st.ctx), &done.record),
    ))
}

async fn unlink(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    let clinic = clinic(&req, Scope::Link).await?;
    let st = state(&req)?;
    let number = conditional_identifier(&req)?;
    let ctx = st.ctx.clone();
    blocking(move || patients::unlink(&ctx, &clinic, &number)).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
