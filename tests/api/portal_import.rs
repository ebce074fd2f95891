//! The portal's legacy CSV upload (`POST /admin/import`, multipart/form-data)
//! over HTTP, on both databases: a good file imports and is recorded as the
//! administrator's; every bad upload gets the page's answer and writes nothing.

use diesel::prelude::*;
use healthcard::store::schema::access_log;
use reqwest::blocking::Response;
use serde_json::{json, Value};

use crate::helpers::{national_id, spawn_app_as, Backend, TestApp};

const BOUNDARY: &str = "hc-test-boundary-7MA4YWxk";
const HEADER: &str = "local_patient_id,name,national_id,phone";

/// A part of a multipart body: `(name, filename, bytes)`.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: text/csv\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The portal as a signed-in administrator's browser (English pages).
struct Portal<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
    clinic: String,
}

impl<'a> Portal<'a> {
    fn new(app: &'a TestApp) -> Portal<'a> {
        let csrf_cookie = "U".repeat(43);
        let (clinic, _) = app.clinic("LEG-1", &["verify"]);
        Portal {
            app,
            cookie: format!(
                "hc_session={}; hc_csrf={csrf_cookie}; hc_lang=en",
                app.admin_token
            ),
            csrf: healthcard::web::csrf::token_for(&csrf_cookie),
            clinic: clinic["id"].as_str().unwrap().to_string(),
        }
    }

    fn post(&self, content_type: &str, body: Vec<u8>) -> Response {
        self.app
            .client
            .post(self.app.url("/admin/import"))
            .header("cookie", &self.cookie)
            .header("origin", &self.app.base)
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap()
    }

    fn send(&self, parts: &[Part]) -> Response {
        self.post(
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            multipart(parts),
        )
    }

    /// The form as a browser sends it, with `file` as the chosen file.
    fn upload(&self, file: &[u8]) -> Response {
        self.send(&[
            ("csrf", None, self.csrf.as_bytes()),
            ("clinic", None, self.clinic.as_bytes()),
            ("file", Some("legacy.csv"), file),
        ])
    }

    fn registered(&self, national_id: &str) -> Option<Value> {
        let r = self
            .app
            .post("/api/v1/residents/search")
            .bearer_auth(&self.app.admin_token)
            .json(&json!({ "national_id": national_id }))
            .send()
            .unwrap();
        match r.status().as_u16() {
            200 => Some(r.json().unwrap()),
            404 => None,
            s => panic!("search answered {s}"),
        }
    }
}

fn legacy_csv(a: &str, b: &str) -> String {
    format!("{HEADER}\nL-1,李四,{a},13900001111\nL-2,王五,{b},\nL-3,赵六,123,\n")
}

/// The status and the page of an answer.
fn page(r: Response) -> (u16, String) {
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn the_portal_imports_a_legacy_file_as_the_administrator_who_uploads_it() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_as(backend, "importer9", |_| {}) else {
            continue;
        };
        let portal = Portal::new(&app);
        let (a, b) = (national_id(6101), national_id(6102));
        let (status, text) = page(portal.upload(legacy_csv(&a, &b).as_bytes()));
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("Import report"), "{text}");
        let cells = |label: &str| {
            text.split(&format!("<th>{label}</th><td>"))
                .nth(1)
                .and_then(|s| s.split('<').next())
                .unwrap_or_else(|| panic!("no {label} in {text}"))
                .to_string()
        };
        assert_eq!(cells("Rows"), "3");
        assert_eq!(cells("Residents registered"), "2");
        assert_eq!(cells("Bad rows"), "1");
        assert!(portal.registered(&a).is_some() && portal.registered(&b).is_some());
        // The access log names the administrator who uploaded the file.
        let by: Vec<(String, String)> = access_log::table
            .filter(access_log::action.eq("import"))
            .select((access_log::actor_kind, access_log::actor))
            .load(&mut *app.ctx.conn().unwrap())
            .unwrap();
        assert_eq!(by, [("admin".to_string(), "importer9".to_string())]);
    }
}

#[test]
fn bad_uploads_get_the_pages_answer_and_import_nothing() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_as(backend, "importer9", |_| {}) else {
            continue;
        };
        let portal = Portal::new(&app);
        let (a, b) = (national_id(6201), national_id(6202));
        let good = legacy_csv(&a, &b);
        let choose_a_file = "Choose a CSV file that is not empty";
        let cannot_read = "Cannot read it: it must be a UTF-8 CSV file whose header is \
                           local_patient_id,name,national_id,phone";

        // No file chosen (the browser sends an empty part), or no file part at all.
        for parts in [
            vec![
                ("csrf", None, portal.csrf.as_bytes()),
                ("clinic", None, portal.clinic.as_bytes()),
                ("file", Some(""), &b""[..]),
            ],
            vec![
                ("csrf", None, portal.csrf.as_bytes()),
                ("clinic", None, portal.clinic.as_bytes()),
            ],
        ] {
            let (status, text) = page(portal.send(&parts));
            assert_eq!(status, 422, "{text}");
            assert!(text.contains(choose_a_file), "{text}");
            // The form comes back with the clinic still chosen.
            assert!(
                text.contains(&format!("value=\"{}\" selected", portal.clinic)),
                "{text}"
            );
        }
        // A wrong header; a UTF-16 file (as some spreadsheets save "Unicode text").
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(good.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        for file in [
            good.replacen("national_id", "id_number", 1).into_bytes(),
            utf16,
        ] {
            let (status, text) = page(portal.upload(&file));
            assert_eq!(status, 422, "{text}");
            assert!(text.contains(cannot_read), "{text}");
        }
        // Larger than 16 MiB: refused with the page's 413.
        let mut huge = good.clone().into_bytes();
        huge.resize(16 * 1024 * 1024 + 1, b'\n');
        let (status, text) = page(portal.upload(&huge));
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("Too large"), "{text}");
        // Without the form's token, or with another's: the form has expired.
        for token in [None, Some("x".repeat(43))] {
            let mut parts: Vec<Part> = vec![
                ("clinic", None, portal.clinic.as_bytes()),
                ("file", Some("legacy.csv"), good.as_bytes()),
            ];
            if let Some(t) = &token {
                parts.push(("csrf", None, t.as_bytes()));
            }
            let (status, text) = page(portal.send(&parts));
            assert_eq!(status, 403, "{text}");
            assert!(text.contains("This form has expired"), "{text}");
        }
        // A clinic that does not exist.
        let (status, _) = page(portal.send(&[
            ("csrf", None, portal.csrf.as_bytes()),
            ("clinic", None, b"00000000-0000-0000-0000-000000000000"),
            ("file", Some("legacy.csv"), good.as_bytes()),
        ]));
        assert_eq!(status, 404);
        // Not a multipart form, or a broken one.
        let r = portal.post(
            "application/x-www-form-urlencoded",
            format!("csrf={}&clinic={}", portal.csrf, portal.clinic).into_bytes(),
        );
        assert_eq!(r.status(), 415);
        let mut cut = multipart(&[("csrf", None, portal.csrf.as_bytes())]);
        cut.truncate(cut.len() - 20);
        let (status, text) =
            page(portal.post(&format!("multipart/form-data; boundary={BOUNDARY}"), cut));
        assert_eq!(status, 400, "{text}");
        // A text field too long to be a token.
        let long = "c".repeat(4096);
        let (status, _) = page(portal.send(&[
            ("csrf", None, long.as_bytes()),
            ("file", Some("legacy.csv"), good.as_bytes()),
        ]));
        assert_eq!(status, 400);
        // Signed out: to the sign-in page.
        let r = app
            .client
            .post(app.url("/admin/import"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(&[("file", Some("legacy.csv"), good.as_bytes())]))
            .send()
            .unwrap();
        assert!(r.url().path().ends_with("/admin/login"), "{}", r.url());
        // None of it imported anything.
        assert!(portal.registered(&a).is_none());
        assert!(portal.registered(&b).is_none());
        // The same file, sent right, does.
        assert_eq!(portal.upload(good.as_bytes()).status(), 200);
        assert!(portal.registered(&a).is_some());
    }
}
