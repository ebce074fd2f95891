//! `POST /api/v1/residents/{id}/merge` (issue 14, API-2.md): a temporary or
//! duplicate resident merged into the real one, in one transaction.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use serde_json::{json, Value};

use crate::helpers::{error_code, on_both, spawn_app_as, spawn_app_with, Backend, TestApp};

fn link(app: &TestApp, key: &str, card: &str, mrn: &str) {
    assert_eq!(app.verify(key, &app.mint(card, "static"))["valid"], true);
    let r = app
        .post("/api/v1/links")
        .bearer_auth(key)
        .json(&json!({"card_id": card, "local_patient_id": mrn}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "link {mrn}");
}

fn merge(app: &TestApp, source: &str, into: &str) -> reqwest::blocking::Response {
    app.admin_post(
        &format!("/api/v1/residents/{source}/merge"),
        json!({ "into": into }),
    )
}

fn resident(app: &TestApp, id: &str) -> Value {
    let r = app.admin_get(&format!("/api/v1/residents/{id}"));
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn linked_to(app: &TestApp, key: &str, mrn: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/links?local_patient_id={mrn}"))
        .bearer_auth(key)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn log_len(app: &TestApp) -> i64 {
    healthcard::store::access_log::current_head(&mut app.ctx.conn().unwrap())
        .unwrap()
        .0
}

fn chain_whole(app: &TestApp) {
    let report = healthcard::store::access_log::verify_chain(
        &mut app.ctx.conn().unwrap(),
        &app.ctx.master.chain_key(),
    )
    .unwrap();
    assert!(report.first_bad.is_none(), "{report:?}");
}

#[test]
fn merge_moves_links_replaces_cards_and_keeps_both_histories() {
    on_both(|app| {
        let (_, k1) = app.clinic("M1", &["verify", "link"]);
        let (_, k2) = app.clinic("M2", &["verify", "link"]);
        let (source, s_card, _) = app.resident_with_card(700);
        let (into, t_card, t_holder) = app.resident_with_card(701);
        let s_token = app.mint(&s_card, "static");
        link(&app, &k1, &s_card, "S-1");
        link(&app, &k2, &t_card, "T-1");

        let r = merge(&app, &source, &into);
        assert_eq!(r.status(), 200);
        let done: Value = r.json().unwrap();
        assert_eq!(done["source"], source.as_str());
        assert_eq!(done["merged_into"], into.as_str());
        assert_eq!(done["replaced_by"], t_card.as_str());
        assert_eq!(done["replaced_cards"], json!([s_card]));
        assert_eq!(done["moved_links"], 1);

        // The source answers merged_into; its card is replaced by the target's.
        let s = resident(&app, &source);
        assert_eq!(s["merged_into"], into.as_str());
        assert_eq!(s["cards"][0]["status"], "replaced");
        assert_eq!(s["cards"][0]["replaced_by"], t_card.as_str());
        let t = resident(&app, &into);
        assert!(t.get("merged_into").is_none(), "{t}");
        assert_eq!(t["cards"][0]["status"], "active");

        // The clinic's number now names the target and its card.
        let l = linked_to(&app, &k1, "S-1");
        assert_eq!(l["resident_id"], into.as_str());
        assert_eq!(l["card_id"], t_card.as_str());

        // A token of the merged card answers as a replaced card does.
        let v = app.verify(&k1, &s_token);
        assert_eq!(v["valid"], false);
        assert_eq!(v["reason"], "card_replaced");
        // And the target's card answers with M1's number that moved.
        let v = app.verify(&k1, &app.mint(&t_card, "static"));
        assert_eq!(v["valid"], true);
        assert_eq!(v["local_patient_id"], "S-1");

        // The holder of the target sees both histories: M1's scan of the
        // source's card before the merge, and M2's of their own.
        let log: Value = app
            .get("/api/v1/holder/access-log")
            .bearer_auth(&t_holder)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let rows = log.as_array().unwrap();
        let verified = |card: &str| {
            rows.iter()
                .any(|r| r["action"] == "verify" && r["card_id"] == card && r["outcome"] == "valid")
        };
        assert!(verified(&s_card), "{log}");
        assert!(verified(&t_card), "{log}");
        assert!(
            rows.iter().any(|r| r["action"] == "resident.merge"),
            "{log}"
        );

        // The merged card's own log records where it went.
        let card_log: Value = app
            .admin_get(&format!("/api/v1/cards/{s_card}/access-log"))
            .json()
            .unwrap();
        let m = card_log
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "resident.merge")
            .expect("merge row on the source's card");
        assert_eq!(m["actor"], "admin");

        // FHIR: the old record is inactive and points at the real one, for
        // a clinic whose number moved there; the real one is active.
        let fhir = |id: &str| -> Value {
            let r = app
                .get(&format!("/fhir/Patient/{id}"))
                .bearer_auth(&k1)
                .header("accept", "application/fhir+json")
                .send()
                .unwrap();
            assert_eq!(r.status(), 200, "Patient/{id}");
            r.json().unwrap()
        };
        let old = fhir(&source);
        assert_eq!(old["active"], false, "{old}");
        assert_eq!(old["link"][0]["type"], "replaced-by");
        assert_eq!(
            old["link"][0]["other"]["reference"],
            format!("Patient/{into}")
        );
        let real = fhir(&into);
        assert_eq!(real["active"], true, "{real}");
        assert!(real.get("link").is_none(), "{real}");

        // A PIXm feed naming the old record links to the real one.
        let r = app
            .client
            .put(app.url("/fhir/Patient"))
            .bearer_auth(&k1)
            .query(&[("identifier", "urn:healthcard:HC:clinic:M1:mrn|S-9")])
            .header("content-type", "application/fhir+json")
            .body(
                json!({"resourceType": "Patient",
                       "identifier": [{"system": "urn:healthcard:HC:resident", "value": source}]})
                .to_string(),
            )
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        assert_eq!(linked_to(&app, &k1, "S-9")["resident_id"], into.as_str());

        // Nothing is added to a merged record any more.
        let r = app.admin_post(&format!("/api/v1/residents/{source}/cards"), json!({}));
        assert_eq!(error_code(r, 409), "resident_merged");
        let r = app.admin_post(
            &format!("/api/v1/residents/{source}/documents"),
            crate::helpers::document("passport", 704),
        );
        assert_eq!(error_code(r, 409), "resident_merged");

        // Offline kiosks learn of the replaced card from the feed.
        let feed: Value = app
            .get("/api/v1/revocations?since=0")
            .bearer_auth(&k1)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(feed.to_string().contains(&s_card), "{feed}");
        chain_whole(&app);
    });
}

#[test]
fn merge_refusals_leave_nothing_half_written() {
    on_both(|app| {
        let (_, k1) = app.clinic("M3", &["verify", "link"]);
        let (source, s_card, _) = app.resident_with_card(710);
        let (into, t_card, _) = app.resident_with_card(711);
        let s_token = app.mint(&s_card, "static");

        assert_eq!(error_code(merge(&app, &source, &source), 422), "merge_self");
        let nobody = uuid::Uuid::new_v4().to_string();
        assert_eq!(error_code(merge(&app, &source, &nobody), 404), "not_found");
        assert_eq!(error_code(merge(&app, &nobody, &into), 404), "not_found");
        assert_eq!(
            error_code(merge(&app, &source, "not-a-uuid"), 404),
            "not_found"
        );
        let r = app.admin_post(
            &format!("/api/v1/residents/{source}/merge"),
            json!({"into": into, "extra": 1}),
        );
        assert!(r.status().is_client_error(), "{}", r.status());
        // Without an administrator: 401.
        let r = app
            .post(&format!("/api/v1/residents/{source}/merge"))
            .json(&json!({ "into": into }))
            .send()
            .unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");

        // Both have a number at M3: refused rather than pick one.
        link(&app, &k1, &s_card, "S-3");
        link(&app, &k1, &t_card, "T-3");
        let before = log_len(&app);
        assert_eq!(
            error_code(merge(&app, &source, &into), 409),
            "merge_conflict"
        );
        assert_eq!(log_len(&app), before, "a refused merge writes no log row");
        assert!(resident(&app, &source).get("merged_into").is_none());
        assert_eq!(resident(&app, &source)["cards"][0]["status"], "active");
        assert_eq!(linked_to(&app, &k1, "S-3")["resident_id"], source.as_str());
        assert_eq!(app.verify(&k1, &s_token)["valid"], true);

        // A target without a live card: refused, nothing changed.
        let (other, o_card, _) = app.resident_with_card(712);
        let bare = app.register(713)["id"].as_str().unwrap().to_string();
        assert_eq!(
            error_code(merge(&app, &other, &bare), 409),
            "merge_target_no_card"
        );
        assert_eq!(resident(&app, &other)["cards"][0]["status"], "active");

        // Merged once; a second merge of it, or into it, is refused.
        assert_eq!(merge(&app, &other, &into).status(), 200);
        assert_eq!(
            error_code(merge(&app, &other, &into), 409),
            "already_merged"
        );
        assert_eq!(
            error_code(merge(&app, &source, &other), 409),
            "already_merged"
        );
        assert_eq!(resident(&app, &other)["merged_into"], into.as_str());
        let o = resident(&app, &other);
        assert_eq!(o["cards"][0]["id"], o_card.as_str());
        assert_eq!(o["cards"][0]["replaced_by"], t_card.as_str());
        chain_whole(&app);
    });
}

#[test]
fn merge_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = d.join("healthcard.db").display().to_string();
    let run = |args: &[&str]| crate::helpers::cli(d, Some(&url), args, None);
    crate::helpers::ok(&run(&["migrate"]));
    let ctx = healthcard::service::AppContext::open_existing(healthcard::config::Settings {
        data_dir: d.to_path_buf(),
        database_url: url.clone(),
        ..Default::default()
    })
    .unwrap()
    .0;
    let actor = healthcard::service::registry::Actor::system("test");
    let reg = |n: u32| {
        let id = healthcard::domain::NationalId::parse(&crate::helpers::national_id(n)).unwrap();
        let new = healthcard::store::residents::NewResident::with_national_id(
            healthcard::domain::PersonName::parse("王五").unwrap(),
            id,
            None,
        );
        let r = healthcard::service::registry::register_resident(
            &ctx,
            &actor,
            &new,
            healthcard::store::Conflict::NationalIdRegistered,
        )
        .unwrap();
        healthcard::service::registry::issue_card(&ctx, &actor, r.id).unwrap();
        r.id.to_string()
    };
    let (source, into) = (reg(720), reg(721));
    drop(ctx);
    let out = crate::helpers::ok(&run(&["resident", "merge", &source, &into]));
    assert!(out.contains(&into), "{out}");
    let e = crate::helpers::err(&run(&["resident", "merge", &source, &into]));
    assert!(e.contains("already merged"), "{e}");
    let e = crate::helpers::err(&run(&["resident", "merge", &into, &into]));
    assert!(e.contains("itself"), "{e}");
    // The legacy import takes nothing more for the merged record: its row
    // is a bad row; the real record's row links.
    crate::helpers::ok(&run(&[
        "clinic",
        "create",
        "--code",
        "OLD",
        "--name",
        "旧医院",
        "--scopes",
        "verify,link",
    ]));
    let csv = d.join("legacy.csv");
    std::fs::write(
        &csv,
        format!(
            "local_patient_id,name,national_id,phone\nL-1,王五,{},\nL-2,王五,{},\n",
            crate::helpers::national_id(720),
            crate::helpers::national_id(721)
        ),
    )
    .unwrap();
    let o = run(&["import-legacy", "--clinic", "OLD", csv.to_str().unwrap()]);
    let out = crate::helpers::ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("merged into another record"),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["links_created"], 1, "{v}");
}

/// Verifications of the source's card on two nodes while it is merged:
/// every answer is a 200, valid before the merge and card_replaced after
/// it, never a 500; a second merge of the same source at the same moment
/// on the other node gets already_merged.
#[test]
fn merge_racing_verifications_on_two_nodes() {
    let Some(url) = crate::common::db::fresh_pg_url() else {
        // SQLite: one node, the same race within it.
        if let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}) {
            race(&app, &app);
        }
        return;
    };
    let master = healthcard::crypto::MasterKey::generate().to_base64();
    let (u, m) = (url.clone(), master.clone());
    let a = spawn_app_with(Backend::Postgres, move |s| {
        s.database_url = u;
        s.master_key = Some(m);
    })
    .unwrap();
    let b = spawn_app_as(Backend::Postgres, "admin2", move |s| {
        s.database_url = url;
        s.master_key = Some(master);
    })
    .unwrap();
    race(&a, &b);
    if let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}) {
        race(&app, &app);
    }
}

fn race(a: &TestApp, b: &TestApp) {
    let (_, key) = a.clinic("RACE", &["verify"]);
    let (source, s_card, _) = a.resident_with_card(730);
    let (into, _, _) = a.resident_with_card(731);
    let (other, _, _) = a.resident_with_card(732);
    let late = a.mint(&s_card, "static");
    let tokens: Vec<String> = (0..24)
        .map(|i| a.mint(&s_card, if i % 2 == 0 { "static" } else { "dynamic" }))
        .collect();
    let barrier = Arc::new(Barrier::new(tokens.len() + 2));
    let merged_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    std::thread::scope(|s| {
        let mut verifiers = Vec::new();
        for (i, tok) in tokens.iter().enumerate() {
            let (barrier, key) = (barrier.clone(), key.clone());
            let node = if i % 2 == 0 { a } else { b };
            verifiers.push(s.spawn(move || {
                barrier.wait();
                std::thread::sleep(std::time::Duration::from_millis((i as u64 % 6) * 15));
                let sent = Instant::now();
                let r = node
                    .post("/api/v1/verify")
                    .bearer_auth(&key)
                    .json(&json!({"token": tok, "channel": "window"}))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 200, "a verification during a merge");
                let v: Value = r.json().unwrap();
                (sent, v)
            }));
        }
        let merges: Vec<_> = [(a, into.clone()), (b, other.clone())]
            .into_iter()
            .map(|(node, target)| {
                let (barrier, merged_at, source) =
                    (barrier.clone(), merged_at.clone(), source.clone());
                s.spawn(move || {
                    barrier.wait();
                    std::thread::sleep(std::time::Duration::from_millis(30));
                    let r = merge(node, &source, &target);
                    let status = r.status().as_u16();
                    if status == 200 {
                        *merged_at.lock().unwrap() = Some(Instant::now());
                    }
                    (status, r.json::<Value>().unwrap(), target)
                })
            })
            .collect();
        let merges: Vec<_> = merges.into_iter().map(|h| h.join().unwrap()).collect();
        let won: Vec<_> = merges.iter().filter(|m| m.0 == 200).collect();
        assert_eq!(won.len(), 1, "exactly one merge wins: {merges:?}");
        let lost = merges.iter().find(|m| m.0 != 200).unwrap();
        assert_eq!(lost.0, 409, "{lost:?}");
        assert_eq!(lost.1["code"], "already_merged");
        let merged_at = merged_at.lock().unwrap().unwrap();
        let mut valid = 0;
        for h in verifiers {
            let (sent, v) = h.join().unwrap();
            match v["valid"].as_bool().unwrap() {
                true => {
                    valid += 1;
                    assert!(sent < merged_at, "valid after the merge answered: {v}");
                    assert_eq!(v["card_id"], s_card.as_str());
                }
                false => assert_eq!(v["reason"], "card_replaced", "{v}"),
            }
        }
        eprintln!("race: {valid} of {} valid before the merge", tokens.len());
        // The winner's target is where the source went; the card is dead.
        let s = resident(a, &source);
        assert_eq!(s["merged_into"], won[0].2.as_str());
        assert_eq!(s["cards"][0]["status"], "replaced");
        let v = b.verify(&key, &late);
        assert_eq!(v["reason"], "card_replaced");
    });
    chain_whole(a);
}

/// The portal's merge: the confirmation page names both records (zh-CN and
/// English), the form needs its CSRF token and the box ticked, a refusal
/// says why on the page, and a merge lands on the real record.
#[test]
fn portal_merge_confirms_with_both_records() {
    on_both(|app| {
        let (_, key) = app.clinic("M9", &["verify", "link"]);
        let p = |n: u32, name: &str| {
            let r = app.admin_post(
                "/api/v1/residents",
                json!({"name": name, "national_id": crate::helpers::national_id(n)}),
            );
            assert_eq!(r.status(), 201);
            let id = r.json::<Value>().unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            let (card, _) = app.issue_card(&id);
            (id, card)
        };
        let (source, s_card) = p(740, "临时患者甲");
        let (into, t_card) = p(741, "李四真名");
        let csrf_cookie = "D".repeat(43);
        let csrf = healthcard::web::csrf::token_for(&csrf_cookie);
        let cookie = format!("hc_session={}; hc_csrf={csrf_cookie}", app.admin_token);
        let get = |path: &str, lang: &str| {
            app.get(path)
                .header("cookie", format!("{cookie}; hc_lang={lang}"))
                .send()
                .unwrap()
        };
        let post = |form: &[(&str, &str)]| {
            app.client
                .post(app.url(&format!("/admin/residents/{source}/merge")))
                .header("cookie", &cookie)
                .header("origin", &app.base)
                .form(form)
                .send()
                .unwrap()
        };
        // The resident page offers the merge; the first step asks for the real record.
        let page = get(&format!("/admin/residents/{source}"), "zh-CN")
            .text()
            .unwrap();
        assert!(
            page.contains(&format!("/admin/residents/{source}/merge")),
            "{page}"
        );
        let r = get(&format!("/admin/residents/{source}/merge"), "en");
        assert_eq!(r.status(), 200);
        assert!(r.text().unwrap().contains("Shown on the real record"));
        let r = get(
            &format!("/admin/residents/{source}/merge?into=nonsense"),
            "en",
        );
        assert_eq!(r.status(), 422);
        assert!(r.text().unwrap().contains("No record has this id"));
        // The confirmation names both records, in both languages.
        for (lang, words) in [("zh-CN", "确认合并"), ("en", "Confirm the merge")] {
            let r = get(
                &format!("/admin/residents/{source}/merge?into={into}"),
                lang,
            );
            assert_eq!(r.status(), 200);
            let text = r.text().unwrap();
            assert!(text.contains(words), "{text}");
            assert!(
                text.contains("临时患者甲") && text.contains("李四真名"),
                "{text}"
            );
            assert!(text.contains("name=\"csrf\""), "{text}");
        }
        // Without its CSRF token, or without the box: nothing happens.
        let r = post(&[("into", into.as_str()), ("confirm", "yes")]);
        assert_eq!(r.status(), 403);
        let r = post(&[("into", into.as_str()), ("csrf", csrf.as_str())]);
        assert_eq!(r.status(), 422);
        assert!(resident(&app, &source).get("merged_into").is_none());
        // A conflict is said on the page, and nothing is merged.
        link(&app, &key, &s_card, "P-1");
        link(&app, &key, &t_card, "P-2");
        let r = post(&[
            ("into", into.as_str()),
            ("confirm", "yes"),
            ("csrf", csrf.as_str()),
        ]);
        assert_eq!(r.status(), 409);
        assert!(r.text().unwrap().contains("同一医疗机构"));
        assert!(resident(&app, &source).get("merged_into").is_none());
        // Once the clinic's numbers are out of the way, the merge goes through.
        let (other, _) = p(742, "临时患者乙");
        let r = app
            .client
            .post(app.url(&format!("/admin/residents/{other}/merge")))
            .header("cookie", &cookie)
            .header("origin", &app.base)
            .form(&[
                ("into", into.as_str()),
                ("confirm", "yes"),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .unwrap();
        assert!(
            r.status().is_redirection() || r.status() == 200,
            "{}",
            r.status()
        );
        assert_eq!(resident(&app, &other)["merged_into"], into.as_str());
        let page = get(&format!("/admin/residents/{other}"), "en")
            .text()
            .unwrap();
        assert!(page.contains("This record was merged into"), "{page}");
        assert!(!page.contains("merge-record"), "no second merge offered");
    });
}
