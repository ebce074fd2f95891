//! Administrators: sign-in throttling per source and username, proxies and
//! the headers believed from them, cookies, the holder's view of the card
//! office, kiosk sessions, and the `healthcard admin` commands as a process.

use std::process::Output;

use reqwest::blocking::Response;
use serde_json::{json, Value};

use crate::helpers::{self, err, ok, spawn_app_as, spawn_app_with, Backend, TestApp};

const PASSWORD: &str = "correct horse battery";

/// Both backends, with the test client's own address (127.0.0.1) trusted as a
/// proxy, so a test chooses a source address with `X-Forwarded-For`.
fn behind_proxy(threshold: u32, body: impl Fn(TestApp)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(app) = spawn_app_with(backend, |s| {
            s.trusted_proxies = healthcard::proxy::TrustedProxies::parse("127.0.0.1").unwrap();
            s.login_failures_before_lockout = threshold;
        }) {
            body(app);
        }
    }
}

fn login_from(app: &TestApp, source: &str, username: &str, password: &str) -> Response {
    app.post("/api/v1/admin/login")
        .header("x-forwarded-for", source)
        .json(&json!({"username": username, "password": password}))
        .send()
        .unwrap()
}

#[test]
fn failures_from_one_source_do_not_lock_out_another() {
    behind_proxy(5, |app| {
        for _ in 0..5 {
            assert_eq!(login_from(&app, "10.0.0.1", "admin", "wrong").status(), 401);
        }
        let r = login_from(&app, "10.0.0.1", "admin", PASSWORD);
        assert_eq!(
            r.status(),
            429,
            "the guessing source is stopped, right password or not"
        );
        assert!(r.headers().get("retry-after").is_some());
        let r = login_from(&app, "10.0.0.2", "admin", PASSWORD);
        assert_eq!(r.status(), 200, "the administrator elsewhere signs in");
        let r = login_from(&app, "10.0.0.1", "admin", PASSWORD);
        assert_eq!(r.status(), 429, "and the guessing source stays stopped");
    });
}

#[test]
fn a_source_guessing_across_usernames_is_stopped() {
    // Threshold 2: a pair locks after 2, a source after 8, an account after 20.
    behind_proxy(2, |app| {
        for i in 0..8 {
            let r = login_from(&app, "10.0.0.3", &format!("user{i}"), "wrong");
            assert_eq!(r.status(), 401);
        }
        assert_eq!(
            login_from(&app, "10.0.0.3", "admin", PASSWORD).status(),
            429
        );
        assert_eq!(
            login_from(&app, "10.0.0.4", "admin", PASSWORD).status(),
            200
        );
    });
}

#[test]
fn an_account_under_attack_still_admits_a_fresh_source() {
    behind_proxy(2, |app| {
        // Twenty failures on one account from ten sources: the account's backoff starts.
        for i in 0..10 {
            for _ in 0..2 {
                let r = login_from(&app, &format!("10.1.0.{i}"), "admin", "wrong");
                assert_eq!(r.status(), 401);
            }
        }
        // A source with one failure of its own is held back by the account's backoff...
        assert_eq!(login_from(&app, "10.2.0.1", "admin", "wrong").status(), 401);
        let r = login_from(&app, "10.2.0.1", "admin", PASSWORD);
        assert_eq!(
            r.status(),
            429,
            "a source that failed on this account waits"
        );
        // ...a source with none is checked, and the right password passes.
        assert_eq!(
            login_from(&app, "10.2.0.2", "admin", PASSWORD).status(),
            200
        );
        // The success ended the account's backoff.
        assert_eq!(
            login_from(&app, "10.2.0.1", "admin", PASSWORD).status(),
            200
        );
    });
}

#[test]
fn forwarded_headers_from_an_untrusted_source_change_nothing() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, |s| {
            s.public_url = Some("https://hc.example".into())
        }) else {
            continue;
        };
        // X-Forwarded-For is not believed: all attempts count against 127.0.0.1.
        for i in 0..5 {
            let r = login_from(&app, &format!("10.0.0.{i}"), "admin", "wrong");
            assert_eq!(r.status(), 401);
        }
        assert_eq!(
            login_from(&app, "10.0.0.9", "admin", PASSWORD).status(),
            429
        );
        // X-Forwarded-Proto https is not believed: no HSTS, plain cookie names.
        let r = app
            .get("/admin/login")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "proto=https;host=evil.example")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("strict-transport-security").is_none());
        let cookies = set_cookies(&r);
        assert!(
            cookies.iter().any(|c| c.starts_with("hc_csrf=")),
            "{cookies:?}"
        );
        assert!(!cookies.iter().any(|c| c.contains("Secure")), "{cookies:?}");
        // X-Forwarded-Host does not make a foreign Origin look like ours.
        let (_, card, _) = app.resident_with_card(401);
        let r = app
            .post(&format!("/api/v1/cards/{card}/suspend"))
            .header("cookie", format!("hc_session={}", app.admin_token))
            .header("x-forwarded-host", "evil.example")
            .header("origin", "https://evil.example")
            .send()
            .unwrap();
        assert_eq!(r.status(), 403);
        // The holder link is built from the public URL, whatever Host says.
        let page = issue_on_portal(&app, 402, "evil.example");
        assert!(page.contains("https://hc.example/card#hch_"), "{page}");
        assert!(!page.contains("evil.example"));
    }
}

#[test]
fn forwarded_headers_from_a_trusted_proxy_are_believed() {
    behind_proxy(5, |app| {
        let r = app
            .get("/admin/login")
            .header("x-forwarded-proto", "https")
            .send()
            .unwrap();
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000")
        );
        let cookies = set_cookies(&r);
        let csrf = cookies
            .iter()
            .find(|c| c.starts_with("__Host-hc_csrf="))
            .unwrap_or_else(|| panic!("{cookies:?}"));
        assert!(csrf.contains("Secure") && csrf.contains("Path=/"), "{csrf}");
        assert!(!csrf.contains("Domain"), "{csrf}");
        // Over HTTPS only the __Host- session cookie counts.
        let (_, card, _) = app.resident_with_card(403);
        let get = |cookie: &str| {
            app.get(&format!("/api/v1/cards/{card}"))
                .header("x-forwarded-proto", "https")
                .header("cookie", cookie)
                .send()
                .unwrap()
                .status()
        };
        assert_eq!(get(&format!("hc_session={}", app.admin_token)), 401);
        assert_eq!(get(&format!("__Host-hc_session={}", app.admin_token)), 200);
        // A trusted proxy's forwarded host is the one Origin is checked against.
        let r = app
            .post(&format!("/api/v1/cards/{card}/suspend"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "hc.example")
            .header("cookie", format!("__Host-hc_session={}", app.admin_token))
            .header("origin", "https://hc.example")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    });
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// Issues a card on the portal with `Host: host`; returns the page.
fn issue_on_portal(app: &TestApp, n: u32, host: &str) -> String {
    let rid = app.register(n)["id"].as_str().unwrap().to_string();
    let csrf_cookie = "B".repeat(43);
    let csrf = healthcard::web::csrf::token_for(&csrf_cookie);
    let r = app
        .post(&format!("/admin/residents/{rid}/cards"))
        .header("host", host)
        .header(
            "cookie",
            format!("hc_session={}; hc_csrf={csrf_cookie}", app.admin_token),
        )
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    r.text().unwrap()
}

#[test]
fn holders_see_the_card_office_never_an_administrator() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_as(backend, "registrar7", |_| {}) else {
            continue;
        };
        let (_, card, credential) = app.resident_with_card(404);
        let r = app.admin_post(&format!("/api/v1/cards/{card}/suspend"), json!({}));
        assert_eq!(r.status(), 200);
        let r = app.admin_post(&format!("/api/v1/cards/{card}/reinstate"), json!({}));
        assert_eq!(r.status(), 200);
        let r = app
            .get("/api/v1/holder/access-log")
            .bearer_auth(&credential)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().unwrap();
        assert!(!text.contains("registrar7"), "{text}");
        let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
        let admin_rows: Vec<&Value> = rows.iter().filter(|r| r["actor_kind"] == "admin").collect();
        assert!(!admin_rows.is_empty(), "{text}");
        assert!(
            admin_rows.iter().all(|r| r["actor"] == "card_office"),
            "{text}"
        );
        // The administrator's own view still names who did it.
        let log = app
            .admin_get(&format!("/api/v1/cards/{card}/access-log"))
            .text()
            .unwrap();
        assert!(log.contains("registrar7"));
    }
}

/// Signs a kiosk in with `key`; returns the cookie header for later requests
/// (its CSRF cookie is `"C".repeat(43)`).
pub fn kiosk_open(app: &TestApp, key: &str) -> String {
    let csrf_cookie = "C".repeat(43);
    let csrf = healthcard::web::csrf::token_for(&csrf_cookie);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(app.url("/kiosk/open"))
        .header("cookie", format!("hc_csrf={csrf_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("api_key", key)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookies = set_cookies(&r);
    let kiosk = cookies
        .iter()
        .find(|c| c.starts_with("hc_kiosk="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    let value = kiosk["hc_kiosk=".len()..].split(';').next().unwrap();
    assert!(value.starts_with("hct_"), "a session token, not the key");
    assert!(!kiosk.contains(key), "the API key is not in the cookie");
    format!("hc_kiosk={value}; hc_csrf={csrf_cookie}")
}

fn kiosk_signed_in(app: &TestApp, cookie: &str) -> bool {
    let page = app
        .get("/kiosk")
        .header("cookie", cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    page.contains("scan-form")
}

#[test]
fn kiosk_sessions_end_on_sign_out_and_with_their_key() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, |_| {}) else {
            continue;
        };
        let (clinic, key) = app.clinic("KS", &["verify"]);
        let cookie = kiosk_open(&app, &key);
        assert!(kiosk_signed_in(&app, &cookie));
        // The raw API key in the cookie no longer signs a kiosk in.
        assert!(!kiosk_signed_in(&app, &format!("hc_kiosk={key}")));
        // Sign-out ends the session on the server: the old value is dead.
        let csrf = healthcard::web::csrf::token_for(&"C".repeat(43));
        let r = app
            .post("/kiosk/close")
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .unwrap();
        assert!(r.status().is_success() || r.status().is_redirection());
        assert!(
            !kiosk_signed_in(&app, &cookie),
            "the old cookie value no longer works"
        );
        // Revoking the key ends the kiosk sessions it opened.
        let cookie = kiosk_open(&app, &key);
        assert!(kiosk_signed_in(&app, &cookie));
        let id = clinic["id"].as_str().unwrap();
        let keys: Value = app
            .admin_get(&format!("/api/v1/clinics/{id}/keys"))
            .json()
            .unwrap();
        let key_id = keys.as_array().unwrap()[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = app
            .client
            .delete(app.url(&format!("/api/v1/clinics/{id}/keys/{key_id}")))
            .bearer_auth(&app.admin_token)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        assert!(!kiosk_signed_in(&app, &cookie));
    }
}

#[test]
fn housekeeping_purges_old_sign_in_failures() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, |_| {}) else {
            continue;
        };
        use healthcard::store::login_throttle;
        let now = chrono::Utc::now().naive_utc();
        let old = now - chrono::Duration::hours(30);
        let mut conn = app.ctx.conn().unwrap();
        login_throttle::record(&mut conn, "10.9.9.9", Some("admin"), old, old).unwrap();
        login_throttle::record(&mut conn, "10.9.9.8", Some("admin"), now, now).unwrap();
        // Rows of the previous version's table, as an old node writes them.
        {
            use diesel::{ExpressionMethods, RunQueryDsl};
            use healthcard::store::schema::login_failures as lf;
            for (user, at) in [("old-node", old), ("new-node", now)] {
                diesel::insert_into(lf::table)
                    .values((
                        lf::username.eq(user),
                        lf::count.eq(3i64),
                        lf::last_at.eq(at),
                    ))
                    .execute(&mut *conn)
                    .unwrap();
            }
        }
        drop(conn);
        healthcard::service::housekeeping::purge(&app.ctx, now);
        let mut conn = app.ctx.conn().unwrap();
        let gone = login_throttle::read(&mut conn, "10.9.9.9", "admin", old).unwrap();
        assert_eq!(gone.pair.count, 0, "the day-old failure is gone");
        let kept = login_throttle::read(&mut conn, "10.9.9.8", "admin", old).unwrap();
        assert_eq!(kept.pair.count, 1, "a recent one stays");
        use diesel::{QueryDsl, RunQueryDsl};
        let legacy: Vec<String> = healthcard::store::schema::login_failures::table
            .select(healthcard::store::schema::login_failures::username)
            .load(&mut *conn)
            .unwrap();
        assert_eq!(legacy, ["new-node"], "the old table is purged too");
    }
}

/// The binary on the test app's own database and data folder.
fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    helpers::cli(
        &app.settings.data_dir,
        Some(&app.settings.database_url),
        args,
        stdin,
    )
}

#[test]
fn cli_admin_commands_act_at_once_on_a_running_service() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, |_| {}) else {
            continue;
        };
        let login = |pw: &str| {
            app.post("/api/v1/admin/login")
                .json(&json!({"username": "admin", "password": pw}))
                .send()
                .unwrap()
                .status()
        };
        let token_works = |t: &str| {
            app.get("/api/v1/clinics")
                .bearer_auth(t)
                .send()
                .unwrap()
                .status()
                == 200
        };
        // Help for each command.
        for sub in ["list", "disable", "enable", "passwd", "unlock", "sessions"] {
            let help = ok(&cli(&app, &["admin", sub, "--help"], None));
            assert!(help.contains("Usage"), "{sub}: {help}");
        }
        // create: the password rule, with messages that name the problem.
        let e = err(&cli(
            &app,
            &["admin", "create", "--username", "clerk"],
            Some("short\n"),
        ));
        assert!(e.contains("at least 12 characters"), "{e}");
        let e = err(&cli(
            &app,
            &["admin", "create", "--username", "clerk"],
            Some("            \n"),
        ));
        assert!(e.contains("only spaces"), "{e}");
        let e = err(&cli(
            &app,
            &["admin", "create", "--username", "clerk"],
            Some("password1234\n"),
        ));
        assert!(e.contains("too easy to guess"), "{e}");
        ok(&cli(
            &app,
            &["admin", "create", "--username", "clerk"],
            Some("Ginkgo-lantern-4417-harbor\n"),
        ));
        // list: one JSON object a line, no hashes.
        let out = ok(&cli(&app, &["admin", "list"], None));
        assert!(!out.contains("argon2"));
        let rows: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r["disabled"] == false));

        // disable: no sign-in, and the open session stops at once.
        let token = app.admin_token.clone();
        assert!(token_works(&token));
        let out = ok(&cli(
            &app,
            &["admin", "disable", "--username", "admin"],
            None,
        ));
        assert!(out.contains("\"disabled\":true"), "{out}");
        assert!(
            !token_works(&token),
            "a disabled admin's session stops at once"
        );
        assert_eq!(login(PASSWORD), 401);
        ok(&cli(
            &app,
            &["admin", "enable", "--username", "admin"],
            None,
        ));
        assert_eq!(login(PASSWORD), 200);
        let e = err(&cli(
            &app,
            &["admin", "disable", "--username", "nobody"],
            None,
        ));
        assert!(e.contains("no administrator named"), "{e}");

        // sessions revoke: every session ends.
        let t1 = app.login("admin", PASSWORD);
        let t2 = app.login("admin", PASSWORD);
        let out = ok(&cli(
            &app,
            &["admin", "sessions", "revoke", "--username", "admin"],
            None,
        ));
        // t1, t2 and the sign-in after `enable`.
        assert!(out.contains("\"sessions_ended\":3"), "{out}");
        assert!(!token_works(&t1) && !token_works(&t2));

        // passwd: the rule holds, the old password stops, sessions end.
        let t3 = app.login("admin", PASSWORD);
        let e = err(&cli(
            &app,
            &["admin", "passwd", "--username", "admin"],
            Some("admin1234567\n"),
        ));
        assert!(e.contains("too easy to guess"), "{e}");
        ok(&cli(
            &app,
            &["admin", "passwd", "--username", "admin"],
            Some("Quokka-tidal-9051-meadow\n"),
        ));
        assert!(!token_works(&t3));
        assert_eq!(login(PASSWORD), 401);
        assert_eq!(login("Quokka-tidal-9051-meadow"), 200);

        // unlock: a locked pair signs in again at once.
        for _ in 0..5 {
            assert_eq!(login("wrong"), 401);
        }
        assert_eq!(login("Quokka-tidal-9051-meadow"), 429);
        ok(&cli(
            &app,
            &["admin", "unlock", "--username", "admin"],
            None,
        ));
        assert_eq!(login("Quokka-tidal-9051-meadow"), 200);

        // Every change is in the access log.
        let audit = ok(&cli(&app, &["audit", "verify"], None));
        assert!(audit.contains("intact"), "{audit}");
    }
}
