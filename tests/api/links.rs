//! `POST /api/v1/links` needs a live card and a recent verification of it
//! by the same clinic (issue 12).

use healthcard::store::access_log::{self, ActorKind, NewLogEntry};
use serde_json::json;

use crate::helpers::{error_code, on_both, TestApp};

fn link(app: &TestApp, key: &str, card: &str, mrn: &str) -> reqwest::blocking::Response {
    app.post("/api/v1/links")
        .bearer_auth(key)
        .json(&json!({"card_id": card, "local_patient_id": mrn}))
        .send()
        .unwrap()
}

#[test]
fn links_refuse_revoked_and_replaced_cards() {
    on_both(|app| {
        let (_, key) = app.clinic("L1", &["verify", "link"]);
        let (_, revoked, _) = app.resident_with_card(60);
        assert_eq!(
            app.verify(&key, &app.mint(&revoked, "static"))["valid"],
            true
        );
        let r = app.admin_post(&format!("/api/v1/cards/{revoked}/revoke"), json!({}));
        assert_eq!(r.status(), 200);
        assert_eq!(
            error_code(link(&app, &key, &revoked, "R-1"), 409),
            "card_revoked"
        );

        let (_, replaced, _) = app.resident_with_card(61);
        assert_eq!(
            app.verify(&key, &app.mint(&replaced, "static"))["valid"],
            true
        );
        let r = app.admin_post(&format!("/api/v1/cards/{replaced}/reissue"), json!({}));
        assert_eq!(r.status(), 201);
        let new_card = r.json::<serde_json::Value>().unwrap()["card"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            error_code(link(&app, &key, &replaced, "R-2"), 409),
            "card_replaced"
        );
        // The new card, once scanned, links.
        assert_eq!(
            app.verify(&key, &app.mint(&new_card, "static"))["valid"],
            true
        );
        assert_eq!(link(&app, &key, &new_card, "R-2").status(), 201);
    });
}

#[test]
fn links_need_a_valid_scan_by_this_clinic_within_the_window() {
    on_both(|app| {
        let (clinic, key) = app.clinic("L2", &["verify", "link"]);
        let (_, other) = app.clinic("L3", &["verify", "link"]);
        let (_, card, _) = app.resident_with_card(62);
        assert_eq!(
            error_code(link(&app, &key, &card, "W-1"), 409),
            "no_recent_scan"
        );
        // Another clinic's scan is not this clinic's.
        assert_eq!(
            app.verify(&other, &app.mint(&card, "static"))["valid"],
            true
        );
        assert_eq!(
            error_code(link(&app, &key, &card, "W-1"), 409),
            "no_recent_scan"
        );
        // A valid scan by this clinic, but older than the window (24 h).
        let mut old = NewLogEntry::new(ActorKind::Clinic, "L2", "verify");
        old.at = healthcard::store::now() - chrono::Duration::hours(25);
        old.card_id = Some(card.parse().unwrap());
        old.clinic_id = Some(clinic["id"].as_str().unwrap().parse().unwrap());
        old.outcome = Some("valid".into());
        access_log::append(
            &mut app.ctx.conn().unwrap(),
            &app.ctx.master.chain_key(),
            &[old],
        )
        .unwrap();
        assert_eq!(
            error_code(link(&app, &key, &card, "W-1"), 409),
            "no_recent_scan"
        );
        // A scan that did not verify does not count either.
        let before = app.mint(&card, "static");
        let suspend = app.admin_post(&format!("/api/v1/cards/{card}/suspend"), json!({}));
        assert_eq!(suspend.status(), 200);
        assert_eq!(app.verify(&key, &before)["reason"], "card_suspended");
        assert_eq!(
            error_code(link(&app, &key, &card, "W-1"), 409),
            "no_recent_scan"
        );
        let r = app.admin_post(&format!("/api/v1/cards/{card}/reinstate"), json!({}));
        assert_eq!(r.status(), 200);
        // Scanned now: linked.
        assert_eq!(app.verify(&key, &app.mint(&card, "static"))["valid"], true);
        assert_eq!(link(&app, &key, &card, "W-1").status(), 201);
    });
}
