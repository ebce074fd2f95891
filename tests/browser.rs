//! The web pages in a real browser: headless Chromium driven through
//! chromedriver (W3C WebDriver), against the real application on a random
//! port with a fresh SQLite database.
//!
//! The stories are driven by what a person sees (labels, button texts); the
//! QR codes are read back from screenshots, so the printed card and the phone's
//! self-drawn code are proven scannable. Screenshots of every page are written
//! to `docs/screenshots/` (listed in `docs/web.md`).
//!
//! Without chromedriver the browser test prints a loud SKIPPED line, or fails
//! when `HEALTHCARD_REQUIRE_BROWSER=1` (as in CI).

#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use healthcard::config::Settings;
use healthcard::domain::Username;
use healthcard::service::AppContext;
use healthcard::startup::Application;
use webdriver::{Browser, Driver, Element, ENTER};

const ADMIN: &str = "officer";
const PASSWORD: &str = "correct horse battery staple";

struct TestApp {
    base: String,
    #[allow(dead_code)]
    ctx: AppContext,
    _dir: tempfile::TempDir,
}

fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let s = Settings {
        data_dir: dir.path().to_path_buf(),
        database_url: dir.path().join("healthcard.db").display().to_string(),
        bind: "127.0.0.1:0".into(),
        // Short-lived dynamic tokens so that the holder page refreshes during the test.
        dynamic_token_ttl_secs: 12,
        ..Settings::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(s).expect("the application starts");
            tx.send((app.port(), app.context.clone())).unwrap();
            let _ = app.run_until_stopped().await;
        })
    });
    let (port, ctx) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the application reports its port");
    let phc = healthcard::crypto::hash_password(PASSWORD).unwrap();
    let mut conn = ctx.conn().unwrap();
    healthcard::store::admins::create(&mut conn, &Username::parse(ADMIN).unwrap(), &phc).unwrap();
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ctx,
        _dir: dir,
    }
}

/// An 18-character ID number with the right GB 11643 check character.
fn national_id(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    format!("{first17}{}", C[(sum % 11) as usize] as char)
}

/// The same number with a wrong check character.
fn wrong_check(id: &str) -> String {
    let last = id.as_bytes()[17];
    let other = if last == b'1' { '2' } else { '1' };
    format!("{}{other}", &id[..17])
}

/// `docs/screenshots/` when `HEALTHCARD_UPDATE_SCREENSHOTS=1` (to refresh the
/// committed pictures), else `target/screenshots/` so a test run leaves the
/// work tree clean.
fn screenshots() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var("HEALTHCARD_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    }
}

/// What a person does and sees, by labels and button texts.
struct Person<'a> {
    d: &'a Driver,
    base: &'a str,
}

fn quoted(s: &str) -> String {
    // XPath 1.0 string literal (our texts hold no double quotes).
    assert!(!s.contains('"'));
    format!("\"{s}\"")
}

impl Person<'_> {
    fn open(&self, path: &str) {
        self.d.goto(&format!("{}{}", self.base, path));
    }

    fn path(&self) -> String {
        self.d.url().trim_start_matches(self.base).to_string()
    }

    /// The input, select or textarea labelled `label`.
    #[track_caller]
    fn field(&self, label: &str) -> Element {
        self.d.find(&format!(
            "//*[@id=//label[normalize-space(.)={}]/@for]",
            quoted(label)
        ))
    }

    #[track_caller]
    fn fill(&self, label: &str, text: &str) {
        let f = self.field(label);
        self.d.clear(&f);
        self.d.type_into(&f, text);
    }

    /// The error shown beside the field labelled `label`.
    #[track_caller]
    fn error_beside(&self, label: &str) -> String {
        let e = self.d.find(&format!(
            "//label[normalize-space(.)={}]/ancestor::*[contains(@class,'field')][1]//*[@role='alert']",
            quoted(label)
        ));
        self.d.text(&e)
    }

    /// Waits for a button or link reading `text`.
    #[track_caller]
    fn control(&self, text: &str) -> Element {
        self.d.find(&format!(
            "//button[normalize-space(.)={t}] | //a[normalize-space(.)={t}]",
            t = quoted(text)
        ))
    }

    /// Presses the button or follows the link reading `text`, and waits for
    /// the page it loads.
    #[track_caller]
    fn press(&self, text: &str) {
        let b = self.control(text);
        self.d.loads(|| self.d.click(&b));
    }

    #[track_caller]
    fn tick(&self, label: &str) {
        let l = self
            .d
            .find(&format!("//label[normalize-space(.)={}]", quoted(label)));
        self.d.click(&l);
    }

    fn sees(&self, text: &str) -> bool {
        self.d.page_text().contains(text)
    }

    #[track_caller]
    fn wait_to_see(&self, text: &str) {
        self.d.wait_for_text(text);
    }

    /// Waits until the browser is at `path` (after a redirect).
    #[track_caller]
    fn wait_for_path(&self, path: &str) {
        self.d
            .wait_until(&format!("the address {path}"), || self.path() == path);
    }

    fn shot(&self, name: &str) {
        self.d.save_screenshot(&screenshots(), name);
    }

    /// Reads the QR code shown in the element `xpath`, from a screenshot of
    /// the window (the pages show one code at a time).
    fn read_qr(&self, xpath: &str) -> String {
        self.d.find(xpath);
        let png = self.d.screenshot();
        healthcard::token::qr::decode_png(&png).unwrap_or_else(|e| {
            let keep = std::env::temp_dir().join("healthcard-unreadable-qr.png");
            let _ = std::fs::write(&keep, &png);
            panic!(
                "no readable QR code in {xpath}: {e:?} (image kept in {})",
                keep.display()
            )
        })
    }

    /// Types into whatever has the focus, as a keyboard-wedge scanner does.
    #[track_caller]
    fn scan(&self, token: &str) {
        let focused = self.d.active();
        let field = self.d.find("//input[@name='token']");
        assert!(
            self.d.same(&focused, &field),
            "the scan field must have the focus"
        );
        // The page before may show an answer too: the scan's is on the page it loads.
        self.d
            .loads(|| self.d.type_into(&focused, &format!("{token}{ENTER}")));
        self.d
            .find("//*[@id='result' and not(contains(@class,'idle'))]");
    }

    fn outcome(&self) -> String {
        let r = self.d.find("//*[@id='result']");
        self.d.attr(&r, "data-outcome").unwrap_or_default()
    }
}

/// Chromium and ChromeDriver, or `None` after saying loudly that the test is
/// skipped; with `HEALTHCARD_REQUIRE_BROWSER=1` (CI) their absence fails.
fn browser_or_skip() -> Option<Browser> {
    let found = Browser::find();
    if found.is_none() {
        if std::env::var("HEALTHCARD_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("HEALTHCARD_REQUIRE_BROWSER=1 but chromium or chromedriver is not installed");
        }
        // Written straight to stderr, past the test harness's capture, so it shows.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "\n{line}\n*** SKIPPED: browser tests: chromium or chromedriver is not installed ***\n\
             *** (apt-get install chromium chromium-driver; set HEALTHCARD_REQUIRE_BROWSER=1 to fail) ***\n{line}",
            line = "*".repeat(92)
        );
    }
    found
}

/// The JSON API as the card office's administrator: what a story sets up
/// before a person opens a page.
struct AdminApi<'a> {
    http: reqwest::blocking::Client,
    base: &'a str,
    token: String,
}

impl<'a> AdminApi<'a> {
    fn sign_in(base: &'a str) -> AdminApi<'a> {
        let http = reqwest::blocking::Client::new();
        let token = http
            .post(format!("{base}/api/v1/admin/login"))
            .json(&serde_json::json!({"username": ADMIN, "password": PASSWORD}))
            .send()
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        AdminApi { http, base, token }
    }

    /// `method path` with `body`, as the administrator (or with `key`); a
    /// success answer's JSON.
    fn call_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap()
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        self.call_as(&self.token, method, path, body)
    }

    fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.call(reqwest::Method::POST, path, body)
    }
}

#[test]
fn stories_in_a_real_browser() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let app = spawn_app();
    let d = Driver::start(&browser);
    let p = Person {
        d: &d,
        base: &app.base,
    };
    let id = national_id("37010219900307123");

    // --- An administrator signs in (a wrong password first).
    p.open("/admin");
    assert_eq!(
        p.path(),
        "/admin/login",
        "signed-out visitors are sent to sign in"
    );
    p.shot("admin-sign-in");
    p.fill("用户名", ADMIN);
    p.fill("密码", "not the password");
    p.press("登录");
    p.wait_to_see("用户名或密码错误");
    p.fill("密码", PASSWORD);
    p.press("登录");
    p.wait_to_see("查找居民");
    assert_eq!(p.path(), "/admin");

    // --- Finds nobody, registers the resident; a bad ID number is refused beside its field.
    p.fill("身份证号", &id);
    p.press("查找");
    p.wait_to_see("没有找到该身份证号的居民");
    p.fill("姓名", "张三");
    p.fill("身份证号", &wrong_check(&id));
    p.fill("手机号（选填）", "13800001234");
    p.press("登记");
    assert!(p.error_beside("身份证号").contains("校验位"));
    p.shot("admin-register-error");
    p.fill("身份证号", &id);
    p.press("登记");
    p.wait_to_see("尚未发卡");
    assert!(p.path().starts_with("/admin/residents/"));
    assert!(p.sees("3701**********"), "the masked ID number is shown");
    assert!(!p.sees(&id), "the full ID number is not shown");

    // --- Issues a card: the holder credential is shown once.
    p.press("发卡");
    p.wait_to_see("凭证只显示这一次");
    let credential = d.text(&d.find("//*[@id='holder-credential']"));
    assert!(credential.starts_with("hch_"), "{credential}");
    p.shot("admin-card-issued");

    // --- Opens the printable card (a GET shows a form; the token is minted on
    // its POST); its QR is a static token that scans from the page.
    p.press("打印卡片");
    p.wait_to_see("长期有效");
    p.press("生成卡片");
    p.wait_to_see("居民电子健康卡");
    p.shot("admin-print-card");
    let static_token = p.read_qr("//*[@id='card-qr']");
    assert!(static_token.starts_with("EHC1:"), "{static_token}");
    p.press("A6");
    p.wait_to_see("打印");
    assert!(p.read_qr("//*[@id='card-qr']").starts_with("EHC1:"));
    p.shot("admin-print-card-a6");

    // --- Registers a clinic; its API key is shown once.
    p.open("/admin/clinics");
    p.fill("机构代码", "JN-01");
    p.fill("机构名称", "济南市第一人民医院");
    p.press("创建");
    p.wait_to_see("密钥只显示这一次");
    let api_key = d.text(&d.find("//*[@id='api-key']"));
    assert!(api_key.starts_with("hck_"), "{api_key}");
    p.shot("admin-clinic-created");
    p.press("查看机构");
    p.wait_to_see("API 密钥");
    // A second key, then revoked (with its tick box); the first key keeps working.
    p.press("新建密钥");
    p.wait_to_see("密钥只显示这一次");
    let second_key = d.text(&d.find("//*[@id='api-key']"));
    p.press("查看机构");
    let row = format!("//tr[td[contains(., {})]]", quoted(&second_key[..8]));
    d.click(&d.find(&format!("{row}//input[@type='checkbox']")));
    let revoke = d.find(&format!("{row}//button"));
    d.loads(|| d.click(&revoke));
    d.find(&format!("{row}//*[contains(@class,'status-revoked')]"));
    p.shot("admin-clinic-keys");

    // --- The kiosk signs in with the key and scans the printed card: green, with the resident.
    p.open("/kiosk");
    p.shot("kiosk-sign-in");
    p.fill("API 密钥", &api_key);
    p.press("登录");
    p.wait_to_see("请扫描电子健康卡二维码");
    p.scan(&static_token);
    assert_eq!(p.outcome(), "valid");
    assert!(p.sees("张三"));
    assert!(p.sees("男"));
    assert!(p.sees("1990"));
    assert!(p.sees("3701**********"));
    assert!(p.sees("未关联"));
    p.shot("kiosk-valid");
    // Links the clinic's patient number, then the next scan shows it.
    p.fill("本院病历号", "MRN-000123");
    p.press("关联");
    p.wait_to_see("已关联");
    p.scan(&static_token);
    assert_eq!(p.outcome(), "valid");
    assert_eq!(d.text(&d.find("//*[@id='local-patient-id']")), "MRN-000123");
    p.shot("kiosk-valid-linked");
    // Garbage is refused in words.
    p.scan("HELLO");
    assert_eq!(p.outcome(), "malformed");
    assert!(p.sees("无法识别的二维码"));

    // --- The holder opens the card on a phone with the link /card#credential.
    d.set_window(412, 915);
    p.open(&format!("/card#{credential}"));
    d.find("//*[@id='qr']/*[name()='svg']");
    assert_eq!(p.path(), "/card", "the credential leaves the address bar");
    let first = p.read_qr("//*[@id='qr']");
    assert!(first.starts_with("EHC1:"), "{first}");
    p.wait_to_see("秒后自动刷新");
    assert!(!p.sees("张三"), "no personal data on the holder's screen");
    p.shot("holder-card");
    // The page refreshes its QR before the token expires (12 s in this test).
    let deadline = Instant::now() + Duration::from_secs(25);
    let second = loop {
        std::thread::sleep(Duration::from_millis(700));
        if let Ok(t) = healthcard::token::qr::decode_png(&d.screenshot()) {
            if t != first {
                break t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the holder's QR was not refreshed"
        );
    };
    assert!(second.starts_with("EHC1:"));

    // --- The kiosk takes the phone's code once; the same code again is a replay.
    d.set_window(1280, 1000);
    p.open("/kiosk");
    p.scan(&second);
    assert_eq!(p.outcome(), "valid", "{}", d.page_text());
    assert_eq!(d.text(&d.find("//*[@id='local-patient-id']")), "MRN-000123");
    p.scan(&second);
    assert_eq!(p.outcome(), "replayed");
    p.shot("kiosk-replayed");

    // --- The administrator reads the card's access log: the kiosk's scans are there.
    p.open("/admin");
    p.fill("身份证号", &id);
    p.press("查找");
    let resident_page = p.path();
    p.press("访问记录");
    p.wait_to_see("自助机");
    assert!(p.sees("JN-01"));
    p.shot("admin-access-log");

    // --- Suspends the card and reinstates it.
    p.open(&resident_page);
    p.press("暂停");
    p.fill("原因", "核实身份中");
    p.tick("我已核实持卡人身份，确认执行此操作");
    p.press("确认暂停");
    p.wait_to_see("已暂停");
    p.press("恢复");
    p.tick("我已核实持卡人身份，确认执行此操作");
    p.press("确认恢复");
    p.wait_to_see("正常");

    // --- Revokes the card, with a reason and a confirmation.
    p.open(&resident_page);
    p.press("吊销");
    p.wait_to_see("吊销是永久的");
    p.fill("原因", "卡片丢失");
    p.press("确认吊销");
    p.wait_to_see("请勾选确认");
    p.tick("我已核实持卡人身份，确认执行此操作");
    p.shot("admin-revoke-confirm");
    p.press("确认吊销");
    p.wait_to_see("已吊销");
    assert!(p.sees("卡片丢失"));
    p.shot("admin-resident");

    // --- The revoked card shows red at the kiosk, with the reason in words.
    p.open("/kiosk");
    p.scan(&static_token);
    assert_eq!(p.outcome(), "card_revoked");
    assert!(p.sees("此卡已被吊销"));
    p.shot("kiosk-revoked");

    // --- The holder's page says so too, without a code.
    d.set_window(412, 915);
    p.open("/card");
    p.wait_to_see("此卡已被吊销");
    assert!(d.try_find("//*[@id='qr']").is_none());
    p.shot("holder-card-revoked");
    d.set_window(1280, 1000);

    // --- Issues a new card, then reissues it (lost phone): the old one is replaced.
    p.open(&resident_page);
    p.press("发卡");
    p.wait_to_see("凭证只显示这一次");
    p.press("返回居民信息");
    p.press("补发");
    p.fill("原因", "手机丢失");
    p.tick("我已核实持卡人身份，确认执行此操作");
    p.press("确认补发");
    p.wait_to_see("已补发新卡");
    let third = d.text(&d.find("//*[@id='holder-credential']"));
    assert!(third.starts_with("hch_") && third != credential);
    p.press("返回居民信息");
    p.wait_to_see("已补发替换");
    p.wait_to_see("已吊销");
    p.shot("admin-resident-cards");

    // --- Imports a legacy CSV and reads the report.
    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("legacy.csv");
    std::fs::write(
        &csv,
        format!(
            "local_patient_id,name,national_id,phone\nA-1,李四,{},13900001111\nA-2,王五,{},\nA-3,赵六,123,\n",
            national_id("11010519850101002"),
            national_id("44030619790615004"),
        ),
    )
    .unwrap();
    p.open("/admin/import");
    let file = p.field("CSV 文件");
    d.type_into(&file, &csv.display().to_string());
    p.press("导入");
    p.wait_to_see("导入报告");
    let report = d.text(&d.find("//*[@id='import-report']"));
    let report = report.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(report.contains("新登记居民 2"), "{report}");
    assert!(report.contains("有问题的行 1"), "{report}");
    p.shot("admin-import-report");

    // --- The card office's dashboard: a HIS uses cards at several steps,
    // and the dashboard's numbers are the API's for the same period.
    let admin_api = AdminApi::sign_in(&app.base);
    let http = &admin_api.http;
    let api = |method, path: &str, body| admin_api.call(method, path, body);
    let his = api(
        reqwest::Method::POST,
        "/api/v1/clinics",
        serde_json::json!({"code": "HIS-2", "name": "市第二人民医院", "scopes": ["verify"]}),
    );
    let his_key = his["api_key"].as_str().unwrap().to_string();
    let resident = api(
        reqwest::Method::POST,
        "/api/v1/residents",
        serde_json::json!({"name": "钱七", "national_id": national_id("31011519900307003")}),
    );
    let card = api(
        reqwest::Method::POST,
        &format!(
            "/api/v1/residents/{}/cards",
            resident["id"].as_str().unwrap()
        ),
        serde_json::json!({}),
    );
    let card_id = card["card"]["id"].as_str().unwrap().to_string();
    let printed = api(
        reqwest::Method::POST,
        &format!("/api/v1/cards/{card_id}/tokens"),
        serde_json::json!({"kind": "static"}),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    for (i, (channel, step)) in [
        ("window", "registration"),
        ("window", "registration"),
        ("window", "payment"),
        ("doctor", "diagnosis"),
        ("doctor", "prescription"),
        ("doctor", "examination"),
        ("app", "payment"),
        ("window", "dispensing"),
    ]
    .into_iter()
    .enumerate()
    {
        for _ in 0..=(i % 3) {
            let r = http
                .post(format!("{}/api/v1/verify", app.base))
                .bearer_auth(&his_key)
                .json(&serde_json::json!({"token": printed, "channel": channel, "step": step}))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    }
    p.open("/admin");
    p.press("用卡统计");
    p.wait_to_see("每日用卡次数");
    let from = d.attr(&p.field("开始日期"), "value").unwrap();
    let to = d.attr(&p.field("结束日期"), "value").unwrap();
    let shown = |table: &str| -> Vec<(String, i64)> {
        let mut rows = Vec::new();
        let mut i = 1;
        while let Some(tr) = d.try_find(&format!("//table[@id='{table}']/tbody/tr[{i}]")) {
            let cell = d.find(&format!(
                "//table[@id='{table}']/tbody/tr[{i}]/td[@data-uses]"
            ));
            rows.push((
                d.attr(&tr, "data-key").unwrap_or_default(),
                d.attr(&cell, "data-uses").unwrap().parse().unwrap(),
            ));
            i += 1;
        }
        rows.sort();
        rows
    };
    let from_api = |by: &str, field: &str, keep: &dyn Fn(&serde_json::Value) -> bool| {
        let r = api(
            reqwest::Method::GET,
            &format!("/api/v1/stats/card-use?from={from}&to={to}&by={by}"),
            serde_json::json!(null),
        );
        let mut rows: Vec<(String, i64)> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| keep(row))
            .map(|row| {
                (
                    row[field].as_str().unwrap_or_default().to_string(),
                    row["uses"].as_i64().unwrap(),
                )
            })
            .collect();
        rows.sort();
        (r["total"].as_i64().unwrap(), rows)
    };
    let all = |_: &serde_json::Value| true;
    let (total, by_clinic) = from_api("clinic", "clinic_code", &all);
    assert!(total >= 14, "the kiosk's scans and the HIS's: {total}");
    let total_shown: i64 = d.text(&d.find("//*[@id='total-uses']")).parse().unwrap();
    assert_eq!(total_shown, total);
    assert_eq!(shown("by-clinic"), by_clinic);
    assert_eq!(shown("by-channel"), from_api("channel", "channel", &all).1);
    assert_eq!(shown("by-step"), from_api("step", "step", &all).1);
    let refusal = |r: &serde_json::Value| r["outcome"] != "valid";
    assert_eq!(
        shown("refusals"),
        from_api("outcome", "outcome", &refusal).1
    );
    let by_day = from_api("day", "day", &all).1;
    let days_shown: Vec<(String, i64)> = shown("by-day")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(days_shown, by_day);
    let svg_charts = d.execute(
        "return document.querySelectorAll('svg.chart').length",
        serde_json::json!([]),
    );
    assert_eq!(svg_charts, 5, "five server-drawn charts");
    d.set_window(1280, 1700);
    p.shot("admin-stats");
    d.set_window(1280, 1000);

    // --- Switches to English, then signs out.
    p.open("/admin");
    p.press("English");
    p.wait_to_see("Find a resident");
    p.shot("admin-home-en");
    p.press("中文");
    p.wait_to_see("查找居民");
    p.press("退出登录");
    p.wait_to_see("管理员登录");
    p.open("/admin/clinics");
    assert_eq!(p.path(), "/admin/login", "the session ended");

    // Every page carries the security headers (checked without the browser).
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/admin/login", "/card", "/kiosk"] {
        let r = http.get(format!("{}{path}", app.base)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["cache-control"], "no-store");
    }
}

/// Forms refuse a missing CSRF token; cookies are HttpOnly and SameSite=Strict.
#[test]
fn forms_need_their_csrf_token() {
    let app = spawn_app();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/admin/login", app.base))
        .send()
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("hc_csrf="))
        .expect("a CSRF cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    // Right password, no token: refused.
    let r = http
        .post(format!("{}/admin/login", app.base))
        .header("cookie", &pair)
        .form(&[("username", ADMIN), ("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    // Token of another cookie: refused.
    let r = http
        .post(format!("{}/admin/login", app.base))
        .header("cookie", &pair)
        .form(&[("username", ADMIN), ("password", PASSWORD), ("csrf", "x")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    // The page's own token: signed in, with an HttpOnly, SameSite=Strict session that expires.
    let page = http
        .get(format!("{}/admin/login", app.base))
        .header("cookie", &pair)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a csrf field")
        .to_string();
    let r = http
        .post(format!("{}/admin/login", app.base))
        .header("cookie", &pair)
        .header("origin", "https://evil.example")
        .form(&[
            ("username", ADMIN),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "a foreign Origin is refused");
    let r = http
        .post(format!("{}/admin/login", app.base))
        .header("cookie", &pair)
        .form(&[
            ("username", ADMIN),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("hc_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        session.contains("Max-Age="),
        "the session cookie expires: {session}"
    );
}

/// A fresh CSRF cookie (`name=value`) and the form token of the sign-in page.
fn csrf_pair(http: &reqwest::blocking::Client, base: &str) -> (String, String) {
    let r = http.get(format!("{base}/admin/login")).send().unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("hc_csrf="))
        .expect("a CSRF cookie");
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = r.text().unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a csrf field")
        .to_string();
    (pair, token)
}

/// Repeated wrong passwords from one source stop that source on that account
/// for a while, even with the right password (other sources: tests/api/admins.rs).
#[test]
fn repeated_failures_lock_the_account() {
    let app = spawn_app();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (pair, token) = csrf_pair(&http, &app.base);
    let attempt = |password: &str| {
        http.post(format!("{}/admin/login", app.base))
            .header("cookie", &pair)
            .form(&[
                ("username", ADMIN),
                ("password", password),
                ("csrf", token.as_str()),
            ])
            .send()
            .unwrap()
    };
    for _ in 0..5 {
        let r = attempt("wrong");
        assert_eq!(r.status(), 401);
        assert!(r.text().unwrap().contains("用户名或密码错误"));
    }
    let r = attempt(PASSWORD);
    assert_eq!(r.status(), 429, "locked even with the right password");
    assert!(r.text().unwrap().contains("登录失败次数过多"));
}

/// Issue 15: a parent's phone carries the child's card. The parent switches
/// to it; the QR says whose it is, and the scanned code verifies as the child.
#[test]
fn the_family_switcher_shows_the_childs_card() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let app = spawn_app();
    let admin_api = AdminApi::sign_in(&app.base);
    let http = &admin_api.http;
    let token = admin_api.token.clone();
    let api = |path: &str, body| admin_api.post(path, body);
    let key = api(
        "/api/v1/clinics",
        serde_json::json!({"code": "PED-1", "name": "市儿童医院", "scopes": ["verify"]}),
    )["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let parent = api(
        "/api/v1/residents",
        serde_json::json!({"name": "王芳", "national_id": national_id("11010519850101002"), "phone": "13800001234"}),
    );
    let parent_id = parent["id"].as_str().unwrap().to_string();
    let child = api(
        "/api/v1/residents",
        serde_json::json!({"name": "王小宝", "national_id": national_id("11010520200505001")}),
    );
    let child_id = child["id"].as_str().unwrap().to_string();
    let credential = api(
        &format!("/api/v1/residents/{parent_id}/cards"),
        serde_json::json!({}),
    )["holder_credential"]
        .as_str()
        .unwrap()
        .to_string();
    let child_card = api(
        &format!("/api/v1/residents/{child_id}/cards"),
        serde_json::json!({}),
    )["card"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    api(
        &format!("/api/v1/residents/{child_id}/guardians"),
        serde_json::json!({"guardian_id": parent_id, "relation": "mother"}),
    );

    let d = Driver::start(&browser);
    let p = Person {
        d: &d,
        base: &app.base,
    };
    d.set_window(412, 915);
    p.open(&format!("/card#{credential}"));
    d.find("//*[@id='qr']/*[name()='svg']");
    assert_eq!(d.text(&d.find("//*[@id='qr-owner']")), "王芳");
    // Switch to the child's card: its name in large type, its code.
    let link = d.find(&format!("//a[@data-card='{child_card}']"));
    assert!(d.text(&link).contains("王小宝"));
    assert!(d.text(&link).contains("我是母亲"));
    d.loads(|| d.click(&link));
    p.wait_to_see("王小宝");
    assert_eq!(d.text(&d.find("//*[@id='qr-owner']")), "王小宝");
    d.find(&format!(
        "//*[@id='qr' and @data-card='{child_card}']/*[name()='svg']"
    ));
    let scanned = p.read_qr("//*[@id='qr']");
    p.shot("holder-family-child");
    let v: serde_json::Value = http
        .post(format!("{}/api/v1/verify", app.base))
        .bearer_auth(&key)
        .json(&serde_json::json!({"token": scanned, "channel": "window"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["card_id"], child_card.as_str());
    assert_eq!(v["resident"]["id"], child_id.as_str());
    assert_eq!(v["resident"]["guardians"][0]["relation"], "mother");
    assert_eq!(v["resident"]["guardians"][0]["phone_masked"], "138****1234");
    // The card office ends the guardianship: the page says so, the QR is gone.
    let r = http
        .delete(format!(
            "{}/api/v1/residents/{child_id}/guardians/{parent_id}",
            app.base
        ))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    p.open(&format!("/card?card={child_card}"));
    p.wait_to_see("发卡机构已解除监护关系");
    assert!(p.sees("这张家庭成员的卡已不在您的手机上"));
    assert!(d.try_find("//a[@data-card]").is_none());
}

/// The card office registers a foreigner by passport (the form changes with
/// the type), a newborn under them, and adds the child's birth certificate
/// later; refusals stand beside their field and full numbers are never shown.
#[test]
fn the_portal_registers_every_kind_of_patient() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let app = spawn_app();
    let d = Driver::start(&browser);
    let p = Person {
        d: &d,
        base: &app.base,
    };
    let choose = |select: &str, value: &str| {
        let o = d.find(&format!(
            "//select[@id='{select}']/option[@value='{value}']"
        ));
        d.click(&o);
    };
    let set_date = |id: &str, date: &str| {
        d.execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            serde_json::json!([id, date]),
        );
    };
    p.open("/admin/login");
    p.fill("用户名", ADMIN);
    p.fill("密码", PASSWORD);
    p.press("登录");
    p.wait_to_see("查找居民");

    // --- A foreigner by passport: the passport tab asks for country, sex and birth date.
    p.open("/admin/residents/new");
    assert!(d.try_find("//input[@id='country']").is_none());
    p.press("护照");
    p.wait_to_see("签发国家代码");
    p.fill("姓名", "John Smith");
    p.fill("护照号码", "E12345678");
    p.fill("签发国家代码", "XYZ");
    p.press("登记");
    p.wait_to_see("三位字母代码");
    assert!(p.error_beside("签发国家代码").contains("ISO 3166-1"));
    assert!(p.error_beside("性别").contains("必填"));
    p.fill("签发国家代码", "USA");
    choose("sex", "male");
    set_date("birth_date", "1985-04-12");
    p.press("登记");
    p.wait_to_see("尚未发卡");
    let father = p.path().trim_start_matches("/admin/residents/").to_string();
    assert!(p.sees("护照"));
    assert!(p.sees("1985-04-12"));
    assert!(
        !p.sees("E12345678"),
        "the full passport number is not shown"
    );
    p.shot("admin-registered-passport");

    // --- The same passport again is refused beside its field, with a link to the resident.
    p.open("/admin/residents/new?type=passport");
    p.fill("姓名", "J. Smith");
    p.fill("护照号码", "E12345678");
    p.fill("签发国家代码", "USA");
    choose("sex", "male");
    set_date("birth_date", "1985-04-12");
    p.press("登记");
    p.wait_to_see("该证件号码已经登记");
    p.press("查看该居民");
    p.wait_to_see("John Smith");
    assert_eq!(p.path(), format!("/admin/residents/{father}"));

    // --- A newborn under him, before any document exists.
    p.open("/admin/residents/new");
    p.press("新生儿（由监护人登记）");
    p.wait_to_see("监护人的居民编号");
    assert!(d.try_find("//input[@id='number']").is_none());
    let born = (chrono::Utc::now().date_naive() - chrono::Duration::days(9))
        .format("%Y-%m-%d")
        .to_string();
    p.fill("姓名", "小约翰");
    choose("sex", "male");
    set_date("birth_date", "2020-01-01");
    p.fill("监护人的居民编号", &father);
    choose("relation", "father");
    p.press("登记");
    p.wait_to_see("一周岁以内的新生儿");
    set_date("birth_date", &born);
    p.press("登记");
    p.wait_to_see("尚未发卡");
    let child = p.path().trim_start_matches("/admin/residents/").to_string();
    assert_ne!(child, father);
    assert!(
        p.sees("John Smith"),
        "the guardian is listed on the child's page"
    );
    p.shot("admin-registered-newborn");

    // --- The birth certificate comes later: same resident; a bad number first.
    p.press("添加证件");
    p.wait_to_see("出生医学证明编号");
    p.fill("出生医学证明编号", "12");
    p.press("添加");
    p.wait_to_see("不符合该证件的格式");
    p.fill("出生医学证明编号", "X000000077");
    p.press("添加");
    p.wait_to_see("尚未发卡");
    assert_eq!(p.path(), format!("/admin/residents/{child}"));
    assert!(p.sees("出生医学证明"));
    assert!(
        !p.sees("X000000077"),
        "the full certificate number is not shown"
    );
}

/// The card office merges a temporary record into the real one from the
/// resident's page: the real record's id, a confirmation that names both,
/// the box ticked; the old card then answers `card_replaced`.
#[test]
fn a_merge_from_the_residents_page() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let app = spawn_app();
    let admin_api = AdminApi::sign_in(&app.base);
    let http = &admin_api.http;
    let token = admin_api.token.clone();
    let api = |path: &str, body| admin_api.post(path, body);
    let register = |name: &str, first17: &str| -> (String, String) {
        let r = api(
            "/api/v1/residents",
            serde_json::json!({"name": name, "national_id": national_id(first17)}),
        );
        let id = r["id"].as_str().unwrap().to_string();
        let card = api(
            &format!("/api/v1/residents/{id}/cards"),
            serde_json::json!({}),
        )["card"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        (id, card)
    };
    let (source, s_card) = register("急诊无名氏", "11010519700101001");
    let (into, t_card) = register("赵六", "11010519700202003");
    let old_token = api(
        &format!("/api/v1/cards/{s_card}/tokens"),
        serde_json::json!({"kind": "static"}),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();

    let d = Driver::start(&browser);
    let p = Person {
        d: &d,
        base: &app.base,
    };
    p.open("/admin/login");
    p.fill("用户名", ADMIN);
    p.fill("密码", PASSWORD);
    p.press("登录");
    p.wait_to_see("查找居民");
    p.open(&format!("/admin/residents/{source}"));
    p.press("合并到另一条记录…");
    p.wait_to_see("合并后不可撤销");
    p.fill("真实记录的编号", &into);
    p.press("下一步");
    p.wait_to_see("我已核实两条记录是同一个人");
    assert!(
        p.sees("急诊无名氏") && p.sees("赵六"),
        "both records are named"
    );
    p.shot("admin-merge-confirm");
    // Without the box ticked, nothing happens.
    p.press("确认合并");
    p.wait_to_see("请勾选确认");
    p.tick("我已核实两条记录是同一个人，确认合并");
    p.press("确认合并");
    // The confirmation page names 赵六 too: wait for the redirect itself.
    p.wait_for_path(&format!("/admin/residents/{into}"));
    p.wait_to_see("赵六");
    p.open(&format!("/admin/residents/{source}"));
    p.wait_to_see("此记录已合并到");
    assert!(p.sees(&into));
    let r: serde_json::Value = http
        .get(format!("{}/api/v1/residents/{source}", app.base))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["merged_into"], into.as_str());
    assert_eq!(r["cards"][0]["replaced_by"], t_card.as_str());
    let key = api(
        "/api/v1/clinics",
        serde_json::json!({"code": "ER-1", "name": "急救中心", "scopes": ["verify"]}),
    )["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let v: serde_json::Value = http
        .post(format!("{}/api/v1/verify", app.base))
        .bearer_auth(&key)
        .json(&serde_json::json!({"token": old_token}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["reason"], "card_replaced", "{v}");
}

/// Issue 14: an emergency department issues a temporary card by API; the card
/// office lists it and prints its wristband, whose QR scans at the issuing
/// clinic's kiosk with the temporary-card banner and is refused at another.
#[test]
fn a_temporary_card_on_a_wristband() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let app = spawn_app();
    let admin_api = AdminApi::sign_in(&app.base);
    let http = &admin_api.http;
    let admin = admin_api.token.clone();
    let clinic = |code: &str, name: &str, scopes: serde_json::Value| -> String {
        http.post(format!("{}/api/v1/clinics", app.base))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"code": code, "name": name, "scopes": scopes}))
            .send()
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let er = clinic(
        "ER-1",
        "市第一人民医院急诊科",
        serde_json::json!(["verify", "register"]),
    );
    let other = clinic("OTHER", "市中医院", serde_json::json!(["verify"]));
    let issued: serde_json::Value = http
        .post(format!("{}/api/v1/temporary-cards", app.base))
        .bearer_auth(&er)
        .json(&serde_json::json!({"sex": "male", "birth_year": 1980, "note": "120 送来"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let card = issued["card"]["id"].as_str().unwrap().to_string();

    let d = Driver::start(&browser);
    let p = Person {
        d: &d,
        base: &app.base,
    };
    p.open("/admin/login");
    p.fill("用户名", ADMIN);
    p.fill("密码", PASSWORD);
    p.press("登录");
    p.wait_to_see("查找居民");
    // The list of open temporary cards, with the clinic and the end date.
    p.press("临时卡");
    p.wait_to_see("仍在有效期内的临时卡");
    let row = d.find(&format!("//tr[@data-card='{card}']"));
    let text = d.text(&row);
    assert!(
        text.contains("无名氏") && text.contains("市第一人民医院急诊科"),
        "{text}"
    );
    p.shot("admin-temporary-cards");
    // The patient's page: no document, the estimated year, the card marked.
    p.open(&format!(
        "/admin/residents/{}",
        issued["resident"]["id"].as_str().unwrap()
    ));
    p.wait_to_see("临时卡患者");
    assert!(p.sees("1980") && p.sees("临时卡，有效期至"));
    p.open("/admin/temporary-cards");
    // Its wristband: a GET shows the form, the POST mints and lays it out.
    p.press("打印腕带");
    p.wait_to_see("腕带带有此临时卡的静态二维码");
    p.press("生成腕带");
    d.find("//*[@id='wristband']//*[name()='svg']");
    let band = d.text(&d.find("//*[@id='wristband']"));
    assert!(
        band.contains("无名氏") && band.contains("男") && band.contains("1980"),
        "{band}"
    );
    assert!(band.contains(&card[..8]) && band.contains("市第一人民医院急诊科"));
    assert!(!band.contains("120 送来"), "the note stays off the band");
    d.set_window(1400, 500);
    let scanned = p.read_qr("//*[@id='band-qr']");
    p.shot("admin-wristband");
    d.set_window(1280, 1000);
    // Making it was recorded before the page was sent.
    let log: Vec<serde_json::Value> = http
        .get(format!("{}/api/v1/cards/{card}/access-log", app.base))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(log
        .iter()
        .any(|e| e["action"] == "card.print" && e["detail"] == "static via wristband"));
    // The issuing clinic's kiosk: valid, with the banner.
    p.open("/kiosk");
    p.fill("API 密钥", &er);
    p.press("登录");
    p.wait_to_see("请扫描电子健康卡二维码");
    p.scan(&scanned);
    assert_eq!(p.outcome(), "valid");
    assert!(p.sees("临时卡 · 仅限本机构使用"));
    assert!(p.sees("无名氏") && p.sees("1980"));
    p.shot("kiosk-temporary");
    // Another clinic's kiosk: refused, in words.
    p.press("退出");
    p.wait_to_see("API 密钥");
    p.fill("API 密钥", &other);
    p.press("登录");
    p.wait_to_see("请扫描电子健康卡二维码");
    p.scan(&scanned);
    assert_eq!(p.outcome(), "card_restricted");
    assert!(p.sees("此临时卡仅限签发机构使用"));
}
