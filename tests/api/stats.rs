//! Card-use monitoring: `step` on verification, `GET /api/v1/stats/card-use`
//! (JSON and CSV) and the daily counts behind it, on both databases.

use std::collections::BTreeMap;

use diesel::prelude::*;
use healthcard::domain::monitoring_day;
use healthcard::store::schema::access_log;
use serde_json::{json, Value};

use crate::helpers::{error_code, on_both, TestApp};

/// (clinic id, channel, step, outcome) of a logged verification.
type LogUse = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const DIMS: [&str; 5] = ["day", "clinic", "channel", "step", "outcome"];

fn today() -> chrono::NaiveDate {
    monitoring_day(chrono::Utc::now().naive_utc())
}

/// The period around today: a verification made near midnight still falls in it.
fn period() -> String {
    let t = today();
    format!(
        "from={}&to={}",
        t.pred_opt().unwrap(),
        t.succ_opt().unwrap()
    )
}

fn send(app: &TestApp, key: &str, token: &str, channel: Option<&str>, step: Option<&str>) -> Value {
    let mut body = json!({"token": token});
    if let Some(c) = channel {
        body["channel"] = c.into();
    }
    if let Some(s) = step {
        body["step"] = s.into();
    }
    let r = app
        .post("/api/v1/verify")
        .bearer_auth(key)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn report(app: &TestApp, by: &str) -> Value {
    let r = app.admin_get(&format!("/api/v1/stats/card-use?{}&by={by}", period()));
    assert_eq!(r.status(), 200, "by={by}");
    r.json().unwrap()
}

fn report_csv(app: &TestApp, by: &str) -> String {
    let r = app
        .get(&format!("/api/v1/stats/card-use?{}&by={by}", period()))
        .bearer_auth(&app.admin_token)
        .header("accept", "text/csv")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    r.text().unwrap()
}

/// The uses of the rows whose fields equal `want`.
fn uses_where(report: &Value, want: &[(&str, Value)]) -> i64 {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| want.iter().all(|(k, v)| &r[*k] == v))
        .map(|r| r["uses"].as_i64().unwrap())
        .sum()
}

/// What a JSON row says, as the CSV's columns would say it.
fn as_csv_record(row: &Value, by: &[&str]) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut rec = Vec::new();
    for d in by {
        match *d {
            "day" => rec.push(text(&row["day"])),
            "clinic" => {
                rec.push(text(&row["clinic_code"]));
                rec.push(text(&row["clinic_name"]));
            }
            "channel" => {
                rec.push(text(&row["channel_code"]));
                rec.push(text(&row["channel"]));
            }
            "step" => {
                rec.push(text(&row["step_code"]));
                rec.push(text(&row["step"]));
            }
            "outcome" => rec.push(text(&row["outcome"])),
            _ => unreachable!(),
        }
    }
    rec.push(text(&row["uses"]));
    rec
}

#[test]
fn card_use_grouped_by_any_subset_counts_the_verifications_made() {
    on_both(|app| {
        let (_, card, _) = app.resident_with_card(190);
        let (_, k1) = app.clinic("U1", &["verify"]);
        // A name that needs quoting in CSV.
        let r = app.admin_post(
            "/api/v1/clinics",
            json!({"code": "U2", "name": "North, \"East\" 医院", "scopes": ["verify"]}),
        );
        assert_eq!(r.status(), 201);
        let k2 = r.json::<Value>().unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_string();
        let tok = app.mint(&card, "static");
        send(&app, &k1, &tok, Some("kiosk"), Some("registration"));
        send(&app, &k1, &tok, Some("kiosk"), Some("registration"));
        send(&app, &k1, &tok, Some("window"), Some("payment"));
        send(&app, &k1, "EHC1:bad", Some("kiosk"), Some("registration"));
        send(&app, &k2, &tok, Some("doctor"), Some("prescription"));
        send(&app, &k2, &tok, None, None);
        let dynamic = app.mint(&card, "dynamic");
        assert_eq!(
            send(&app, &k2, &dynamic, Some("app"), Some("dispensing"))["valid"],
            true
        );
        assert_eq!(
            send(&app, &k2, &dynamic, Some("app"), Some("dispensing"))["reason"],
            "replayed"
        );

        let by_all = report(&app, "clinic,channel,step,outcome");
        let n = |want: &[(&str, Value)]| uses_where(&by_all, want);
        assert_eq!(by_all["total"], 8);
        assert_eq!(
            n(&[
                ("clinic_code", "U1".into()),
                ("channel", "kiosk".into()),
                ("step", "registration".into()),
                ("outcome", "valid".into())
            ]),
            2
        );
        assert_eq!(
            n(&[
                ("clinic_code", "U1".into()),
                ("outcome", "malformed".into())
            ]),
            1
        );
        assert_eq!(
            n(&[
                ("clinic_code", "U1".into()),
                ("channel_code", "0100".into()),
                ("step_code", "010105".into())
            ]),
            1
        );
        assert_eq!(
            n(&[
                ("clinic_code", "U2".into()),
                ("channel", Value::Null),
                ("step", Value::Null)
            ]),
            1
        );
        assert_eq!(
            n(&[
                ("channel_code", "0400".into()),
                ("step_code", "010103".into()),
                ("outcome", "replayed".into())
            ]),
            1
        );
        assert_eq!(n(&[("clinic_name", "North, \"East\" 医院".into())]), 4);

        let by_day = report(&app, "day");
        assert_eq!(
            uses_where(&by_day, &[("day", today().to_string().into())]),
            8
        );
        let total = report(&app, "");
        assert_eq!(total["rows"], json!([{"uses": 8}]));

        // Every subset of the dimensions: its rows add up to the total, and
        // its CSV, read by a CSV reader, says what its JSON says.
        for mask in 0u32..32 {
            let by: Vec<&str> = DIMS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, d)| *d)
                .collect();
            let joined = by.join(",");
            let json = report(&app, &joined);
            assert_eq!(json["total"], 8, "{joined}");
            assert_eq!(uses_where(&json, &[]), 8, "{joined}");
            let text = report_csv(&app, &joined);
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
            assert_eq!(header.last().map(String::as_str), Some("uses"));
            let records: Vec<Vec<String>> = reader
                .records()
                .map(|r| r.unwrap().iter().map(String::from).collect())
                .collect();
            let expected: Vec<Vec<String>> = json["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| as_csv_record(r, &by))
                .collect();
            assert_eq!(records, expected, "{joined}");
        }
        assert!(report_csv(&app, "clinic").contains("\"North, \"\"East\"\" 医院\""));

        // The step is in the access log and in the metrics.
        let log: Vec<Value> = app
            .admin_get(&format!("/api/v1/cards/{card}/access-log"))
            .json()
            .unwrap();
        assert!(log.iter().any(|e| e["step"] == "prescription"), "{log:?}");
        let metrics = app.get("/metrics").send().unwrap().text().unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("healthcard_verifications_total")
                    && l.contains(r#"channel="kiosk""#)
                    && l.contains(r#"outcome="valid""#)
                    && l.contains(r#"step="registration""#)),
            "{metrics}"
        );
    });
}

#[test]
fn bad_steps_periods_and_groupings_are_422_with_their_codes() {
    on_both(|app| {
        let (_, key) = app.clinic("U3", &["verify"]);
        let r = app
            .post("/api/v1/verify")
            .bearer_auth(&key)
            .json(&json!({"token": "EHC1:x", "step": "010101"}))
            .send()
            .unwrap();
        assert_eq!(error_code(r, 422), "invalid_step");
        let code = |q: &str| error_code(app.admin_get(&format!("/api/v1/stats/card-use?{q}")), 422);
        assert_eq!(code("to=2026-01-01"), "invalid_date");
        assert_eq!(code("from=2026-02-30&to=2026-03-01"), "invalid_date");
        assert_eq!(code("from=yesterday&to=2026-03-01"), "invalid_date");
        assert_eq!(code("from=2026-02-01&to=2026-01-31"), "invalid_period");
        assert_eq!(code("from=2026-01-01&to=2027-01-02"), "period_too_long");
        let r =
            app.admin_get("/api/v1/stats/card-use?from=%2B262142-12-30&to=%2B262142-12-31&by=day");
        assert_eq!(r.status(), 200, "the calendar's last days: no overflow");
        for by in ["week", "day,day", "day,", "clinic_code"] {
            assert_eq!(
                code(&format!("from=2026-01-01&to=2026-01-31&by={by}")),
                "invalid_group_by",
                "{by}"
            );
        }
        let r = app.admin_get("/api/v1/stats/card-use?from=2026-01-01&to=2026-12-31&by=day");
        assert_eq!(r.status(), 200, "a whole year is allowed");
    });
}

#[test]
fn card_use_figures_are_for_administrators_only() {
    on_both(|app| {
        let (_, key) = app.clinic("U4", &["verify", "link", "pii"]);
        let path = "/api/v1/stats/card-use?from=2026-01-01&to=2026-01-31";
        let r = app.get(path).send().unwrap();
        assert_eq!(error_code(r, 401), "unauthorized");
        let r = app.get(path).bearer_auth(&key).send().unwrap();
        let status = r.status().as_u16();
        assert!(status == 401 || status == 403, "{status}");
        let r = app
            .get("/admin/stats")
            .header("cookie", "hc_session=hcs_nonsense")
            .send()
            .unwrap();
        assert!(r.url().path().starts_with("/admin/login"), "{}", r.url());
        let r = app.get("/admin/stats/card-use.csv").send().unwrap();
        assert!(r.url().path().starts_with("/admin/login"), "{}", r.url());
    });
}

#[test]
fn daily_counts_equal_a_count_of_the_log_after_concurrent_verifications() {
    on_both(|app| {
        let clinics: Vec<(String, String)> = (0..3)
            .map(|i| {
                let (c, k) = app.clinic(&format!("CC{i}"), &["verify"]);
                (c["id"].as_str().unwrap().to_string(), k)
            })
            .collect();
        let cards: Vec<String> = (0..3).map(|i| app.resident_with_card(300 + i).1).collect();
        let statics: Vec<String> = cards.iter().map(|c| app.mint(c, "static")).collect();
        let dynamics: Vec<String> = cards
            .iter()
            .flat_map(|c| (0..4).map(|_| app.mint(c, "dynamic")).collect::<Vec<_>>())
            .collect();
        let channels = [Some("window"), Some("kiosk"), None];
        let steps = [Some("registration"), Some("payment"), Some("other"), None];
        std::thread::scope(|s| {
            for t in 0..6usize {
                let (app, clinics, statics, dynamics) = (&app, &clinics, &statics, &dynamics);
                s.spawn(move || {
                    for i in 0..15usize {
                        let key = &clinics[(t + i) % clinics.len()].1;
                        let token = match i % 3 {
                            0 => &statics[i % statics.len()],
                            1 => &dynamics[(t + i) % dynamics.len()],
                            _ => "EHC1:garbage",
                        };
                        send(app, key, token, channels[(t + i) % 3], steps[i % 4]);
                    }
                });
            }
        });
        // The log, counted directly.
        let rows: Vec<LogUse> = access_log::table
            .filter(access_log::action.eq("verify"))
            .select((
                access_log::clinic_id,
                access_log::channel,
                access_log::step,
                access_log::outcome,
            ))
            .load(&mut *app.ctx.conn().unwrap())
            .unwrap();
        assert_eq!(rows.len(), 90);
        let mut direct: BTreeMap<(String, String, String, String), i64> = BTreeMap::new();
        for (clinic, channel, step, outcome) in rows {
            *direct
                .entry((
                    clinic.unwrap(),
                    channel.unwrap_or_default(),
                    step.unwrap_or_default(),
                    outcome.unwrap(),
                ))
                .or_default() += 1;
        }
        let code_to_id: BTreeMap<String, String> = clinics
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (format!("CC{i}"), id.clone()))
            .collect();
        let report = report(&app, "clinic,channel,step,outcome");
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let mut kept: BTreeMap<(String, String, String, String), i64> = BTreeMap::new();
        for r in report["rows"].as_array().unwrap() {
            let id = code_to_id[&text(&r["clinic_code"])].clone();
            kept.insert(
                (
                    id,
                    text(&r["channel"]),
                    text(&r["step"]),
                    text(&r["outcome"]),
                ),
                r["uses"].as_i64().unwrap(),
            );
        }
        assert_eq!(kept, direct);
        assert!(kept.keys().any(|k| k.3 == "replayed") || kept.keys().any(|k| k.3 == "valid"));
    });
}
