//! Upload a legacy per-hospital CSV and see the import report (the same
//! import as `healthcard import-legacy`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use maud::{html, Markup};

use super::{field, page, SignedIn};
use crate::domain::ClinicId;
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::State;
use crate::store::access_log::ActorKind;
use crate::store::clinics::{self, Clinic};
use crate::store::import::{self, ImportError};
use crate::web::csrf;
use crate::web::multipart::{self, MultipartError};
use crate::web::page::{Cx, PageResult};

/// Largest upload: ~100,000 rows of a typical legacy file.
const UPLOAD_LIMIT: usize = 16 * 1024 * 1024;
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
    blocking(move || clinics::list(&mut *ctx.conn()?)).await
}

pub(super) async fn form(SignedIn { admin, cx }: SignedIn, state: web::Data<State>) -> PageResult {
    let all = all_clinics(&state).await?;
    let body = page(
        &cx,
        &admin,
        cx.t("导入旧卡", "Import legacy cards"),
        upload_form(&cx, &all, None, None),
    );
    Ok(cx.ok(body))
}

pub(super) async fn upload(
    SignedIn { admin, cx }: SignedIn,
    req: HttpRequest,
    state: web::Data<State>,
    payload: web::Payload,
) -> PageResult {
    let l = cx.lang;
    let Some(boundary) = multipart::boundary(&req) else {
        return Err(
            AppError::UnsupportedMediaType("send the form as multipart/form-data".into()).into(),
        );
    };
    let body = match multipart::read_body(payload, UPLOAD_LIMIT).await {
        Ok(b) => b,
        Err(MultipartError::TooLarge) => return Err(AppError::PayloadTooLarge(UPLOAD_LIMIT).into()),
        Err(_) => {
            return Err(AppError::BadRequest {
                code: "bad_upload",
                message: "the upload could not be read".into(),
            }
            .into())
        }
    };
    let parts = multipart::parse(&body, &boundary).map_err(|_| AppError::BadRequest {
        code: "bad_upload",
        message: "the upload is not valid multipart/form-data".into(),
    })?;
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| std::str::from_utf8(&p.data).ok())
            .map(str::to_string)
    };
    if !csrf::check(&req, text(csrf::CSRF_FIELD).as_deref()) {
        return Ok(super::csrf_refused(cx));
    }
    let all = all_clinics(&state).await?;
    let chosen = text("clinic").unwrap_or_default();
    let Some(clinic) = all.iter().find(|c| c.id.to_string() == chosen).cloned() else {
        return Err(AppError::NotFound("no such clinic".into()).into());
    };
    let file = parts
        .into_iter()
        .find(|p| p.name == "file" && p.filename.is_some())
        .map(|p| p.data)
        .unwrap_or_default();
    if file.is_empty() {
        let body = page(
            &cx,
            &admin,
            l.t("导入旧卡", "Import legacy cards"),
            upload_form(
                &cx,
                &all,
                Some(&chosen),
                Some(l.t(
                    "请选择一个非空的 CSV 文件",
                    "Choose a CSV file that is not empty",
                )),
            ),
        );
        return Ok(cx.html(StatusCode::UNPROCESSABLE_ENTITY, body));
    }
    let ctx = state.ctx.clone();
    let clinic_id: ClinicId = clinic.id;
    let uploader = admin.username.as_str().to_owned();
    let result = blocking(move || {
        let mut conn = ctx.conn()?;
        let by = (ActorKind::Admin, uploader.as_str());
        match import::import_legacy(
            &mut conn,
            &ctx.master,
            clinic_id,
            by,
            &file[..],
            BATCH,
            |_| {},
        ) {
            Ok(r) => Ok(Ok(r)),
            // A wrong header or a file that is not CSV: the operator's to fix.
            Err(ImportError::Header | ImportError::Read(_)) => Ok(Err(())),
            Err(ImportError::Store(e)) => Err(e),
        }
    })
    .await?;
    let Ok(report) = result else {
        let body = page(
            &cx,
            &admin,
            l.t("导入旧卡", "Import legacy cards"),
            upload_form(
                &cx,
                &all,
                Some(&chosen),
                Some(l.t(
                    "无法读取：表头应为 local_patient_id,name,national_id,phone",
                    "Cannot read it: the header must be local_patient_id,name,national_id,phone",
                )),
            ),
        );
        return Ok(cx.html(StatusCode::UNPROCESSABLE_ENTITY, body));
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
