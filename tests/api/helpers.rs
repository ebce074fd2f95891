//! `spawn_app()`: the real application on a random port, on a fresh SQLite
//! or PostgreSQL database, with typed helpers for the requests tests make.

use std::sync::mpsc;
use std::time::Duration;

use healthcard::config::Settings;
use healthcard::service::AppContext;
use healthcard::startup::Application;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running app and what tests need to talk to it.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub ctx: AppContext,
    pub admin_token: String,
    pub settings: Settings,
    _dir: tempfile::TempDir,
}

/// Valid national ID numbers (GB 11643 check digits), distinct per call.
pub fn national_id(n: u32) -> String {
    // Region 110105 (Beijing Chaoyang), birth 1960-01-01 plus n days, sequence from n.
    let birth = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).unwrap()
        + chrono::Duration::days((n % 15000) as i64);
    let seq = 100 + (n / 15000) % 900;
    national_id_born(&birth.format("%Y%m%d").to_string(), seq)
}

/// A valid ID number of region 110105 born on `birth` (YYYYMMDD) with
/// sequence `seq` (odd: male), its check digit computed (GB 11643).
pub fn national_id_born(birth: &str, seq: u32) -> String {
    let body = format!("110105{birth}{seq:03}");
    format!("{body}{}", gb11643_check(&body))
}

/// A valid national ID number of someone born on `birth` (distinct per `n`
/// below 900; an even sequence digit is a woman's, odd a man's).
pub fn national_id_born_on(birth: chrono::NaiveDate, n: u32) -> String {
    national_id_born(&birth.format("%Y%m%d").to_string(), 100 + n % 900)
}

pub fn settings_for(backend: Backend, dir: &std::path::Path) -> Option<Settings> {
    let url = match backend {
        Backend::Sqlite => dir.join("healthcard.db").display().to_string(),
        Backend::Postgres => crate::common::db::fresh_pg_url()?,
    };
    Some(Settings {
        data_dir: dir.to_path_buf(),
        database_url: url,
        bind: "127.0.0.1:0".into(),
        db_pool_size: 8,
        db_timeout_secs: 2,
        key_refresh_secs: 1,
        ..Settings::default()
    })
}

/// Starts the app; `None` when the backend is not available (PostgreSQL
/// without a server, and not required: the helper says so loudly).
pub fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    spawn_app_as(backend, "admin", tweak)
}

/// As [`spawn_app_with`], signing in as a new administrator `username`.
pub fn spawn_app_as(
    backend: Backend,
    username: &str,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_for(backend, dir.path())?;
    tweak(&mut settings);
    let (tx, rx) = mpsc::channel();
    let s2 = settings.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(s2).expect("app builds");
            tx.send((app.port(), app.context.clone())).unwrap();
            let _ = app.run_until_stopped().await;
        })
    });
    let (port, ctx) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("app started");
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut app = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client,
        ctx,
        admin_token: String::new(),
        settings,
        _dir: dir,
    };
    app.make_admin(username, "correct horse battery");
    app.admin_token = app.login(username, "correct horse battery");
    Some(app)
}

pub fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {})
}

/// Runs `body` once on SQLite and once on PostgreSQL, with `tweak` applied
/// to the settings of each.
pub fn on_both_with(tweak: impl Fn(&mut Settings), body: impl Fn(TestApp)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(app) = spawn_app_with(backend, &tweak) {
            body(app);
        }
    }
}

/// Runs `body` once on SQLite and once on PostgreSQL.
pub fn on_both(body: impl Fn(TestApp)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(app) = spawn_app(backend) {
            body(app);
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn make_admin(&self, username: &str, password: &str) {
        let hash = healthcard::crypto::hash_password(password).unwrap();
        let u = healthcard::domain::Username::parse(username).unwrap();
        healthcard::store::admins::create(&mut self.ctx.conn().unwrap(), &u, &hash).unwrap();
    }

    pub fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/admin/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "login");
        r.json::<Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }
    pub fn admin_get(&self, path: &str) -> Response {
        self.get(path)
            .bearer_auth(&self.admin_token)
            .send()
            .unwrap()
    }
    pub fn admin_post(&self, path: &str, body: Value) -> Response {
        self.post(path)
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .unwrap()
    }

    /// Registers a resident and returns its JSON.
    pub fn register(&self, n: u32) -> Value {
        let r = self.admin_post(
            "/api/v1/residents",
            json!({"name": "张三", "national_id": national_id(n), "phone": "13800138000"}),
        );
        assert_eq!(r.status(), 201);
        r.json().unwrap()
    }

    /// Registers a resident born on `birth` (`n` keeps the ID numbers of one
    /// birth date apart) and returns its id.
    pub fn register_born(&self, birth: chrono::NaiveDate, n: u32, phone: Option<&str>) -> String {
        let r = self.admin_post(
            "/api/v1/residents",
            json!({"name": format!("家人{n}"), "national_id": national_id_born_on(birth, n), "phone": phone}),
        );
        assert_eq!(r.status(), 201);
        r.json::<Value>().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Issues a card to a resident: (card id, holder credential).
    pub fn issue_card(&self, resident: &str) -> (String, String) {
        let r = self.admin_post(&format!("/api/v1/residents/{resident}/cards"), json!({}));
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        (
            v["card"]["id"].as_str().unwrap().to_string(),
            v["holder_credential"].as_str().unwrap().to_string(),
        )
    }

    /// Registers a resident and issues a card: (resident id, card id, holder credential).
    pub fn resident_with_card(&self, n: u32) -> (String, String, String) {
        let res = self.register(n);
        let rid = res["id"].as_str().unwrap().to_string();
        let r = self.admin_post(&format!("/api/v1/residents/{rid}/cards"), json!({}));
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        (
            rid,
            v["card"]["id"].as_str().unwrap().to_string(),
            v["holder_credential"].as_str().unwrap().to_string(),
        )
    }

    pub fn mint(&self, card: &str, kind: &str) -> String {
        let r = self.admin_post(
            &format!("/api/v1/cards/{card}/tokens"),
            json!({"kind": kind}),
        );
        assert_eq!(r.status(), 201);
        r.json::<Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Makes a clinic with `scopes` and returns (clinic JSON, api key).
    pub fn clinic(&self, code: &str, scopes: &[&str]) -> (Value, String) {
        let r = self.admin_post(
            "/api/v1/clinics",
            json!({"code": code, "name": format!("{code} 医院"), "scopes": scopes}),
        );
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        let key = v["api_key"].as_str().unwrap().to_string();
        (v["clinic"].clone(), key)
    }

    pub fn verify(&self, key: &str, token: &str) -> Value {
        let r = self
            .post("/api/v1/verify")
            .bearer_auth(key)
            .json(&json!({"token": token, "channel": "window"}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().unwrap()
    }
}

/// Asserts the error body of API.md and returns its code.
pub fn error_code(r: Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status, "status");
    let v: Value = r.json().expect("error body is JSON");
    assert!(v["message"].is_string(), "message in {v}");
    v["code"].as_str().expect("code").to_string()
}

/// `healthcard --data-dir DIR [--database-url URL] ARGS` as a process, with
/// none of the environment's settings and `stdin` (if any) piped in.
pub fn cli(
    dir: &std::path::Path,
    url: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthcard"));
    cmd.arg("--data-dir").arg(dir);
    if let Some(url) = url {
        cmd.arg("--database-url").arg(url);
    }
    let mut child = cmd
        .args(args)
        .env_remove("HEALTHCARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("HEALTHCARD_MASTER_KEY")
        .env_remove("HEALTHCARD_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// The standard output of a command that must have succeeded.
pub fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The standard error of a command that must have failed.
pub fn err(o: &std::process::Output) -> String {
    assert!(
        !o.status.success(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The MOD 11-2 check character of GB 11643 over 17 digits.
fn gb11643_check(body: &str) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    C[(sum % 11) as usize] as char
}

/// Every document type of API-2.md.
pub const DOCUMENT_TYPES: [&str; 8] = [
    "resident_id_card",
    "household_register",
    "passport",
    "hk_macao_permit",
    "taiwan_permit",
    "birth_certificate",
    "hmt_residence_permit",
    "foreign_permanent_residence",
];

/// A valid `document` object of `kind`, distinct per `n` (n < 10^7); a
/// passport is Chinese. Citizen numbers are `national_id(n)`.
pub fn document(kind: &str, n: u32) -> Value {
    let number = match kind {
        "resident_id_card" | "household_register" => national_id(n),
        "passport" => format!("E{n:08}"),
        "hk_macao_permit" => format!("H{n:08}00"),
        "taiwan_permit" => format!("{n:08}"),
        "birth_certificate" => format!("X{n:09}"),
        "hmt_residence_permit" => {
            let birth = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).unwrap()
                + chrono::Duration::days((n % 15000) as i64);
            let body = format!(
                "810000{}{:03}",
                birth.format("%Y%m%d"),
                100 + (n / 15000) % 900
            );
            format!("{body}{}", gb11643_check(&body))
        }
        "foreign_permanent_residence" => {
            let body = format!("9{n:016}");
            format!("{body}{}", gb11643_check(&body))
        }
        other => panic!("no such document type: {other}"),
    };
    if kind == "passport" {
        json!({"type": kind, "number": number, "country": "CHN"})
    } else {
        json!({"type": kind, "number": number})
    }
}

/// Whether numbers of `kind` encode sex and birth date (else they are given).
pub fn encodes_demographics(kind: &str) -> bool {
    matches!(
        kind,
        "resident_id_card" | "household_register" | "hmt_residence_permit"
    )
}
