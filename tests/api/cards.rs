use serde_json::{json, Value};

use crate::helpers::{error_code, national_id, on_both, spawn_app, Backend};

#[test]
fn residents_register_find_and_refuse_duplicates() {
    on_both(|app| {
        let nid = national_id(10);
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": " 欧阳娜娜 ", "national_id": nid.to_lowercase()}),
        );
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        assert_eq!(v["name"], "欧阳娜娜");
        assert!(v["id"].is_string());
        assert!(v["sex"] == "male" || v["sex"] == "female");
        assert_eq!(
            v["birth_date"],
            format!("{}-{}-{}", &nid[6..10], &nid[10..12], &nid[12..14])
        );
        assert!(v["national_id_masked"]
            .as_str()
            .unwrap()
            .contains("**********"));
        assert!(v.get("national_id").is_none());
        // Same number again (upper case this time): 409.
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "李四", "national_id": nid}),
        );
        assert_eq!(error_code(r, 409), "national_id_registered");
        // Find by number.
        let r = app.admin_get(&format!("/api/v1/residents?national_id={nid}"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().unwrap()["id"], v["id"]);
        let r = app.admin_get(&format!(
            "/api/v1/residents?national_id={}",
            national_id(11)
        ));
        assert_eq!(error_code(r, 404), "not_found");
        // A number with a wrong check digit is a 422, not a 404.
        let mut bad = nid.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        let r = app.admin_get(&format!("/api/v1/residents?national_id={bad}"));
        assert_eq!(r.status(), 422);
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "王五", "national_id": bad}),
        );
        assert_eq!(r.status(), 422);
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "", "national_id": national_id(12)}),
        );
        assert_eq!(r.status(), 422);
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "王五", "national_id": national_id(12), "phone": "12345"}),
        );
        assert_eq!(r.status(), 422);
        // A resident with their cards.
        let id = v["id"].as_str().unwrap();
        let r: Value = app
            .admin_get(&format!("/api/v1/residents/{id}"))
            .json()
            .unwrap();
        assert_eq!(r["cards"].as_array().unwrap().len(), 0);
        assert_eq!(
            error_code(app.admin_get("/api/v1/residents/not-a-uuid"), 404),
            "not_found"
        );
        assert_eq!(
            error_code(
                app.admin_get(&format!("/api/v1/residents/{}", uuid::Uuid::new_v4())),
                404
            ),
            "not_found"
        );
    });
}

#[test]
fn card_lifecycle_one_card_rule_and_reissue() {
    on_both(|app| {
        let (rid, card, holder) = app.resident_with_card(20);
        assert!(holder.starts_with("hch_"));
        let r = app.admin_post(&format!("/api/v1/residents/{rid}/cards"), json!({}));
        assert_eq!(error_code(r, 409), "card_exists");
        let c: Value = app
            .admin_get(&format!("/api/v1/cards/{card}"))
            .json()
            .unwrap();
        assert_eq!(c["status"], "active");
        assert_eq!(c["resident_id"], rid);
        assert!(c["issued_at"].as_str().unwrap().ends_with('Z'));

        let act = |what: &str| {
            app.admin_post(
                &format!("/api/v1/cards/{card}/{what}"),
                json!({"reason": "test"}),
            )
        };
        assert_eq!(act("reinstate").status(), 409, "reinstating an active card");
        assert_eq!(act("suspend").status(), 200);
        assert_eq!(act("suspend").status(), 409);
        // Still holds the slot while suspended.
        let r = app.admin_post(&format!("/api/v1/residents/{rid}/cards"), json!({}));
        assert_eq!(r.status(), 409);
        // No tokens for a suspended card.
        let r = app.admin_post(
            &format!("/api/v1/cards/{card}/tokens"),
            json!({"kind": "static"}),
        );
        assert_eq!(error_code(r, 409), "card_not_active");
        assert_eq!(act("reinstate").status(), 200);
        let r = act("reissue");
        assert_eq!(r.status(), 201);
        let new: Value = r.json().unwrap();
        let new_id = new["card"]["id"].as_str().unwrap().to_string();
        assert_ne!(new["holder_credential"].as_str().unwrap(), holder);
        let old: Value = app
            .admin_get(&format!("/api/v1/cards/{card}"))
            .json()
            .unwrap();
        assert_eq!(old["status"], "replaced");
        assert_eq!(old["replaced_by"], new_id.as_str());
        // Replaced is final.
        assert_eq!(act("reinstate").status(), 409);
        assert_eq!(act("revoke").status(), 409);
        assert_eq!(act("reissue").status(), 409);
        // Revoke the new one; revoked is final; then a fresh card can be issued.
        assert_eq!(
            app.admin_post(&format!("/api/v1/cards/{new_id}/revoke"), json!({}))
                .status(),
            200
        );
        assert_eq!(
            app.admin_post(&format!("/api/v1/cards/{new_id}/reinstate"), json!({}))
                .status(),
            409
        );
        let r = app.admin_post(&format!("/api/v1/residents/{rid}/cards"), json!({}));
        assert_eq!(r.status(), 201);
        let res: Value = app
            .admin_get(&format!("/api/v1/residents/{rid}"))
            .json()
            .unwrap();
        assert_eq!(res["cards"].as_array().unwrap().len(), 3);
        // Lifecycle changes are in the access log with their reasons.
        let log: Vec<Value> = app
            .admin_get(&format!("/api/v1/cards/{card}/access-log"))
            .json()
            .unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
        for a in [
            "card.issue",
            "card.suspend",
            "card.reinstate",
            "card.reissue",
        ] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        assert!(log
            .iter()
            .all(|e| e["actor"] == "admin" || e["action"] == "verify"));
    });
}

#[test]
fn tokens_and_qr_images() {
    on_both(|app| {
        let (_, card, _) = app.resident_with_card(30);
        for kind in ["static", "dynamic"] {
            let r = app.admin_post(
                &format!("/api/v1/cards/{card}/tokens"),
                json!({"kind": kind}),
            );
            assert_eq!(r.status(), 201);
            let v: Value = r.json().unwrap();
            assert_eq!(v["kind"], kind);
            assert!(v["token"].as_str().unwrap().starts_with("EHC1:"));
            let q = v["qr_version"].as_i64().unwrap();
            assert!((1..=9).contains(&q), "QR version {q}");
            let iat =
                chrono::DateTime::parse_from_rfc3339(v["issued_at"].as_str().unwrap()).unwrap();
            let exp =
                chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
            let life = (exp - iat).num_seconds();
            if kind == "dynamic" {
                assert_eq!(life, 120);
            } else {
                assert!(life > 4 * 365 * 86400);
            }
        }
        let r = app.admin_post(
            &format!("/api/v1/cards/{card}/tokens"),
            json!({"kind": "paper"}),
        );
        assert_eq!(r.status(), 422);
        let r = app.admin_get(&format!("/api/v1/cards/{card}/qr.png"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        let png = r.bytes().unwrap();
        let text = healthcard::token::qr::decode_png(&png).unwrap();
        assert!(text.starts_with("EHC1:"));
        let (_, key) = app.clinic("Q1", &["verify"]);
        assert_eq!(
            app.verify(&key, &text)["valid"],
            true,
            "the printed QR verifies"
        );
        let r = app.admin_get(&format!("/api/v1/cards/{card}/qr.svg"));
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml"));
        assert!(r.text().unwrap().contains("<svg"));
    });
}

#[test]
fn holder_flow() {
    on_both(|app| {
        let (_, card, holder) = app.resident_with_card(40);
        let (_, key) = app.clinic("H1", &["verify"]);
        let r = app
            .post("/api/v1/holder/tokens")
            .bearer_auth(&holder)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        assert_eq!(v["kind"], "dynamic");
        let tok = v["token"].as_str().unwrap();
        let res = app.verify(&key, tok);
        assert_eq!(res["valid"], true);
        assert_eq!(res["card_id"], card);
        assert_eq!(res["token"]["kind"], "dynamic");
        let r = app
            .get("/api/v1/holder/qr.png")
            .bearer_auth(&holder)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = healthcard::token::qr::decode_png(&r.bytes().unwrap()).unwrap();
        assert_eq!(app.verify(&key, &text)["valid"], true);
        let r = app
            .get("/api/v1/holder/qr.svg")
            .bearer_auth(&holder)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        // Wrong or missing credential.
        let r = app.post("/api/v1/holder/tokens").send().unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");
        let r = app
            .post("/api/v1/holder/tokens")
            .bearer_auth(format!("hch_{}", "B".repeat(43)))
            .send()
            .unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");
        // A suspended card's holder gets no tokens but may still read the log.
        assert_eq!(
            app.admin_post(&format!("/api/v1/cards/{card}/suspend"), json!({}))
                .status(),
            200
        );
        let r = app
            .post("/api/v1/holder/tokens")
            .bearer_auth(&holder)
            .send()
            .unwrap();
        assert_eq!(error_code(r, 409), "card_not_active");
        let r = app
            .get("/api/v1/holder/access-log")
            .bearer_auth(&holder)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        // After a reissue the old credential (a lost phone) is dead: no tokens, no access log.
        assert_eq!(
            app.admin_post(&format!("/api/v1/cards/{card}/reissue"), json!({}))
                .status(),
            201
        );
        let r = app
            .post("/api/v1/holder/tokens")
            .bearer_auth(&holder)
            .send()
            .unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");
        let r = app
            .get("/api/v1/holder/access-log")
            .bearer_auth(&holder)
            .send()
            .unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");
    });
}

#[test]
fn links_cross_reference() {
    on_both(|app| {
        let (rid, card, _) = app.resident_with_card(50);
        let (_, card2, _) = app.resident_with_card(51);
        let (_, k1) = app.clinic("A1", &["verify", "link"]);
        let (_, k2) = app.clinic("A2", &["verify", "link"]);
        let (_, verify_only) = app.clinic("A3", &["verify"]);
        let link = |key: &str, card: &str, mrn: &str| {
            app.post("/api/v1/links")
                .bearer_auth(key)
                .json(&json!({"card_id": card, "local_patient_id": mrn}))
                .send()
                .unwrap()
        };
        // A clinic links only a card it has verified (this one: not yet).
        assert_eq!(error_code(link(&k1, &card, "P-1"), 409), "no_recent_scan");
        for (key, c) in [(&k1, &card), (&k1, &card2), (&k2, &card), (&k2, &card2)] {
            assert_eq!(app.verify(key, &app.mint(c, "static"))["valid"], true);
        }
        assert_eq!(link(&k1, &card, "P-1").status(), 201);
        assert_eq!(link(&k1, &card, "P-1").status(), 201, "idempotent");
        assert_eq!(error_code(link(&k1, &card2, "P-1"), 409), "link_conflict");
        assert_eq!(
            link(&k2, &card2, "P-1").status(),
            201,
            "numbers are per clinic"
        );
        assert_eq!(link(&verify_only, &card, "X").status(), 403);
        assert_eq!(
            link(&k1, &uuid::Uuid::new_v4().to_string(), "P-9").status(),
            404
        );
        assert_eq!(link(&k1, &card, "").status(), 422);
        let r = app
            .get("/api/v1/links?local_patient_id=P-1")
            .bearer_auth(&k1)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().unwrap();
        assert_eq!(v["card_id"], card);
        assert_eq!(v["resident_id"], rid);
        let r = app
            .get("/api/v1/links?local_patient_id=P-404")
            .bearer_auth(&k1)
            .send()
            .unwrap();
        assert_eq!(error_code(r, 404), "not_found");
        // Every resolution is logged, by a clinic's own number too.
        let log: Vec<Value> = app
            .admin_get(&format!("/api/v1/cards/{card}/access-log"))
            .json()
            .unwrap();
        let lookups: Vec<&Value> = log
            .iter()
            .filter(|r| r["action"] == "link.lookup")
            .collect();
        assert_eq!(lookups.len(), 1, "{log:?}");
        assert_eq!(lookups[0]["actor"], "A1");
        assert_eq!(lookups[0]["outcome"], "found");
        // Admin sees every link of the card's resident; a clinic only its own.
        assert_eq!(link(&k2, &card, "Q-7").status(), 201);
        let all: Vec<Value> = app
            .admin_get(&format!("/api/v1/cards/{card}/links"))
            .json()
            .unwrap();
        assert_eq!(all.len(), 2);
        let own: Vec<Value> = app
            .get(&format!("/api/v1/cards/{card}/links"))
            .bearer_auth(&k1)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            own,
            vec![json!({"clinic_code": "A1", "local_patient_id": "P-1"})]
        );
        // Links follow the resident across a reissue.
        let r = app.admin_post(&format!("/api/v1/cards/{card}/reissue"), json!({}));
        let new: Value = r.json().unwrap();
        let new_card = new["card"]["id"].as_str().unwrap();
        let v = app.verify(&k1, &app.mint(new_card, "static"));
        assert_eq!(v["local_patient_id"], "P-1");
    });
}

#[test]
fn revocation_feed_with_cursor() {
    on_both(|app| {
        let (_, key) = app.clinic("F1", &["verify"]);
        let feed = |since: &str| -> Value {
            app.get(&format!("/api/v1/revocations?since={since}"))
                .bearer_auth(&key)
                .send()
                .unwrap()
                .json()
                .unwrap()
        };
        let start = feed("0");
        assert_eq!(start["revoked"].as_array().unwrap().len(), 0);
        let cursor = start["next"].as_str().unwrap().to_string();
        let (_, a, _) = app.resident_with_card(60);
        let (_, b, _) = app.resident_with_card(61);
        app.admin_post(&format!("/api/v1/cards/{a}/revoke"), json!({}));
        app.admin_post(&format!("/api/v1/cards/{b}/suspend"), json!({}));
        let f = feed(&cursor);
        let items = f["revoked"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{f}");
        assert_eq!(items[0]["card_id"], a);
        assert_eq!(items[0]["status"], "revoked");
        assert_eq!(items[1]["card_id"], b);
        assert_eq!(items[1]["status"], "suspended");
        let next = f["next"].as_str().unwrap().to_string();
        // A reinstatement is listed only on request.
        app.admin_post(&format!("/api/v1/cards/{b}/reinstate"), json!({}));
        assert_eq!(feed(&next)["revoked"].as_array().unwrap().len(), 0);
        let r: Value = app
            .get(&format!(
                "/api/v1/revocations?since={next}&include_reinstated=true"
            ))
            .bearer_auth(&key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(r["revoked"][0]["status"], "active");
        let next = r["next"].as_str().unwrap().to_string();
        assert_eq!(feed(&next)["revoked"].as_array().unwrap().len(), 0);
        let r = app
            .get("/api/v1/revocations?since=banana")
            .bearer_auth(&key)
            .send()
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = app.get("/api/v1/revocations").send().unwrap();
        assert_eq!(r.status(), 401);
    });
}

#[test]
fn admin_login_lockout_after_repeated_failures() {
    let app = spawn_app(Backend::Sqlite).unwrap();
    let attempt = |pw: &str| {
        app.post("/api/v1/admin/login")
            .json(&json!({"username": "admin", "password": pw}))
            .send()
            .unwrap()
    };
    for _ in 0..5 {
        assert_eq!(error_code(attempt("wrong"), 401), "unauthorized");
    }
    let r = attempt("correct horse battery");
    assert_eq!(r.status(), 429, "locked even with the right password");
    assert!(r.headers().get("retry-after").is_some());
    // Unknown users get the same answer as wrong passwords.
    let r = app
        .post("/api/v1/admin/login")
        .json(&json!({"username": "nobody", "password": "x"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // Sign out ends the session.
    let tok = app.admin_token.clone();
    let r = app
        .post("/api/v1/admin/logout")
        .bearer_auth(&tok)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app.get("/api/v1/clinics").bearer_auth(&tok).send().unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn portal_cookie_changes_need_a_same_origin_request() {
    let app = spawn_app(Backend::Sqlite).unwrap();
    let (_, card, _) = app.resident_with_card(95);
    let cookie = format!("hc_session={}", app.admin_token);
    let suspend = |origin: Option<&str>| {
        let mut r = app
            .post(&format!("/api/v1/cards/{card}/suspend"))
            .header("cookie", &cookie);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().unwrap()
    };
    // Reading by cookie is fine; changing needs Origin = this host.
    let r = app
        .get(&format!("/api/v1/cards/{card}"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(error_code(suspend(None), 403), "forbidden");
    assert_eq!(
        error_code(suspend(Some("https://evil.example")), 403),
        "forbidden"
    );
    let port_twin = app.base.replace("127.0.0.1:", "127.0.0.1:1");
    assert_eq!(
        suspend(Some(&port_twin)).status(),
        403,
        "another port is another origin"
    );
    let c: Value = app
        .admin_get(&format!("/api/v1/cards/{card}"))
        .json()
        .unwrap();
    assert_eq!(c["status"], "active", "nothing changed");
    assert_eq!(suspend(Some(&app.base)).status(), 200);
}

#[test]
fn kiosk_link_needs_a_card_the_kiosk_just_scanned() {
    let app = spawn_app(Backend::Sqlite).unwrap();
    let (_, card, _) = app.resident_with_card(96);
    let (_, key) = app.clinic("KL", &["verify", "link"]);
    let csrf_cookie = "C".repeat(43);
    let csrf = healthcard::web::csrf::token_for(&csrf_cookie);
    let session = crate::admins::kiosk_open(&app, &key);
    let r = app
        .post("/kiosk/link")
        .header("cookie", session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("card_id", card.as_str()),
            ("ticket", "9999999999.00"),
            ("local_patient_id", "X-1"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = r.text().unwrap();
    assert!(
        page.contains("请先扫描该卡"),
        "refused for want of a scan, not for CSRF: {page}"
    );
    assert!(!page.contains("张三"), "a forged card id discloses no name");
    let r = app
        .get("/api/v1/links?local_patient_id=X-1")
        .bearer_auth(&key)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "and links nothing");
}
