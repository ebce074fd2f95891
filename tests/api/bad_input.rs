use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, Backend};

#[test]
fn client_mistakes_get_json_errors_never_500() {
    let app = spawn_app(Backend::Sqlite).unwrap();
    let (_, key) = app.clinic("B1", &["verify", "link"]);
    let tok = app.admin_token.clone();
    let post_raw = |path: &str, auth: &str, ct: &str, body: Vec<u8>| {
        app.post(path)
            .bearer_auth(auth)
            .header("content-type", ct)
            .body(body)
            .send()
            .unwrap()
    };
    // Broken JSON: 400.
    assert_eq!(
        error_code(
            post_raw(
                "/api/v1/verify",
                &key,
                "application/json",
                b"{\"token\":".to_vec()
            ),
            400
        ),
        "malformed_json"
    );
    // Wrong shape: 422.
    assert_eq!(
        post_raw(
            "/api/v1/verify",
            &key,
            "application/json",
            b"{\"token\": 5}".to_vec()
        )
        .status(),
        422
    );
    assert_eq!(
        post_raw("/api/v1/verify", &key, "application/json", b"{}".to_vec()).status(),
        422
    );
    assert_eq!(
        post_raw("/api/v1/verify", &key, "application/json", b"[]".to_vec()).status(),
        422
    );
    // Over the limit: 413.
    let huge = serde_json::to_vec(&json!({"token": "A".repeat(100_000)})).unwrap();
    assert_eq!(
        error_code(
            post_raw("/api/v1/verify", &key, "application/json", huge),
            413
        ),
        "payload_too_large"
    );
    // Wrong content type: 415.
    assert_eq!(
        post_raw("/api/v1/verify", &key, "text/plain", b"{}".to_vec()).status(),
        415
    );
    // Unknown route and wrong method: JSON 404 / 405.
    assert_eq!(
        error_code(app.get("/api/v1/nothing").send().unwrap(), 404),
        "not_found"
    );
    let r = app.client.delete(app.url("/api/v1/verify")).send().unwrap();
    assert!(r.status() == 404 || r.status() == 405, "{}", r.status());
    let v: Value = r.json().unwrap();
    assert!(v["code"].is_string());
    // Invalid UTF-8 and binary junk in a JSON body.
    assert_eq!(
        post_raw(
            "/api/v1/residents",
            &tok,
            "application/json",
            vec![0xff, 0xfe, 0x00]
        )
        .status(),
        400
    );
    // A lifecycle body that is not JSON.
    let (_, card, _) = app.resident_with_card(90);
    let r = post_raw(
        &format!("/api/v1/cards/{card}/suspend"),
        &tok,
        "application/json",
        b"nope".to_vec(),
    );
    assert_eq!(r.status(), 400);
    let r = post_raw(
        &format!("/api/v1/cards/{card}/suspend"),
        &tok,
        "application/json",
        serde_json::to_vec(&json!({"reason": "x".repeat(600)})).unwrap(),
    );
    assert_eq!(r.status(), 422);
    // Nothing half-written: the card is still active.
    let c: Value = app
        .admin_get(&format!("/api/v1/cards/{card}"))
        .json()
        .unwrap();
    assert_eq!(c["status"], "active");
    // Hostile tokens of every shape answer 200 malformed, never 500.
    for t in [
        "",
        " ",
        "EHC1",
        "EHC1:::::",
        "ehc1:ABC",
        "EHC1:%%%%",
        "EHC1:\u{0}",
        "EHC1:😀😀",
    ] {
        let v = app.verify(&key, t);
        assert_eq!(v["reason"], "malformed", "{t:?}");
    }
    let long = format!("EHC1:{}", "0".repeat(3000));
    assert_eq!(app.verify(&key, &long)["reason"], "malformed");
    // Path identifiers that cannot exist: 404.
    assert_eq!(app.admin_get("/api/v1/cards/%00/access-log").status(), 404);
    assert_eq!(app.admin_get("/api/v1/cards/12345").status(), 404);
    // Garbage Authorization headers are 401.
    let r = app
        .get("/api/v1/clinics")
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .get("/api/v1/clinics")
        .header("authorization", "Bearer")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // Clinic creation with bad values.
    let r = app.admin_post(
        "/api/v1/clinics",
        json!({"code": "bad code!", "name": "x", "scopes": ["verify"]}),
    );
    assert_eq!(r.status(), 422);
    let r = app.admin_post(
        "/api/v1/clinics",
        json!({"code": "OK1", "name": "x", "scopes": ["root"]}),
    );
    assert_eq!(r.status(), 422);
    let r = app.admin_post(
        "/api/v1/clinics",
        json!({"code": "B1", "name": "dup", "scopes": ["verify"]}),
    );
    assert_eq!(error_code(r, 409), "clinic_code_taken");
}
