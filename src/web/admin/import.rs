//! Upload a legacy per-hospital CSV and see the import report (the same
//! import as `healthcard import-legacy`).

use std::future::Future;
use std::pin::Pin;

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::TryStreamExt;
use maud::{html, Markup};

use super::gate::Refused;
use super::{field, page, SignedIn};
use crate::domain::ClinicId;
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::State;
use crate::service::import::{self, ImportError};
use crate::service::lookup;
use crate::service::registry::Actor;
use crate::store::admins::Admin;
use crate::store::clinics::Clinic;
use crate::web::csrf;
use crate::web::page::{Cx, PageError, PageResult};

/// Largest file: ~100,000 rows of a typical legacy file.
const UPLOAD_LIMIT: usize = 16 * 1024 * 1024;
/// Largest text field (the CSRF token is 43 characters, a clinic id 36).
const FIELD_LIMIT: usize = 1024;
/// Most parts a form may have (it has three).
const PARTS_LIMIT: usize = 16;
/// Rows per transaction, as the CLI's default.
const BATCH: usize = import::DEFAULT_BATCH;
/// Bad rows listed on the page (the count is always complete).
const BAD_ROWS_SHOWN: usize = 500;

fn upload_form(cx: &Cx, clinics: &[Clinic], chosen: Option<&str>, error: Option<&str>) -> Markup {
    let l = cx.lang;
    html! {
        h1 { (l.t("导入旧卡", "Import legacy cards")) }
        p { (l.t(
            "上传某医院旧就诊卡的 CSV 文件（表头 local_patient_id,name,national_id,phone）：为居民登记、发卡并关联该医院的病历号。重复导入同一文件不会产生重复数据；有问题的行会列出，其余行照常导入。",
            "Upload a hospital's legacy patient-card CSV (header local_patient_id,name,national_id,phone): residents are registered, given cards and linked to the hospital's patient numbers. Importing the same file twice changes nothing more; bad rows are listed and the good ones kept.",
        )) }
        @if clinics.is_empty() {
            p.warn { (l.t("请先创建医疗机构。", "Create the clinic first.")) " " a href="/admin/clinics" { (l.t("医疗机构", "Clinics")) } }
        } @else {
            form.card-form method="post" action="/admin/import" enctype="multipart/form-data" {
                (cx.csrf_field())
                (field("clinic", l.t("医疗机构", "Clinic"), html! {
                    select #clinic name="clinic" required {
                        @for c in clinics {
                            option value=(c.id) selected[chosen == Some(c.id.to_string().as_str())] {
                                (c.code.as_str()) " · " (c.name)
                            }
                        }
                    }
                }, None, None))
                (field("file", l.t("CSV 文件", "CSV file"), html! {
                    input #file type="file" name="file" accept=".csv,text/csv" required
                        aria-invalid=[error.map(|_| "true")];
                }, error, Some(l.t("UTF-8 编码，最大 16 MB", "UTF-8, at most 16 MB"))))
                button type="submit" { (l.t("导入", "Import")) }
            }
        }
    }
}

async fn all_clinics(state: &web::Data<State>) -> Result<Vec<Clinic>, AppError> {
    let ctx = state.ctx.clone();
    blocking(move || lookup::clinics(&ctx)).await
}

pub(super) async fn form(SignedIn { admin, cx }: SignedIn, state: web::Data<State>) -> PageResult {
    let all = all_clinics(&state).await?;
    Ok(form_page(cx, &admin, &all, None, None))
}

/// The upload page; with an error (beside the file field, status 422) when
/// the form comes back refused, the clinic still chosen.
fn form_page(
    cx: Cx,
    admin: &Admin,
    all: &[Clinic],
    chosen: Option<&Clinic>,
    error: Option<&str>,
) -> HttpResponse {
    let chosen = chosen.map(|c| c.id.to_string());
    let form = upload_form(&cx, all, chosen.as_deref(), error);
    let body = page(&cx, admin, cx.t("导入旧卡", "Import legacy cards"), form);
    match error {
        None => cx.ok(body),
        Some(_) => cx.html(StatusCode::UNPROCESSABLE_ENTITY, body),
    }
}

pub(super) async fn upload(
    Upload {
        signed_in: SignedIn { admin, cx },
        clinic,
        file,
    }: Upload,
    state: web::Data<State>,
) -> PageResult {
    let l = cx.lang;
    let all = all_clinics(&state).await?;
    let Some(clinic) = all.iter().find(|c| c.id.to_string() == clinic).cloned() else {
        return Err(AppError::NotFound("no such clinic".into()).into());
    };
    let Some(file) = file else {
        let error = l.t(
            "请选择一个非空的 CSV 文件",
            "Choose a CSV file that is not empty",
        );
        return Ok(form_page(cx, &admin, &all, Some(&clinic), Some(error)));
    };
    let ctx = state.ctx.clone();
    let clinic_id: ClinicId = clinic.id;
    let uploader = admin.username.as_str().to_owned();
    let result = blocking(move || {
        match import::legacy(
            &ctx,
            clinic_id,
            &Actor::admin(&uploader),
            &file[..],
            BATCH,
            |_| {},
        ) {
            Ok(report) => Ok(Some(report)),
            // A wrong header, a file that is not CSV or not UTF-8: the
            // operator's to fix.
            Err(ImportError::Header | ImportError::Read(_)) => Ok(None),
            Err(ImportError::Store(e)) => Err(e),
        }
    })
    .await?;
    let Some(report) = result else {
        let error = l.t(
            "无法读取：应为 UTF-8 编码的 CSV 文件，表头为 local_patient_id,name,national_id,phone",
            "Cannot read it: it must be a UTF-8 CSV file whose header is local_patient_id,name,national_id,phone",
        );
        return Ok(form_page(cx, &admin, &all, Some(&clinic), Some(error)));
    };
    let body = page(
        &cx,
        &admin,
        l.t("导入报告", "Import report"),
        html! {
            h1 { (l.t("导入报告", "Import report")) " · " (clinic.name) }
            table.facts #import-report {
                tr { th { (l.t("数据行", "Rows")) } td { (report.rows) } }
                tr { th { (l.t("新登记居民", "Residents registered")) } td { (report.residents_created) } }
                tr { th { (l.t("新发卡", "Cards issued")) } td { (report.cards_issued) } }
                tr { th { (l.t("新关联病历号", "Patient numbers linked")) } td { (report.links_created) } }
                tr { th { (l.t("无变化", "Unchanged")) } td { (report.unchanged) } }
                tr { th { (l.t("有问题的行", "Bad rows")) } td { (report.bad.len()) } }
            }
            @if !report.bad.is_empty() {
                h2 { (l.t("有问题的行", "Bad rows")) }
                table.list {
                    thead { tr { th { (l.t("行号", "Line")) } th { (l.t("原因", "Reason")) } } }
                    tbody {
                        @for b in report.bad.iter().take(BAD_ROWS_SHOWN) {
                            tr { td.mono { (b.line) } td { (b.reason) } }
                        }
                    }
                }
                @if report.bad.len() > BAD_ROWS_SHOWN {
                    p.muted { (l.t("只列出前 500 行。", "Only the first 500 are listed.")) }
                }
            }
            p { a.button.secondary href="/admin/import" { (l.t("再导入一个文件", "Import another file")) } }
        },
    );
    Ok(cx.ok(body))
}

/// The upload form of a signed-in administrator, read by actix-multipart and
/// let through only with this browser's CSRF token (as [`super::Checked`]
/// does for URL-encoded forms): the chosen clinic (as sent) and the file,
/// `None` when none was chosen or it is empty. The session is checked before
/// a byte of the body is read, so a stranger's upload is never buffered.
pub(super) struct Upload {
    signed_in: SignedIn,
    clinic: String,
    file: Option<Vec<u8>>,
}

impl FromRequest for Upload {
    type Error = Refused;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Refused>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let parts = Multipart::new(req.headers(), payload.take());
        Box::pin(async move {
            let signed_in = SignedIn::from_request(&req, &mut Payload::None).await?;
            let form = read_form(parts)
                .await
                .map_err(|e| Refused::Page(PageError(e)))?;
            if !csrf::check(&req, form.csrf.as_deref()) {
                return Err(Refused::FormExpired(Cx::new(&req)));
            }
            Ok(Upload {
                signed_in,
                clinic: form.clinic.unwrap_or_default(),
                file: form.file.filter(|f| !f.is_empty()),
            })
        })
    }
}

/// The form's fields as sent, before the CSRF check.
#[derive(Default)]
struct Sent {
    csrf: Option<String>,
    clinic: Option<String>,
    file: Option<Vec<u8>>,
}

/// Reads every part under the limits: the file up to [`UPLOAD_LIMIT`], the
/// text fields up to [`FIELD_LIMIT`]; other parts are skipped, their bytes
/// counted against the file's limit.
async fn read_form(mut parts: Multipart) -> Result<Sent, AppError> {
    let too_large = || AppError::PayloadTooLarge(UPLOAD_LIMIT);
    let too_long = || bad_upload("a text field is too long");
    let mut sent = Sent::default();
    let mut left = UPLOAD_LIMIT;
    let mut count = 0;
    while let Some(mut part) = parts.try_next().await.map_err(unreadable)? {
        count += 1;
        if count > PARTS_LIMIT {
            return Err(bad_upload("the form has too many parts"));
        }
        let is_file = part
            .content_disposition()
            .is_some_and(|d| d.get_filename().is_some());
        match (part.name(), is_file) {
            (Some("file"), true) => {
                let data = read_part(&mut part, left).await?.ok_or_else(too_large)?;
                left -= data.len();
                sent.file = Some(data);
            }
            (Some(name @ (csrf::CSRF_FIELD | "clinic")), false) => {
                let is_csrf = name == csrf::CSRF_FIELD;
                let data = read_part(&mut part, FIELD_LIMIT)
                    .await?
                    .ok_or_else(too_long)?;
                let text =
                    String::from_utf8(data).map_err(|_| bad_upload("a text field is not UTF-8"))?;
                if is_csrf {
                    sent.csrf = Some(text);
                } else {
                    sent.clinic = Some(text);
                }
            }
            _ => {
                let skipped = read_part(&mut part, left).await?.ok_or_else(too_large)?;
                left -= skipped.len();
            }
        }
    }
    Ok(sent)
}

/// One part's bytes, or `None` if it has more than `max`.
async fn read_part(part: &mut Field, max: usize) -> Result<Option<Vec<u8>>, AppError> {
    let mut data = Vec::new();
    while let Some(chunk) = part.try_next().await.map_err(unreadable)? {
        if data.len() + chunk.len() > max {
            return Ok(None);
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Some(data))
}

fn bad_upload(message: &str) -> AppError {
    AppError::BadRequest {
        code: "bad_upload",
        message: message.into(),
    }
}

/// What actix-multipart could not read: not a multipart form at all, or a
/// broken one.
fn unreadable(e: MultipartError) -> AppError {
    match e {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible
        | MultipartError::BoundaryMissing => {
            AppError::UnsupportedMediaType("send the form as multipart/form-data".into())
        }
        _ => bad_upload("the upload is not valid multipart/form-data"),
    }
}
