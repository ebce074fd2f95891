//! Temporary cards (issue 14, 临时卡): issued by a clinic with `register` to a
//! patient without a document, valid only there and until `valid_until`;
//! every door (`/verify`, FHIR `$resolve-card`) refuses them alike elsewhere.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use healthcard::store::schema::temporary_cards;
use healthcard::store::{cards, residents};
use serde_json::{json, Value};

use crate::helpers::{error_code, on_both, on_both_with, TestApp};

fn issue(app: &TestApp, key: &str, body: Value) -> reqwest::blocking::Response {
    app.post("/api/v1/temporary-cards")
        .bearer_auth(key)
        .json(&body)
        .send()
        .unwrap()
}

fn issued(app: &TestApp, key: &str, body: Value) -> Value {
    let r = issue(app, key, body);
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().unwrap()
}

/// Residents, cards ever issued, temporary rows.
fn counts(app: &TestApp) -> (i64, i64, i64) {
    let mut c = app.ctx.conn().unwrap();
    let temporary: i64 = temporary_cards::table.count().get_result(&mut *c).unwrap();
    (
        residents::count(&mut c).unwrap(),
        cards::counts(&mut c).unwrap().0,
        temporary,
    )
}

fn card_log(app: &TestApp, card: &str) -> Vec<Value> {
    app.admin_get(&format!("/api/v1/cards/{card}/access-log"))
        .json()
        .unwrap()
}

#[test]
fn a_clinic_with_register_issues_and_only_it_verifies() {
    on_both(|app| {
        let (er, er_key) = app.clinic("ER", &["verify", "register"]);
        let (_, other_key) = app.clinic("OTHER", &["verify", "pii"]);
        let before = Utc::now();
        let v = issued(&app, &er_key, json!({"sex": "male", "birth_year": 1970}));
        // An unknown name is 无名氏, and said to be unknown.
        let res = &v["resident"];
        assert_eq!(res["name"], "无名氏");
        assert_eq!(res["name_unknown"], true);
        assert_eq!(res["temporary"], true);
        assert_eq!(res["sex"], "male");
        assert_eq!(res["birth_year"], 1970);
        assert!(res.get("birth_date").is_none(), "{res}");
        assert_eq!(res["documents"], json!([]));
        let card = &v["card"];
        assert_eq!(card["temporary"], true);
        assert_eq!(card["status"], "active");
        assert_eq!(card["issuing_clinic"], "ER");
        assert_eq!(card["resident_id"], res["id"]);
        let until: DateTime<Utc> = card["valid_until"].as_str().unwrap().parse().unwrap();
        let days = (until - before).num_hours();
        assert!((30 * 24 - 1..=30 * 24).contains(&days), "{days} h");
        let token = v["token"].as_str().unwrap();
        assert!(token.starts_with("EHC1:"));
        let card_id = card["id"].as_str().unwrap();
        let short = card_id[..8].to_ascii_uppercase();
        assert_eq!(v["local_patient_id"], format!("T-{short}"));
        assert!(v.get("holder_credential").is_none());

        // The issuing clinic: valid, temporary, with valid_until and its link.
        let ok = app.verify(&er_key, token);
        assert_eq!(ok["valid"], true, "{ok}");
        assert_eq!(ok["resident"]["temporary"], true);
        assert_eq!(ok["resident"]["name"], "无名氏");
        assert_eq!(ok["resident"]["birth_year"], 1970);
        assert_eq!(ok["valid_until"], card["valid_until"]);
        assert_eq!(ok["local_patient_id"], format!("T-{short}"));
        // Any other clinic: card_restricted, and nothing about the patient.
        let no = app.verify(&other_key, token);
        assert_eq!(no["valid"], false);
        assert_eq!(no["reason"], "card_restricted", "{no}");
        assert!(no.get("resident").is_none() && no.get("valid_until").is_none());
        // The same through FHIR $resolve-card.
        let fhir = |key: &str| -> Value {
            app.post("/fhir/Patient/$resolve-card")
                .bearer_auth(key)
                .header("Content-Type", "application/fhir+json")
                .body(
                    json!({"resourceType": "Parameters",
                        "parameter": [{"name": "token", "valueString": token}]})
                    .to_string(),
                )
                .send()
                .unwrap()
                .json()
                .unwrap()
        };
        let f = fhir(&other_key);
        assert_eq!(f["parameter"][0]["valueBoolean"], false, "{f}");
        assert_eq!(f["parameter"][1]["valueCode"], "card_restricted", "{f}");
        let f = fhir(&er_key);
        assert_eq!(f["parameter"][0]["valueBoolean"], true, "{f}");
        let patient = &f["parameter"][1]["resource"];
        assert_eq!(
            patient["birthDate"], "1970",
            "a partial FHIR date: {patient}"
        );
        assert_eq!(patient["name"][0]["use"], "temp");
        assert_eq!(patient["name"][0]["text"], "无名氏");
        // The Patient read and the demographic search say the same, never the stand-in date.
        let id = patient["id"].as_str().unwrap();
        let read: Value = app
            .get(&format!("/fhir/Patient/{id}"))
            .bearer_auth(&er_key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(read["birthDate"], "1970", "{read}");
        assert_eq!(read["name"][0]["use"], "temp", "{read}");

        // The route is in the OpenAPI document.
        let api: Value = app.get("/openapi.json").send().unwrap().json().unwrap();
        assert!(api["paths"]["/api/v1/temporary-cards"]["post"].is_object());
        // The issue, its link and every use are in the card's access log,
        // by the clinic.
        let log = card_log(&app, card_id);
        let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
        for a in [
            "resident.register",
            "card.issue",
            "link.create",
            "token.mint",
        ] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        assert!(log
            .iter()
            .filter(|e| e["action"] != "verify")
            .all(|e| e["actor"] == "ER" && e["actor_kind"] == "clinic"));
        let outcomes: Vec<&str> = log
            .iter()
            .filter(|e| e["action"] == "verify")
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert!(outcomes.contains(&"valid") && outcomes.contains(&"card_restricted"));
        // The issuing clinic's link is a real one.
        let r = app
            .get("/api/v1/links")
            .query(&[("local_patient_id", format!("T-{short}"))])
            .bearer_auth(&er_key)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().unwrap()["card_id"], card_id);
        // The administrator's views of the resident and the card say so too.
        let got: Value = app
            .admin_get(&format!(
                "/api/v1/residents/{}",
                res["id"].as_str().unwrap()
            ))
            .json()
            .unwrap();
        assert_eq!(got["temporary"], true);
        assert_eq!(got["birth_year"], 1970);
        assert!(got.get("birth_date").is_none(), "{got}");
        assert_eq!(got["cards"][0]["issuing_clinic"], "ER");
        let got: Value = app
            .admin_get(&format!("/api/v1/cards/{card_id}"))
            .json()
            .unwrap();
        assert_eq!(got["temporary"], true);
        assert_eq!(got["issuing_clinic"], "ER");
        assert_eq!(got["valid_until"], card["valid_until"]);
        assert_eq!(er["code"], "ER");
    });
}

#[test]
fn a_known_name_and_the_clinics_own_number() {
    on_both(|app| {
        let (_, key) = app.clinic("ER", &["verify", "register"]);
        let v = issued(
            &app,
            &key,
            json!({"name": " 李四 ", "sex": "female", "note": "120 送来，意识不清", "local_patient_id": "ER-0001"}),
        );
        assert_eq!(v["resident"]["name"], "李四");
        assert!(v["resident"].get("name_unknown").is_none());
        assert!(v["resident"].get("birth_year").is_none());
        assert_eq!(v["local_patient_id"], "ER-0001");
        // The note is personal data: never in an answer or the log, sealed at rest.
        let ok = app.verify(&key, v["token"].as_str().unwrap());
        assert_eq!(ok["valid"], true);
        assert_eq!(ok["local_patient_id"], "ER-0001");
        assert!(!ok.to_string().contains("120 送来"));
        assert!(!v.to_string().contains("120 送来"));
        let log = card_log(&app, v["card"]["id"].as_str().unwrap());
        assert!(!Value::from(log).to_string().contains("120"));
        let sealed: Vec<Option<Vec<u8>>> = temporary_cards::table
            .select(temporary_cards::note_enc)
            .load(&mut *app.ctx.conn().unwrap())
            .unwrap();
        let sealed = sealed[0].clone().expect("a note is stored");
        let plain = "意识不清".as_bytes();
        assert!(!sealed.windows(plain.len()).any(|w| w == plain));
        // The number now names this patient: a second card with it is a
        // conflict, and nothing of it is written.
        let before = counts(&app);
        let r = issue(
            &app,
            &key,
            json!({"sex": "male", "local_patient_id": "ER-0001"}),
        );
        assert_eq!(error_code(r, 409), "link_conflict");
        assert_eq!(counts(&app), before);
    });
}

#[test]
fn without_register_403_and_bad_input_422_leave_nothing() {
    on_both(|app| {
        let (_, verify_only) = app.clinic("VO", &["verify", "link", "pii"]);
        let (_, key) = app.clinic("ER", &["register"]);
        let before = counts(&app);
        // 403 before the body is judged.
        let r = issue(&app, &verify_only, json!({"sex": "male"}));
        assert_eq!(error_code(r, 403), "forbidden");
        let r = issue(&app, &verify_only, json!({"sex": "robot"}));
        assert_eq!(error_code(r, 403), "forbidden");
        // An administrator's session is not a clinic's key.
        let r = issue(&app, &app.admin_token.clone(), json!({"sex": "male"}));
        assert_eq!(error_code(r, 401), "unauthorized");
        let r = app
            .post("/api/v1/temporary-cards")
            .json(&json!({"sex": "male"}))
            .send()
            .unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");
        for (body, code) in [
            (json!({}), "invalid_sex"),
            (json!({"sex": ""}), "invalid_sex"),
            (json!({"sex": "unknown"}), "invalid_sex"),
            (
                json!({"sex": "male", "birth_year": 1899}),
                "invalid_birth_year",
            ),
            (
                json!({"sex": "male", "birth_year": 2999}),
                "invalid_birth_year",
            ),
            (
                json!({"sex": "male", "birth_year": "1980"}),
                "invalid_birth_year",
            ),
            (
                json!({"sex": "male", "birth_year": 1980.5}),
                "invalid_birth_year",
            ),
            (
                json!({"sex": "male", "note": "x".repeat(201)}),
                "invalid_note",
            ),
            (json!({"sex": "male", "note": "a\u{7}b"}), "invalid_note"),
            (
                json!({"sex": "male", "name": "张".repeat(65)}),
                "invalid_name",
            ),
            (
                json!({"sex": "male", "name": "张\u{202E}三"}),
                "invalid_name",
            ),
            (
                json!({"sex": "male", "local_patient_id": "a\tb"}),
                "invalid_local_patient_id",
            ),
        ] {
            let r = issue(&app, &key, body.clone());
            assert_eq!(error_code(r, 422), code, "{body}");
        }
        let r = issue(&app, &key, json!({"sex": "male", "national_id": "x"}));
        assert_eq!(r.status().as_u16(), 422, "unknown fields are refused");
        assert_eq!(counts(&app), before, "nothing written");
        // The limits themselves are fine.
        let v = issued(
            &app,
            &key,
            json!({"sex": "female", "birth_year": 1900, "note": "字".repeat(200), "name": null}),
        );
        assert_eq!(v["resident"]["name_unknown"], true);
        // A clinic may issue without the verify scope; the card still
        // verifies only where it was issued, by a key that may verify.
        let r = app
            .post("/api/v1/verify")
            .bearer_auth(&key)
            .json(&json!({"token": v["token"]}))
            .send()
            .unwrap();
        assert_eq!(error_code(r, 403), "forbidden");
    });
}

#[test]
fn after_valid_until_card_expired() {
    on_both(|app| {
        let (_, er) = app.clinic("ER", &["verify", "register"]);
        let (_, other) = app.clinic("OTHER", &["verify"]);
        let v = issued(&app, &er, json!({"sex": "male"}));
        let token = v["token"].as_str().unwrap();
        let today = Utc::now().date_naive();
        app.ctx.clock.move_to(today + chrono::Days::new(29));
        assert_eq!(app.verify(&er, token)["valid"], true);
        app.ctx.clock.move_to(today + chrono::Days::new(31));
        let no = app.verify(&er, token);
        assert_eq!(no["valid"], false);
        assert_eq!(no["reason"], "card_expired", "{no}");
        // Another clinic is told only that the card is not for it.
        assert_eq!(app.verify(&other, token)["reason"], "card_restricted");
        // Refused by outcome in the figures too.
        let log = card_log(&app, v["card"]["id"].as_str().unwrap());
        assert!(log.iter().any(|e| e["outcome"] == "card_expired"));
        // The state checks still come first: a revoked temporary card is revoked.
        app.ctx.clock.move_to(today);
        let card = v["card"]["id"].as_str().unwrap();
        assert_eq!(
            app.admin_post(
                &format!("/api/v1/cards/{card}/revoke"),
                json!({"reason": "test"})
            )
            .status(),
            200
        );
        assert_eq!(app.verify(&er, token)["reason"], "card_revoked");
    });
}

#[test]
fn the_lifetime_is_a_setting() {
    on_both_with(
        |s| s.temporary_card_days = 2,
        |app| {
            let (_, er) = app.clinic("ER", &["verify", "register"]);
            let before = Utc::now();
            let v = issued(&app, &er, json!({"sex": "male", "birth_year": 2026}));
            let until: DateTime<Utc> = v["card"]["valid_until"].as_str().unwrap().parse().unwrap();
            assert!(((until - before).num_minutes() - 2 * 24 * 60).abs() <= 1);
            let today = Utc::now().date_naive();
            app.ctx.clock.move_to(today + chrono::Days::new(3));
            assert_eq!(
                app.verify(&er, v["token"].as_str().unwrap())["reason"],
                "card_expired"
            );
        },
    );
}

#[test]
fn ordinary_cards_are_not_temporary() {
    on_both(|app| {
        let (_, key) = app.clinic("C1", &["verify"]);
        let (_, card, _) = app.resident_with_card(1);
        let ok = app.verify(&key, &app.mint(&card, "static"));
        assert_eq!(ok["valid"], true);
        assert!(ok["resident"].get("temporary").is_none());
        assert!(ok.get("valid_until").is_none());
        assert!(ok["resident"]["birth_date"].is_string());
    });
}

/// The offline decision (docs/api.md "Temporary cards"): offline, a temporary
/// card's token is an ordinary static token: its signature and times check,
/// nothing names the patient, and no restriction can be judged; online the
/// other clinic is refused.
#[test]
fn offline_a_temporary_token_is_only_a_signed_static_token() {
    on_both(|app| {
        let (_, er) = app.clinic("ER", &["verify", "register"]);
        let (_, other) = app.clinic("OTHER", &["verify"]);
        let v = issued(&app, &er, json!({"name": "王五", "sex": "male"}));
        let token = v["token"].as_str().unwrap();
        let jwks = app
            .get("/.well-known/jwks.json")
            .send()
            .unwrap()
            .text()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks).unwrap();
        let out = crate::helpers::ok(&crate::helpers::cli(
            dir.path(),
            None,
            &["verify", "--jwks", path.to_str().unwrap(), token],
            None,
        ));
        let offline: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(offline["valid"], true, "{offline}");
        assert_eq!(offline["claims"]["kind"], "static");
        assert!(!out.contains("王五") && !out.contains("temporary"));
        assert_eq!(app.verify(&other, token)["reason"], "card_restricted");
    });
}

/// The emergency's whole arc: a temporary card at the ER, the patient later
/// known and merged into their real record. The ER's number moves with the
/// merge, the wristband's token answers `card_replaced` from then on, and
/// the real card is found under the ER's number.
#[test]
fn a_temporary_patient_merged_into_the_real_record() {
    on_both(|app| {
        let (_, er_key) = app.clinic("ER", &["verify", "register"]);
        let v = issued(
            &app,
            &er_key,
            json!({"sex": "female", "birth_year": 1980, "local_patient_id": "ER-7"}),
        );
        let temp_resident = v["resident"]["id"].as_str().unwrap().to_string();
        let wristband = v["token"].as_str().unwrap().to_string();
        assert_eq!(app.verify(&er_key, &wristband)["valid"], true);

        // Later: she is identified, and already registered with a card.
        let (real, real_card, _) = app.resident_with_card(41);
        let r = app.admin_post(
            &format!("/api/v1/residents/{temp_resident}/merge"),
            json!({ "into": real }),
        );
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
        let merged: Value = app
            .admin_get(&format!("/api/v1/residents/{temp_resident}"))
            .json()
            .unwrap();
        assert_eq!(merged["merged_into"], real.as_str());

        // The wristband is dead; the ER's number now names the real card.
        let after = app.verify(&er_key, &wristband);
        assert_eq!(after["valid"], false);
        assert_eq!(after["reason"], "card_replaced");
        let found: Value = app
            .get("/api/v1/links?local_patient_id=ER-7")
            .bearer_auth(&er_key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(found["resident_id"], real.as_str());
        assert_eq!(found["card_id"], real_card.as_str());
        // Her real card at the ER: valid everywhere, with the ER's number, not temporary.
        let token = app.mint(&real_card, "static");
        let ok = app.verify(&er_key, &token);
        assert_eq!(ok["valid"], true);
        assert_eq!(ok["local_patient_id"], "ER-7");
        assert!(ok["resident"].get("temporary").is_none(), "{ok}");
        assert!(ok.get("valid_until").is_none(), "{ok}");
    });
}
