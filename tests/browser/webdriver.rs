//! A small W3C WebDriver client over blocking HTTP: enough to drive headless
//! Chromium through chromedriver (no extra crate, no async runtime).
//!
//! Waits poll every 50 ms for at most [`WAIT`]; a driver error other than
//! "no such element" fails the test at once rather than reading as absence;
//! [`Driver::loads`] waits for the page a click loads to replace the old one;
//! a failed wait leaves a screenshot in `target/screenshots/`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code for the Enter key.
pub const ENTER: &str = "\u{E007}";
/// How long a wait waits before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Where the browser and its driver are, if installed.
pub struct Browser {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Browser {
    /// `CHROME_BIN`/`CHROMEDRIVER` or the Debian names on `PATH`.
    pub fn find() -> Option<Browser> {
        let chromium = std::env::var_os("CHROME_BIN")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .or_else(|| on_path("chromium"))
            .or_else(|| on_path("chromium-browser"))
            .or_else(|| on_path("google-chrome"))?;
        let chromedriver = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .or_else(|| on_path("chromedriver"))?;
        Some(Browser {
            chromium,
            chromedriver,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Element(pub String);

pub struct Driver {
    http: reqwest::blocking::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Driver {
    /// Starts chromedriver and a fresh headless Chromium session.
    pub fn start(b: &Browser) -> Driver {
        let port = free_port();
        let driver = Command::new(&b.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", b.chromedriver.display()));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,1000".into(),
            "--lang=zh-CN".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": b.chromium.display().to_string(), "args": args},
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .expect("new session")
            .json()
            .expect("new session answer");
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_string();
        Driver {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        }
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let url = format!("{}{}", self.session, path);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{url}: {e}"));
        let ok = resp.status().is_success();
        let v: Value = resp.json().unwrap_or(Value::Null);
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(WdError {
                error: v["value"]["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_string(),
                message: v["value"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            })
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body))
            .unwrap_or_else(|e| self.fail(&format!("POST {path}: {e}")))
    }

    fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None)
            .unwrap_or_else(|e| self.fail(&format!("GET {path}: {e}")))
    }

    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.get("/url").as_str().unwrap_or_default().to_string()
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}));
    }

    fn element(v: &Value) -> Element {
        Element(
            v[ELEMENT_KEY]
                .as_str()
                .expect("an element reference")
                .to_string(),
        )
    }

    /// The element `xpath` now, or `None` if there is none; any other
    /// answer of the driver fails the test (so that an absence asserted
    /// with `is_none()` is a real one).
    #[track_caller]
    pub fn try_find(&self, xpath: &str) -> Option<Element> {
        match self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "xpath", "value": xpath})),
        ) {
            Ok(v) => Some(Self::element(&v)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => self.fail(&format!("finding {xpath}: {e}")),
        }
    }

    /// Waits up to [`WAIT`] for an element.
    #[track_caller]
    pub fn find(&self, xpath: &str) -> Element {
        let mut found = None;
        self.wait_until(&format!("an element {xpath}"), || {
            found = self.try_find(xpath);
            found.is_some()
        });
        found.expect("found")
    }

    /// Polls `done` every 50 ms until it holds; after [`WAIT`] the test fails
    /// with the page's address, its text and a screenshot.
    #[track_caller]
    pub fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done() {
            if Instant::now() > deadline {
                self.fail(&format!("waited {WAIT:?} for {what}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Does `act` (a click, a key press) that loads a new page, and returns
    /// once that page has replaced this one and finished loading. Without
    /// it, a wait for something the old page also shows returns at once.
    #[track_caller]
    pub fn loads(&self, act: impl FnOnce()) {
        let old = self.find("/html");
        act();
        self.wait_until("the next page", || {
            let gone = match self.call(
                reqwest::Method::GET,
                &format!("/element/{}/name", old.0),
                None,
            ) {
                Ok(_) => false,
                Err(e) => e.error == "stale element reference" || e.error == "no such element",
            };
            gone && self
                .try_script("return document.readyState")
                .is_ok_and(|v| v == "complete")
        });
    }

    /// The element that has the keyboard focus.
    pub fn active(&self) -> Element {
        Self::element(&self.get("/element/active"))
    }

    pub fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({}));
    }

    pub fn clear(&self, e: &Element) {
        self.post(&format!("/element/{}/clear", e.0), json!({}));
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }));
    }

    pub fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0))
            .as_str()
            .map(str::to_string)
    }

    pub fn same(&self, a: &Element, b: &Element) -> bool {
        a.0 == b.0
    }

    fn try_script(&self, script: &str) -> Result<Value, WdError> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    fn try_page_text(&self) -> Result<String, WdError> {
        self.try_script("return document.body ? document.body.innerText : ''")
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    /// What the page shows; fails the test if the driver cannot say (so that
    /// `!sees(..)` is never true only because the page could not be read).
    pub fn page_text(&self) -> String {
        self.try_page_text()
            .unwrap_or_else(|e| self.fail(&format!("reading the page: {e}")))
    }

    /// Like [`Driver::wait_until`], for a text on the page.
    #[track_caller]
    pub fn wait_for_text(&self, text: &str) {
        self.wait_until(&format!("{text:?} on the page"), || {
            self.try_page_text().is_ok_and(|t| t.contains(text))
        });
    }

    fn png(v: Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("screenshot is base64")
    }

    pub fn screenshot(&self) -> Vec<u8> {
        Self::png(self.get("/screenshot"))
    }

    #[allow(dead_code)]
    pub fn element_screenshot(&self, e: &Element) -> Vec<u8> {
        Self::png(self.get(&format!("/element/{}/screenshot", e.0)))
    }

    /// Saves a screenshot of the viewport as `dir/name.png`.
    pub fn save_screenshot(&self, dir: &Path, name: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), self.screenshot()).unwrap();
    }

    /// Fails the test with `why`, the page's address and text, and a
    /// screenshot in `target/screenshots/failed-<n>.png` (whatever of these
    /// the driver can still give).
    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        static FAILURES: AtomicUsize = AtomicUsize::new(0);
        let url = self
            .call(reqwest::Method::GET, "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let text = self.try_page_text().unwrap_or_default();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        let name = format!("failed-{}", FAILURES.fetch_add(1, Ordering::Relaxed));
        let shot = self
            .call(reqwest::Method::GET, "/screenshot", None)
            .ok()
            .and_then(|v| {
                std::fs::create_dir_all(&dir).ok()?;
                let path = dir.join(format!("{name}.png"));
                std::fs::write(&path, Self::png(v)).ok()?;
                Some(path.display().to_string())
            })
            .unwrap_or_else(|| "none".into());
        panic!("{why}\non {url} (screenshot: {shot}); the page says:\n{text}");
    }
}

/// A WebDriver error answer: its `error` code (e.g. `no such element`) and message.
#[derive(Debug)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.session).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
