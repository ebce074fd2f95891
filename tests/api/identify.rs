//! `POST /api/v1/identify` (scope `identify`, API-2.md): a patient shows a
//! physical ID card instead of a QR; the answer is a verification's, and it
//! is logged like one, with `credential: document`.

use serde_json::{json, Value};

use crate::helpers::{document, error_code, national_id, on_both, TestApp};

fn identify(app: &TestApp, key: &str, body: Value) -> reqwest::blocking::Response {
    app.post("/api/v1/identify")
        .bearer_auth(key)
        .json(&body)
        .send()
        .unwrap()
}

fn identified(app: &TestApp, key: &str, body: Value) -> Value {
    let r = identify(app, key, body);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().unwrap()
}

#[test]
fn identify_needs_its_scope_and_answers_like_verify() {
    on_both(|app| {
        let (rid, card, _) = app.resident_with_card(800);
        let number = national_id(800);
        let (_, verifier) = app.clinic("I1", &["verify", "link", "xref", "search"]);
        let (_, key) = app.clinic("I2", &["identify"]);
        let (_, pii) = app.clinic("I3", &["identify", "pii"]);

        // Every other scope together does not identify.
        let r = identify(&app, &verifier, json!({ "national_id": number }));
        assert_eq!(error_code(r, 403), "forbidden");
        let r = app
            .post("/api/v1/identify")
            .json(&json!({ "national_id": number }))
            .send()
            .unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");

        // The short form and the document form find the same card.
        for body in [
            json!({"national_id": number, "channel": "kiosk", "step": "registration"}),
            json!({"document": {"type": "resident_id_card", "number": number}}),
        ] {
            let v = identified(&app, &key, body);
            assert_eq!(v["valid"], true, "{v}");
            assert_eq!(v["card_id"], card.as_str());
            assert_eq!(v["resident"]["id"], rid.as_str());
            assert_eq!(v["resident"]["document_type"], "resident_id_card");
            assert!(v["local_patient_id"].is_null());
            assert!(v.get("token").is_none(), "no token field: {v}");
            // Privacy: without pii nothing but the masked number.
            assert!(v["resident"].get("national_id").is_none(), "{v}");
            assert!(v["resident"].get("phone").is_none(), "{v}");
            assert!(!v.to_string().contains(&number), "{v}");
            assert_eq!(
                v["resident"]["national_id_masked"].as_str().unwrap().len(),
                18
            );
        }
        // With pii, the full number (as /verify gives it).
        let v = identified(&app, &pii, json!({ "national_id": number }));
        assert_eq!(v["resident"]["national_id"], number.as_str());
        assert!(v["resident"].get("phone").is_none(), "{v}");

        // A number without a resident, a resident without a card.
        let v = identified(&app, &key, json!({"national_id": national_id(801)}));
        assert_eq!(v["valid"], false);
        assert_eq!(v["reason"], "card_not_found");
        assert!(
            v.get("resident").is_none() && v.get("card_id").is_none(),
            "{v}"
        );
        app.register(802);
        let v = identified(&app, &key, json!({"national_id": national_id(802)}));
        assert_eq!(v["reason"], "card_not_found");

        // The card's state answers as for a token.
        let r = app.admin_post(&format!("/api/v1/cards/{card}/suspend"), json!({}));
        assert_eq!(r.status(), 200);
        let v = identified(&app, &key, json!({ "national_id": number }));
        assert_eq!(v["reason"], "card_suspended");
        let r = app.admin_post(&format!("/api/v1/cards/{card}/reinstate"), json!({}));
        assert_eq!(r.status(), 200);
        let r = app.admin_post(&format!("/api/v1/cards/{card}/reissue"), json!({}));
        assert_eq!(r.status(), 201);
        let new_card = r.json::<Value>().unwrap()["card"]["id"].clone();
        let v = identified(&app, &key, json!({ "national_id": number }));
        assert_eq!(v["valid"], true);
        assert_eq!(v["card_id"], new_card, "the current card after a reissue");

        // Another document type, masked by its own rule.
        let passport = document("passport", 803);
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "Anna", "document": passport, "sex": "female", "birth_date": "1990-05-01"}),
        );
        assert_eq!(r.status(), 201);
        let p_id = r.json::<Value>().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (p_card, _) = app.issue_card(&p_id);
        let v = identified(&app, &key, json!({ "document": passport }));
        assert_eq!(v["valid"], true);
        assert_eq!(v["card_id"], p_card.as_str());
        assert_eq!(v["resident"]["document_type"], "passport");
        let shown = v["resident"]["document_masked"].as_str().unwrap();
        assert_ne!(shown, passport["number"].as_str().unwrap());
        assert!(!v.to_string().contains(passport["number"].as_str().unwrap()));
        // The passport of another country is another document.
        let mut other = passport.clone();
        other["country"] = "USA".into();
        let v = identified(&app, &key, json!({ "document": other }));
        assert_eq!(v["reason"], "card_not_found");

        // Both new routes are described in the OpenAPI document.
        let doc: Value = app.get("/openapi.json").send().unwrap().json().unwrap();
        assert!(doc["paths"].get("/api/v1/identify").is_some());
        assert!(doc["paths"].get("/api/v1/residents/{id}/merge").is_some());

        // Bad input: 422 with its code, never a 500.
        for (body, code) in [
            (
                json!({"national_id": "110105196001011234"}),
                "invalid_national_id",
            ),
            (json!({}), "invalid_body"),
            (
                json!({"national_id": number, "document": {"type": "resident_id_card", "number": number}}),
                "invalid_body",
            ),
            (
                json!({"document": {"type": "library_card", "number": "1"}}),
                "invalid_document_type",
            ),
            (
                json!({"document": {"type": "passport", "number": "E12345678"}}),
                "invalid_country",
            ),
            (
                json!({"national_id": number, "step": "lunch"}),
                "invalid_step",
            ),
            (
                json!({"national_id": number, "channel": "fax"}),
                "invalid_channel",
            ),
        ] {
            assert_eq!(
                error_code(identify(&app, &key, body.clone()), 422),
                code,
                "{body}"
            );
        }
    });
}

#[test]
fn identification_is_logged_counted_and_follows_merges() {
    on_both(|app| {
        let (rid, card, holder) = app.resident_with_card(810);
        let number = national_id(810);
        let (_, key) = app.clinic("I4", &["verify", "identify", "link"]);
        assert_eq!(app.verify(&key, &app.mint(&card, "static"))["valid"], true);
        let v = identified(
            &app,
            &key,
            json!({"national_id": number, "channel": "kiosk", "step": "payment"}),
        );
        assert_eq!(v["valid"], true);
        identified(&app, &key, json!({"national_id": national_id(811)}));

        // The card's log (admin) and the holder's: each resolution says
        // what the clinic showed; the number itself is nowhere.
        let card_log: Value = app
            .admin_get(&format!("/api/v1/cards/{card}/access-log"))
            .json()
            .unwrap();
        let holder_log: Value = app
            .get("/api/v1/holder/access-log")
            .bearer_auth(&holder)
            .send()
            .unwrap()
            .json()
            .unwrap();
        for log in [&card_log, &holder_log] {
            let rows = log.as_array().unwrap();
            let by = |action: &str| rows.iter().find(|r| r["action"] == action).cloned();
            let ident = by("identify").expect("identify row");
            assert_eq!(ident["credential"], "document");
            assert_eq!(ident["outcome"], "valid");
            assert_eq!(ident["channel"], "kiosk");
            assert_eq!(ident["step"], "payment");
            assert_eq!(ident["actor"], "I4");
            assert_eq!(by("verify").expect("verify row")["credential"], "token");
            for r in rows {
                if !matches!(r["action"].as_str(), Some("verify" | "identify")) {
                    assert!(r.get("credential").is_none(), "{r}");
                }
            }
            assert!(!log.to_string().contains(&number), "{log}");
        }

        // Counted: the monitoring's daily counts and the metrics.
        let today = healthcard::domain::monitoring_day(chrono::Utc::now().naive_utc());
        let stats: Value = app
            .admin_get(&format!(
                "/api/v1/stats/card-use?from={}&to={}&by=clinic,outcome",
                today.pred_opt().unwrap(),
                today.succ_opt().unwrap()
            ))
            .json()
            .unwrap();
        let uses = |outcome: &str| -> i64 {
            stats["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["clinic_code"] == "I4" && r["outcome"] == outcome)
                .map(|r| r["uses"].as_i64().unwrap())
                .sum()
        };
        assert_eq!(uses("valid"), 2, "{stats}");
        assert_eq!(uses("card_not_found"), 1, "{stats}");
        let metrics = app.get("/metrics").send().unwrap().text().unwrap();
        assert!(
            metrics.contains(
                r#"identifications_total{channel="kiosk",outcome="valid",step="payment"} 1"#
            ),
            "{metrics}"
        );
        assert!(metrics.contains(r#"identifications_total{channel="unspecified",outcome="card_not_found",step="unspecified"} 1"#));

        // A merged record's document finds the record it went into.
        let (source, _, _) = app.resident_with_card(812);
        let r = app.admin_post(
            &format!("/api/v1/residents/{source}/merge"),
            json!({ "into": rid }),
        );
        assert_eq!(r.status(), 200);
        let v = identified(&app, &key, json!({"national_id": national_id(812)}));
        assert_eq!(v["valid"], true);
        assert_eq!(v["card_id"], card.as_str());
        assert_eq!(v["resident"]["id"], rid.as_str());

        let report = healthcard::store::access_log::verify_chain(
            &mut app.ctx.conn().unwrap(),
            &app.ctx.master.chain_key(),
        )
        .unwrap();
        assert!(report.first_bad.is_none(), "{report:?}");
    });
}

/// The kiosk's one field takes an ID-card reader's number as well as a
/// QR: identified by document for a key with `identify`, refused without.
#[test]
fn the_kiosk_identifies_by_id_number() {
    on_both(|app| {
        let (_, card, _) = app.resident_with_card(820);
        let number = national_id(820);
        let (_, with) = app.clinic("IK1", &["verify", "identify"]);
        let (_, without) = app.clinic("IK2", &["verify"]);
        let csrf = healthcard::web::csrf::token_for(&"C".repeat(43));
        let scan = |cookie: &str, text: &str| {
            app.post("/kiosk/scan")
                .header("cookie", cookie)
                .header("origin", &app.base)
                .form(&[("csrf", csrf.as_str()), ("token", text)])
                .send()
                .unwrap()
        };
        let cookie = crate::admins::kiosk_open(&app, &with);
        let page = app
            .get("/kiosk")
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            page.contains("或刷身份证"),
            "the field says it takes an ID card"
        );
        // A reader types the number and Enter.
        let r = scan(&cookie, &format!("{number}\r\n"));
        assert_eq!(r.status(), 200);
        let html = r.text().unwrap();
        assert!(html.contains(r#"data-outcome="valid""#), "{html}");
        assert!(html.contains(r#"data-credential="document""#), "{html}");
        assert!(
            html.contains("居民身份证"),
            "the document type is shown: {html}"
        );
        assert!(html.contains("凭证件识别"), "{html}");
        assert!(!html.contains(&number), "only the masked number: {html}");
        assert!(
            !html.contains("/kiosk/link"),
            "no link form without a scanned card"
        );
        // A token still verifies in the same field.
        let r = scan(&cookie, &app.mint(&card, "static"));
        let html = r.text().unwrap();
        assert!(html.contains(r#"data-credential="token""#), "{html}");
        // An unknown number: card_not_found.
        let html = scan(&cookie, &national_id(821)).text().unwrap();
        assert!(html.contains(r#"data-outcome="card_not_found""#), "{html}");
        // Without the scope, the number is refused and nothing is logged.
        let cookie = crate::admins::kiosk_open(&app, &without);
        let r = scan(&cookie, &number);
        assert_eq!(r.status(), 403);
        let log: Value = app
            .admin_get(&format!("/api/v1/cards/{card}/access-log"))
            .json()
            .unwrap();
        let identified: Vec<&Value> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "identify")
            .collect();
        assert_eq!(identified.len(), 1, "{log}");
        assert_eq!(identified[0]["channel"], "kiosk");
        assert_eq!(identified[0]["actor"], "IK1");
        // The portal's access-log page says what was shown, in words.
        let page = app
            .get(&format!("/admin/cards/{card}/log"))
            .header("cookie", format!("hc_session={}", app.admin_token))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            page.contains("<td>凭证件识别</td>") && page.contains("<td>证件号</td>"),
            "{page}"
        );
        assert!(page.contains("<td>二维码</td>"), "the token scan: {page}");
        assert!(!page.contains(&number), "{page}");
    });
}
