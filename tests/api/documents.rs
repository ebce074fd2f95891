//! Issue 14 part A: residents registered by any identity document of
//! API-2.md, several documents per resident, one number one resident, the
//! verification answer's document fields, nothing half-written.

use healthcard::store::residents;
use serde_json::{json, Value};

use crate::helpers::{
    document, encodes_demographics, error_code, national_id, on_both, TestApp, DOCUMENT_TYPES,
};

/// A registration body for `doc`, with sex and birth date where the number
/// does not give them.
fn body(kind: &str, doc: Value) -> Value {
    if encodes_demographics(kind) {
        json!({"name": "李雷", "document": doc})
    } else {
        json!({"name": "Anna Müller", "document": doc, "sex": "female", "birth_date": "1990-05-17"})
    }
}

fn resident_count(app: &TestApp) -> i64 {
    residents::count(&mut app.ctx.conn().unwrap()).unwrap()
}

#[test]
fn every_type_registers_is_found_and_is_refused_twice() {
    on_both(|app| {
        for (i, kind) in DOCUMENT_TYPES.iter().enumerate() {
            let n = 7000 + i as u32;
            let doc = document(kind, n);
            let r = app.admin_post("/api/v1/residents", body(kind, doc.clone()));
            assert_eq!(r.status(), 201, "{kind}");
            let v: Value = r.json().unwrap();
            assert_eq!(v["document_type"], *kind);
            assert_eq!(v["documents"][0]["type"], *kind);
            let masked = v["document_masked"].as_str().unwrap();
            assert_eq!(v["documents"][0]["number_masked"], masked);
            let number = doc["number"].as_str().unwrap();
            assert!(
                !masked.contains(&number[number.len() - 4..]),
                "{kind} {masked}"
            );
            assert!(v.get("national_id").is_none());
            if kind.ends_with("id_card") || *kind == "household_register" {
                assert!(v["national_id_masked"].is_string());
            } else {
                assert!(v.get("national_id_masked").is_none(), "{kind}: {v}");
            }
            if !encodes_demographics(kind) {
                assert_eq!(v["sex"], "female");
                assert_eq!(v["birth_date"], "1990-05-17");
            }

            // Found by the same document (any spelling of it), recorded.
            let found = app
                .post("/api/v1/residents/search")
                .bearer_auth(&app.admin_token)
                .json(&json!({"document": doc}))
                .send()
                .unwrap();
            assert_eq!(found.status(), 200, "{kind}");
            assert_eq!(found.json::<Value>().unwrap()["id"], v["id"]);

            // The same number again, for another resident: refused, nothing written.
            let before = resident_count(&app);
            let again = app.admin_post("/api/v1/residents", body(kind, doc.clone()));
            assert_eq!(error_code(again, 409), "document_registered", "{kind}");
            assert_eq!(resident_count(&app), before);
        }
    });
}

#[test]
fn each_type_refuses_bad_numbers_with_its_code() {
    on_both(|app| {
        let cases = [
            (
                json!({"type": "resident_id_card", "number": "110105194912310021"}),
                "invalid_document_number",
            ),
            (
                json!({"type": "household_register", "number": "1101051949"}),
                "invalid_document_number",
            ),
            (
                json!({"type": "passport", "number": "E12345678"}),
                "invalid_country",
            ),
            (
                json!({"type": "passport", "number": "E12345678", "country": "XYZ"}),
                "invalid_country",
            ),
            (
                json!({"type": "passport", "number": "E1234567890", "country": "CHN"}),
                "invalid_document_number",
            ),
            (
                json!({"type": "hk_macao_permit", "number": "K1234567800"}),
                "invalid_document_number",
            ),
            (
                json!({"type": "taiwan_permit", "number": "1234A678"}),
                "invalid_document_number",
            ),
            (
                json!({"type": "birth_certificate", "number": "1234567890"}),
                "invalid_document_number",
            ),
            (
                json!({"type": "hmt_residence_permit", "number": national_id(5)}),
                "invalid_document_number",
            ),
            (
                json!({"type": "foreign_permanent_residence", "number": national_id(5)}),
                "invalid_document_number",
            ),
            (
                json!({"type": "birth_certificate", "number": "X320101001", "country": "CHN"}),
                "invalid_country",
            ),
            (
                json!({"type": "library_card", "number": "1"}),
                "invalid_document_type",
            ),
        ];
        let before = resident_count(&app);
        for (doc, code) in cases {
            let r = app.admin_post(
                "/api/v1/residents",
                json!({"name": "王五", "document": doc, "sex": "male", "birth_date": "2001-02-03"}),
            );
            assert_eq!(error_code(r, 422), code, "{doc}");
        }
        // Sex and birth date: required where the number lacks them, and
        // checked against the number where it has them.
        let bc = document("birth_certificate", 1);
        for (b, code) in [
            (
                json!({"name": "王五", "document": bc, "birth_date": "2026-01-01"}),
                "sex_required",
            ),
            (
                json!({"name": "王五", "document": bc, "sex": "male"}),
                "birth_date_required",
            ),
            (
                json!({"name": "王五", "document": bc, "sex": "x", "birth_date": "2026-01-01"}),
                "invalid_sex",
            ),
            (
                json!({"name": "王五", "document": bc, "sex": "male", "birth_date": "2026-13-01"}),
                "invalid_birth_date",
            ),
            (
                json!({"name": "王五", "document": document("resident_id_card", 2), "sex": "male"}),
                "document_mismatch",
            ),
            (
                json!({"name": "王五", "document": document("hmt_residence_permit", 2), "birth_date": "1901-01-01"}),
                "document_mismatch",
            ),
            (
                json!({"name": "王五", "national_id": national_id(3), "document": document("resident_id_card", 3)}),
                "invalid_body",
            ),
        ] {
            let r = app.admin_post("/api/v1/residents", b.clone());
            assert_eq!(error_code(r, 422), code, "{b}");
        }
        assert_eq!(resident_count(&app), before, "a refusal writes nothing");
    });
}

#[test]
fn one_number_is_one_resident_across_types_and_reissues() {
    on_both(|app| {
        // The short form keeps its code.
        let first = app.register(1);
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "张三", "national_id": national_id(1)}),
        );
        assert_eq!(error_code(r, 409), "national_id_registered");
        // The same citizen number on a household register is the same person.
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "张三", "document": document("household_register", 1)}),
        );
        assert_eq!(error_code(r, 409), "document_registered");
        let found: Value = app
            .post("/api/v1/residents/search")
            .bearer_auth(&app.admin_token)
            .json(&json!({"document": document("household_register", 1)}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(found["id"], first["id"]);
        // A reissued HK permit (count 01) is the holder's lifelong number.
        let hk = app.admin_post(
            "/api/v1/residents",
            body("hk_macao_permit", document("hk_macao_permit", 9)),
        );
        assert_eq!(hk.status(), 201);
        let reissued = json!({"type": "hk_macao_permit", "number": format!("H{:08}01", 9)});
        let r = app.admin_post("/api/v1/residents", body("hk_macao_permit", reissued));
        assert_eq!(error_code(r, 409), "document_registered");
        // One passport number of two states: two documents.
        let gb = json!({"type": "passport", "number": "E00000009", "country": "GBR"});
        let cn = json!({"type": "passport", "number": "E00000009", "country": "CHN"});
        for d in [gb, cn] {
            assert_eq!(
                app.admin_post("/api/v1/residents", body("passport", d))
                    .status(),
                201
            );
        }
    });
}

#[test]
fn a_resident_holds_several_documents() {
    on_both(|app| {
        let child = app.admin_post(
            "/api/v1/residents",
            json!({"name": "小明", "document": document("birth_certificate", 42),
                   "sex": "male", "birth_date": "2020-01-01"}),
        );
        assert_eq!(child.status(), 201);
        let child: Value = child.json().unwrap();
        let id = child["id"].as_str().unwrap();
        // Later an ID card.
        let r = app.admin_post(
            &format!("/api/v1/residents/{id}/documents"),
            document("resident_id_card", 42),
        );
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        let types: Vec<&str> = v["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["birth_certificate", "resident_id_card"]);
        assert!(v["national_id_masked"].is_string());
        // The resident view shows both; found by either.
        let got: Value = app
            .admin_get(&format!("/api/v1/residents/{id}"))
            .json()
            .unwrap();
        assert_eq!(got["documents"].as_array().unwrap().len(), 2);
        let by_id: Value = app
            .post("/api/v1/residents/search")
            .bearer_auth(&app.admin_token)
            .json(&json!({"national_id": national_id(42)}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(by_id["id"], id);
        // Someone else's number, a bad one, an unknown resident.
        app.register(43);
        let r = app.admin_post(
            &format!("/api/v1/residents/{id}/documents"),
            document("resident_id_card", 43),
        );
        assert_eq!(error_code(r, 409), "document_registered");
        let r = app.admin_post(
            &format!("/api/v1/residents/{id}/documents"),
            json!({"type": "taiwan_permit", "number": "12"}),
        );
        assert_eq!(error_code(r, 422), "invalid_document_number");
        let r = app.admin_post(
            "/api/v1/residents/00000000-0000-4000-8000-000000000000/documents",
            document("taiwan_permit", 1),
        );
        assert_eq!(error_code(r, 404), "not_found");
        // A clinic cannot.
        let (_, key) = app.clinic("HOSP-DOC", &["verify"]);
        let r = app
            .post(&format!("/api/v1/residents/{id}/documents"))
            .bearer_auth(&key)
            .json(&document("taiwan_permit", 2))
            .send()
            .unwrap();
        assert!(r.status() == 401 || r.status() == 403, "{}", r.status());
    });
}

#[test]
fn verification_answers_name_the_document() {
    on_both(|app| {
        let r = app.admin_post(
            "/api/v1/residents",
            body("passport", document("passport", 77)),
        );
        assert_eq!(r.status(), 201);
        let rid = r.json::<Value>().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let issued: Value = app
            .admin_post(&format!("/api/v1/residents/{rid}/cards"), json!({}))
            .json()
            .unwrap();
        let card = issued["card"]["id"].as_str().unwrap().to_string();
        let token = app.mint(&card, "static");
        let (_, key) = app.clinic("HOSP-PASS", &["verify"]);
        let v = app.verify(&key, &token);
        assert_eq!(v["valid"], true);
        assert_eq!(v["resident"]["document_type"], "passport");
        assert_eq!(v["resident"]["document_masked"], "*********");
        assert!(v["resident"].get("national_id_masked").is_none());
        assert!(v["resident"].get("documents").is_none());
        // An ID-card holder: both fields, and the old one.
        let (_, card2, _) = app.resident_with_card(78);
        let v = app.verify(&key, &app.mint(&card2, "static"));
        assert_eq!(v["resident"]["document_type"], "resident_id_card");
        assert_eq!(
            v["resident"]["document_masked"],
            v["resident"]["national_id_masked"]
        );
    });
}
