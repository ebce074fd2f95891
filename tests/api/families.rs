//! Families (issue 15): guardians added and removed by the card office,
//! every refusal code, what a holder credential reaches (and the 404 for
//! every other card), a minor's guardianship ending on the 18th birthday by
//! the injected clock, verification naming the guardians, and two nodes
//! racing a removal against mints.

use chrono::{Datelike, NaiveDate, Utc};
use reqwest::blocking::Response;
use serde_json::{json, Value};

use crate::helpers::{document, error_code, on_both_with, Backend, TestApp};

fn generous(s: &mut healthcard::config::Settings) {
    s.holder_rate_per_min = 100_000;
}

fn years_ago(years: i32, days: i64) -> NaiveDate {
    let t = Utc::now().date_naive();
    NaiveDate::from_ymd_opt(t.year() - years, t.month(), t.day().min(28)).unwrap()
        - chrono::Duration::days(days)
}

fn add(app: &TestApp, dependant: &str, body: Value) -> Response {
    app.admin_post(&format!("/api/v1/residents/{dependant}/guardians"), body)
}

fn remove(app: &TestApp, dependant: &str, guardian: &str) -> Response {
    app.client
        .delete(app.url(&format!(
            "/api/v1/residents/{dependant}/guardians/{guardian}"
        )))
        .bearer_auth(&app.admin_token)
        .send()
        .unwrap()
}

fn holder_get(app: &TestApp, cred: &str, path: &str) -> Response {
    app.get(path).bearer_auth(cred).send().unwrap()
}

fn holder_mint(app: &TestApp, cred: &str, card: Option<&str>) -> Response {
    let r = app.post("/api/v1/holder/tokens").bearer_auth(cred);
    match card {
        Some(c) => r.json(&json!({ "card_id": c })),
        None => r,
    }
    .send()
    .unwrap()
}

fn holder_log_actions(app: &TestApp, cred: &str, card: Option<&str>) -> Vec<String> {
    let path = match card {
        Some(c) => format!("/api/v1/holder/access-log?card_id={c}"),
        None => "/api/v1/holder/access-log".to_string(),
    };
    let r = holder_get(app, cred, &path);
    assert_eq!(r.status(), 200);
    r.json::<Vec<Value>>()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_rule_has_its_code_and_both_sides_see_the_change() {
    on_both_with(generous, |app| {
        let parent = app.register_born(years_ago(35, 0), 1, Some("13800138000"));
        let (_, parent_cred) = app.issue_card(&parent);
        let child = app.register_born(years_ago(6, 0), 2, None);
        let (_, child_cred) = app.issue_card(&child);
        let r = add(
            &app,
            &child,
            json!({"guardian_id": parent, "relation": "mother"}),
        );
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        assert_eq!(v["relation"], "mother");
        assert_eq!(v["relation_code"], "52");
        assert_eq!(v["consent"], false);
        assert!(v["ends_on"].is_string());
        // Twice: the pair is in force already.
        let r = add(
            &app,
            &child,
            json!({"guardian_id": parent, "relation": "mother"}),
        );
        assert_eq!(error_code(r, 409), "guardian_exists");
        // Oneself, and a cycle (the child as the parent's guardian).
        let r = add(
            &app,
            &parent,
            json!({"guardian_id": parent, "relation": "spouse"}),
        );
        assert_eq!(error_code(r, 422), "invalid_guardian");
        let r = add(
            &app,
            &parent,
            json!({"guardian_id": child, "relation": "child", "consent": true}),
        );
        assert_eq!(error_code(r, 422), "invalid_guardian");
        // An unknown relation, an unknown guardian, a malformed one.
        let r = add(
            &app,
            &child,
            json!({"guardian_id": parent, "relation": "uncle"}),
        );
        assert_eq!(error_code(r, 422), "invalid_relation");
        let stranger = uuid::Uuid::new_v4().to_string();
        let r = add(
            &app,
            &child,
            json!({"guardian_id": stranger, "relation": "father"}),
        );
        assert_eq!(error_code(r, 404), "not_found");
        let r = add(
            &app,
            &child,
            json!({"guardian_id": "nope", "relation": "father"}),
        );
        assert_eq!(error_code(r, 422), "invalid_guardian");
        // An adult dependant: consent or 422.
        let elder = app.register_born(years_ago(80, 0), 3, None);
        let r = add(
            &app,
            &elder,
            json!({"guardian_id": parent, "relation": "child"}),
        );
        assert_eq!(error_code(r, 422), "consent_required");
        let r = add(
            &app,
            &elder,
            json!({"guardian_id": parent, "relation": "child", "consent": true}),
        );
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        assert_eq!(v["consent"], true);
        // `child` takes 子 20 or 女 30 by the guardian's sex: sequence 101
        // (odd) is a man's.
        assert_eq!(v["relation_code"], "20");
        assert!(v.get("ends_on").is_none());
        // A cycle between adults: the elder as the parent's guardian.
        let r = add(
            &app,
            &parent,
            json!({"guardian_id": elder, "relation": "father", "consent": true}),
        );
        assert_eq!(error_code(r, 422), "invalid_guardian");
        // Up to four guardians.
        for n in 10..13 {
            let g = app.register_born(years_ago(40, n as i64), n, None);
            let r = add(
                &app,
                &child,
                json!({"guardian_id": g, "relation": "other_relative"}),
            );
            assert_eq!(r.status(), 201);
        }
        let fifth = app.register_born(years_ago(40, 20), 20, None);
        let r = add(
            &app,
            &child,
            json!({"guardian_id": fifth, "relation": "grandparent"}),
        );
        assert_eq!(error_code(r, 409), "too_many_guardians");
        // A minor is no guardian.
        let teen = app.register_born(years_ago(15, 0), 21, None);
        let r = add(
            &app,
            &elder,
            json!({"guardian_id": teen, "relation": "other_relative", "consent": true}),
        );
        assert_eq!(error_code(r, 422), "invalid_guardian");
        // The resident views list both sides.
        let v: Value = app
            .admin_get(&format!("/api/v1/residents/{child}"))
            .json()
            .unwrap();
        assert_eq!(v["guardians"].as_array().unwrap().len(), 4);
        let p: Value = app
            .admin_get(&format!("/api/v1/residents/{parent}"))
            .json()
            .unwrap();
        let deps: Vec<&str> = p["dependants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["resident_id"].as_str().unwrap())
            .collect();
        assert_eq!(deps.len(), 2);
        assert!(deps.contains(&child.as_str()) && deps.contains(&elder.as_str()));
        // Removal: 204, then 404; a slot is free again.
        assert_eq!(remove(&app, &child, &parent).status(), 204);
        assert_eq!(error_code(remove(&app, &child, &parent), 404), "not_found");
        let r = add(
            &app,
            &child,
            json!({"guardian_id": fifth, "relation": "grandparent"}),
        );
        assert_eq!(r.status(), 201);
        // Both residents' holder logs show the addition and the removal.
        for cred in [&parent_cred, &child_cred] {
            let actions = holder_log_actions(&app, cred, None);
            assert!(actions.iter().any(|a| a == "guardian.add"), "{actions:?}");
            assert!(
                actions.iter().any(|a| a == "guardian.remove"),
                "{actions:?}"
            );
        }
    });
}

#[test]
fn a_holder_reaches_own_and_dependants_active_cards_only() {
    on_both_with(generous, |app| {
        let (_, key) = app.clinic("PED1", &["verify"]);
        let parent = app.register_born(years_ago(35, 0), 1, Some("13912345678"));
        let (parent_card, parent_cred) = app.issue_card(&parent);
        let child = app.register_born(years_ago(4, 0), 2, None);
        let (child_card, child_cred) = app.issue_card(&child);
        let sibling = app.register_born(years_ago(2, 0), 3, None);
        let (sibling_card, _) = app.issue_card(&sibling);
        let (_, stranger_card, _) = app.resident_with_card(77);
        for dep in [&child, &sibling] {
            let r = add(
                &app,
                dep,
                json!({"guardian_id": parent, "relation": "father"}),
            );
            assert_eq!(r.status(), 201);
        }
        // The list: own card first, then each dependant's.
        let cards: Vec<Value> = holder_get(&app, &parent_cred, "/api/v1/holder/cards")
            .json()
            .unwrap();
        assert_eq!(cards.len(), 3);
        assert_eq!(cards[0]["card_id"], parent_card.as_str());
        assert_eq!(cards[0]["relation"], "self");
        assert!(cards.iter().any(|c| c["card_id"] == child_card.as_str()
            && c["relation"] == "father"
            && c["status"] == "active"));
        // A token minted for the child verifies as the child, naming the guardian.
        let r = holder_mint(&app, &parent_cred, Some(&child_card));
        assert_eq!(r.status(), 201);
        let tok = r.json::<Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let v = app.verify(&key, &tok);
        assert_eq!(v["valid"], true);
        assert_eq!(v["card_id"], child_card.as_str());
        assert_eq!(v["resident"]["id"], child.as_str());
        let g = &v["resident"]["guardians"][0];
        assert_eq!(g["relation"], "father");
        assert_eq!(g["phone_masked"], "139****5678");
        assert!(g.get("resident_id").is_none());
        assert!(!v.to_string().contains("13912345678"));
        // The parent's own card: no guardians in its answer.
        let own = holder_mint(&app, &parent_cred, None)
            .json::<Value>()
            .unwrap();
        let v = app.verify(&key, own["token"].as_str().unwrap());
        assert_eq!(v["card_id"], parent_card.as_str());
        assert!(v["resident"].get("guardians").is_none());
        // The QR routes and the child's access log, by card_id.
        for p in ["qr.svg", "qr.png"] {
            let r = holder_get(
                &app,
                &parent_cred,
                &format!("/api/v1/holder/{p}?card_id={child_card}"),
            );
            assert_eq!(r.status(), 200, "{p}");
        }
        let actions = holder_log_actions(&app, &parent_cred, Some(&child_card));
        assert!(actions.iter().any(|a| a == "verify"));
        // Every other card is 404 on every route: a stranger's ...
        let not_reached = |card: &str| {
            assert_eq!(
                error_code(holder_mint(&app, &parent_cred, Some(card)), 404),
                "not_found"
            );
            for p in ["qr.svg", "qr.png", "access-log"] {
                let r = holder_get(
                    &app,
                    &parent_cred,
                    &format!("/api/v1/holder/{p}?card_id={card}"),
                );
                assert_eq!(error_code(r, 404), "not_found", "{p} {card}");
            }
        };
        not_reached(&stranger_card);
        not_reached(&uuid::Uuid::new_v4().to_string());
        // ... a dependant's revoked card, and its replaced one ...
        let r = app.admin_post(&format!("/api/v1/cards/{sibling_card}/reissue"), json!({}));
        assert_eq!(r.status(), 201);
        let new_sibling_card = r.json::<Value>().unwrap()["card"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        not_reached(&sibling_card);
        assert_eq!(
            holder_mint(&app, &parent_cred, Some(&new_sibling_card)).status(),
            201
        );
        let r = app.admin_post(
            &format!("/api/v1/cards/{new_sibling_card}/suspend"),
            json!({}),
        );
        assert_eq!(r.status(), 200);
        not_reached(&new_sibling_card);
        let r = app.admin_post(
            &format!("/api/v1/cards/{new_sibling_card}/revoke"),
            json!({}),
        );
        assert_eq!(r.status(), 200);
        not_reached(&new_sibling_card);
        // ... a former dependant's, at once after the removal.
        assert_eq!(remove(&app, &child, &parent).status(), 204);
        not_reached(&child_card);
        let cards: Vec<Value> = holder_get(&app, &parent_cred, "/api/v1/holder/cards")
            .json()
            .unwrap();
        assert_eq!(cards.len(), 1);
        // The child's own credential never reaches the parent's card.
        assert_eq!(
            error_code(holder_mint(&app, &child_cred, Some(&parent_card)), 404),
            "not_found"
        );
        let r = add(
            &app,
            &child,
            json!({"guardian_id": parent, "relation": "father"}),
        );
        assert_eq!(r.status(), 201);
        // Replacing the guardian's card: the old credential is dead (401),
        // the new one reaches the child.
        let r = app.admin_post(&format!("/api/v1/cards/{parent_card}/reissue"), json!({}));
        assert_eq!(r.status(), 201);
        let new_cred = r.json::<Value>().unwrap()["holder_credential"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            error_code(holder_mint(&app, &parent_cred, Some(&child_card)), 401),
            "unauthorized"
        );
        assert_eq!(
            holder_mint(&app, &new_cred, Some(&child_card)).status(),
            201
        );
        // A malformed card_id is a 404 too (a path id that cannot exist).
        let r = holder_mint(&app, &new_cred, Some("not-a-card"));
        assert_eq!(r.status(), 404);
    });
}

#[test]
fn a_minors_guardianship_ends_on_the_eighteenth_birthday() {
    on_both_with(generous, |app| {
        let parent = app.register_born(years_ago(45, 0), 1, None);
        let (_, parent_cred) = app.issue_card(&parent);
        // Turns 18 in ten days.
        let birth = years_ago(18, -10);
        let teen = app.register_born(birth, 2, None);
        let (teen_card, teen_cred) = app.issue_card(&teen);
        let r = add(
            &app,
            &teen,
            json!({"guardian_id": parent, "relation": "mother"}),
        );
        assert_eq!(r.status(), 201);
        let birthday = healthcard::domain::birthday(birth, 18);
        assert_eq!(r.json::<Value>().unwrap()["ends_on"], birthday.to_string());
        assert_eq!(
            holder_mint(&app, &parent_cred, Some(&teen_card)).status(),
            201
        );
        // The day before: still in force; housekeeping ends nothing.
        app.ctx.clock.move_to(birthday.pred_opt().unwrap());
        assert_eq!(
            healthcard::service::families::end_by_birthdays(&app.ctx).unwrap(),
            0
        );
        assert_eq!(
            holder_mint(&app, &parent_cred, Some(&teen_card)).status(),
            201
        );
        // On the birthday reads treat it as ended before housekeeping runs ...
        app.ctx.clock.move_to(birthday);
        assert_eq!(
            error_code(holder_mint(&app, &parent_cred, Some(&teen_card)), 404),
            "not_found"
        );
        let cards: Vec<Value> = holder_get(&app, &parent_cred, "/api/v1/holder/cards")
            .json()
            .unwrap();
        assert_eq!(cards.len(), 1);
        let v: Value = app
            .admin_get(&format!("/api/v1/residents/{teen}"))
            .json()
            .unwrap();
        assert_eq!(v["guardians"].as_array().unwrap().len(), 0);
        // ... and housekeeping writes the end, once, in both logs.
        healthcard::service::housekeeping::purge(&app.ctx, Utc::now().naive_utc());
        assert_eq!(
            healthcard::service::families::end_by_birthdays(&app.ctx).unwrap(),
            0
        );
        for cred in [&parent_cred, &teen_cred] {
            let actions = holder_log_actions(&app, cred, None);
            assert_eq!(
                actions.iter().filter(|a| *a == "guardian.end").count(),
                1,
                "{actions:?}"
            );
        }
        // Now an adult: a new guardianship needs consent.
        let r = add(
            &app,
            &teen,
            json!({"guardian_id": parent, "relation": "mother"}),
        );
        assert_eq!(error_code(r, 422), "consent_required");
    });
}

#[test]
fn a_newborn_is_registered_under_a_guardian_and_gets_documents_later() {
    on_both_with(generous, |app| {
        let parent = app.register_born(years_ago(30, 0), 1, None);
        let (_, parent_cred) = app.issue_card(&parent);
        let newborn = |birth: NaiveDate, guardians: Value| {
            app.admin_post(
                "/api/v1/residents",
                json!({"name": "小明", "sex": "male", "birth_date": birth, "guardians": guardians}),
            )
        };
        let today = Utc::now().date_naive();
        let one = json!([{"guardian_id": parent, "relation": "mother"}]);
        // Checked: under one year, a known adult guardian, a known relation.
        let r = newborn(today - chrono::Duration::days(400), one.clone());
        assert_eq!(error_code(r, 422), "not_newborn");
        let r = newborn(today, json!([{"guardian_id": parent, "relation": "aunt"}]));
        assert_eq!(error_code(r, 422), "invalid_relation");
        let r = newborn(
            today,
            json!([{"guardian_id": uuid::Uuid::new_v4(), "relation": "mother"}]),
        );
        assert_eq!(error_code(r, 404), "not_found");
        let minor = app.register_born(years_ago(15, 0), 2, None);
        let r = newborn(today, json!([{"guardian_id": minor, "relation": "mother"}]));
        assert_eq!(error_code(r, 422), "invalid_guardian");
        // No document and no guardian.
        let r = app.admin_post("/api/v1/residents", json!({"name": "小明"}));
        assert_eq!(error_code(r, 422), "document_required");
        // None of the refusals left a resident in the guardian's family.
        let family: Value = app
            .admin_get(&format!("/api/v1/residents/{parent}"))
            .json()
            .unwrap();
        assert_eq!(family["dependants"].as_array().unwrap().len(), 0);

        // Registered: no document yet, the guardian in force on both sides.
        let r = newborn(today - chrono::Duration::days(3), one);
        assert_eq!(r.status(), 201);
        let baby: Value = r.json().unwrap();
        let baby_id = baby["id"].as_str().unwrap().to_string();
        assert_eq!(baby["documents"].as_array().unwrap().len(), 0);
        assert!(baby.get("national_id_masked").is_none_or(Value::is_null));
        let view: Value = app
            .admin_get(&format!("/api/v1/residents/{baby_id}"))
            .json()
            .unwrap();
        assert_eq!(view["guardians"][0]["resident_id"], parent.as_str());
        assert_eq!(view["guardians"][0]["relation"], "mother");
        let family: Value = app
            .admin_get(&format!("/api/v1/residents/{parent}"))
            .json()
            .unwrap();
        assert_eq!(family["dependants"][0]["resident_id"], baby_id.as_str());

        // A card, reached from the mother's phone; it verifies as the baby.
        let (baby_card, _) = app.issue_card(&baby_id);
        let cards: Vec<Value> = holder_get(&app, &parent_cred, "/api/v1/holder/cards")
            .json()
            .unwrap();
        assert!(cards
            .iter()
            .any(|c| c["card_id"] == baby_card.as_str() && c["relation"] == "mother"));

        // The birth certificate comes later: the same resident, the same card.
        let cert = document("birth_certificate", 77);
        let r = app.admin_post(
            &format!("/api/v1/residents/{baby_id}/documents"),
            cert.clone(),
        );
        assert_eq!(r.status(), 201);
        let after: Value = r.json().unwrap();
        assert_eq!(after["id"], baby_id.as_str());
        assert_eq!(after["documents"][0]["type"], "birth_certificate");
        let found: Value = app
            .admin_post("/api/v1/residents/search", json!({"document": cert}))
            .json()
            .unwrap();
        assert!(found.to_string().contains(&baby_id));
        let cards: Vec<Value> = holder_get(&app, &parent_cred, "/api/v1/holder/cards")
            .json()
            .unwrap();
        assert!(cards.iter().any(|c| c["card_id"] == baby_card.as_str()));
    });
}

/// Two nodes on one PostgreSQL database: node B mints for the dependant
/// through the guardian's credential while node A removes the guardian.
/// Every mint that starts after the removal answered is refused.
#[test]
fn two_nodes_race_a_removal_against_mints() {
    let Some(url) = crate::common::db::fresh_pg_url() else {
        return;
    };
    let master = healthcard::crypto::MasterKey::generate().to_base64();
    let node = |admin: &str| {
        let (url, m) = (url.clone(), master.clone());
        crate::helpers::spawn_app_as(Backend::Postgres, admin, move |s| {
            s.database_url = url;
            s.master_key = Some(m);
            generous(s);
        })
        .unwrap()
    };
    let a = node("admin");
    let b = node("admin2");
    let parent = a.register_born(years_ago(35, 0), 1, None);
    let (_, cred) = a.issue_card(&parent);
    let child = a.register_born(years_ago(3, 0), 2, None);
    let (child_card, _) = a.issue_card(&child);
    assert_eq!(
        add(
            &a,
            &child,
            json!({"guardian_id": parent, "relation": "father"})
        )
        .status(),
        201
    );
    let removed_at = std::sync::Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let done = removed_at.clone();
    let minter = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut after = 0;
        for _ in 0..5000 {
            let started = std::time::Instant::now();
            let removal = *done.lock().unwrap();
            let status = holder_mint(&b, &cred, Some(&child_card)).status().as_u16();
            seen.push((started, removal.is_some_and(|t| started > t), status));
            if removal.is_some() {
                after += 1;
                if after >= 30 {
                    break;
                }
            }
        }
        seen
    });
    // Let some mints through first.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(remove(&a, &child, &parent).status(), 204);
    *removed_at.lock().unwrap() = Some(std::time::Instant::now());
    let seen = minter.join().unwrap();
    let before_ok = seen
        .iter()
        .filter(|(_, after, s)| !after && *s == 201)
        .count();
    let after: Vec<u16> = seen
        .iter()
        .filter(|(_, a, _)| *a)
        .map(|(_, _, s)| *s)
        .collect();
    assert!(before_ok > 0, "no mint succeeded before the removal");
    assert!(after.len() >= 30, "{} mints after the removal", after.len());
    assert!(
        after.iter().all(|s| *s == 404),
        "a mint after the removal: {after:?}"
    );
}
