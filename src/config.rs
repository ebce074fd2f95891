//! Configuration in one place: defaults, then a TOML file, then the
//! environment, then command-line flags (each later layer wins).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::crypto::{MasterKey, Suite};
use crate::proxy::TrustedProxies;

/// The data folder when none is given: `./data`.
pub const DEFAULT_DATA_DIR: &str = "data";

/// Everything the service and the commands read from their surroundings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where SQLite's file, the master key file and other local state live.
    pub data_dir: PathBuf,
    /// `postgres://…` or a SQLite path (`sqlite://path` or a plain path).
    pub database_url: String,
    /// Address the HTTP server binds; port 0 picks a free port.
    pub bind: String,
    /// Base64 master key from the environment; `None` means the key file in `data_dir`.
    pub master_key: Option<String>,
    /// `iss` of minted tokens. Short on purpose: every byte grows the QR code.
    pub issuer: String,
    pub dynamic_token_ttl_secs: i64,
    pub static_token_ttl_secs: i64,
    /// Allowance for clocks that disagree between the minting and verifying side.
    pub clock_skew_secs: i64,
    pub session_ttl_secs: i64,
    pub db_pool_size: u32,
    /// How long a request waits for a database connection before answering 503.
    pub db_timeout_secs: u64,
    /// Access-log appender threads (each with its own connection) on
    /// PostgreSQL; SQLite always has one. One is fastest on one node: see
    /// `service::audit`.
    pub log_writers: u32,
    /// Verifications a second per clinic API key (sustained); bursts up to twice that.
    pub verify_rate_per_sec: u32,
    /// Token requests a minute per holder credential.
    pub holder_rate_per_min: u32,
    /// Failed sign-ins for one username before the slow-down starts.
    pub login_failures_before_lockout: u32,
    /// How often each node re-reads the signing keys (rotation or revocation on another node).
    pub key_refresh_secs: u64,
    /// `POST /api/v1/links` needs the clinic to have verified the card this
    /// recently (a valid verification in the access log).
    pub link_scan_window_secs: i64,
    /// `HEALTHCARD_TEMPORARY_CARD_DAYS`: how long a temporary card (临时卡)
    /// is valid after issue, 1-365 days (default 30).
    pub temporary_card_days: u32,
    /// JSON log lines instead of human-readable ones.
    pub log_json: bool,
    /// Proxies whose `X-Forwarded-*` and `Forwarded` headers are believed (default none).
    pub trusted_proxies: TrustedProxies,
    /// This node's public base URL (`https://hc.example`), for links shown to
    /// people; `None`: `http://` and the bind address, for local use.
    pub public_url: Option<String>,
    /// Start of the FHIR identifier systems (`{prefix}:resident`, `{prefix}:card`,
    /// `{prefix}:clinic:{code}:mrn`); empty means `urn:healthcard:{issuer}`.
    pub fhir_system_prefix: String,
    /// `HEALTHCARD_CRYPTO_SUITE`: the suite a new data folder is made with;
    /// for an existing folder it must match what the folder records (or be unset).
    pub crypto_suite: Option<Suite>,
    /// `HEALTHCARD_ISSUER_NAME`: the issuer's name shown to people (济南市),
    /// in this node's trust-list entry.
    pub issuer_name: Option<String>,
    /// `HEALTHCARD_FEDERATION_ROOT_KEY`: a file with the federation
    /// operator's public JWK; federation is off without it.
    pub federation_root_key: Option<PathBuf>,
    /// `HEALTHCARD_TRUST_LIST`: where the trust list comes from, an
    /// `http(s)://` URL or a file path.
    pub trust_list: Option<String>,
    /// `HEALTHCARD_TRUST_LIST_REFRESH_SECS`: how often to fetch it (default 300).
    pub trust_list_refresh_secs: u64,
    /// `HEALTHCARD_FEDERATION_TIMEOUT_MS`: how long a visiting node waits
    /// for a home node before answering `issuer_unavailable` (default 2000).
    pub federation_timeout_ms: u64,
    /// `HEALTHCARD_FEDERATION_PEER_RATE_PER_SEC`: node-to-node requests a
    /// second this node answers per peer node key (sustained; bursts up to
    /// twice that), 429 `rate_limited` beyond (default 1000).
    pub federation_peer_rate_per_sec: u32,
}

/// The optional TOML file: same names as [`Settings`], every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    bind: Option<String>,
    issuer: Option<String>,
    dynamic_token_ttl_secs: Option<i64>,
    static_token_ttl_secs: Option<i64>,
    clock_skew_secs: Option<i64>,
    session_ttl_secs: Option<i64>,
    db_pool_size: Option<u32>,
    db_timeout_secs: Option<u64>,
    log_writers: Option<u32>,
    verify_rate_per_sec: Option<u32>,
    holder_rate_per_min: Option<u32>,
    login_failures_before_lockout: Option<u32>,
    key_refresh_secs: Option<u64>,
    link_scan_window_secs: Option<i64>,
    temporary_card_days: Option<u32>,
    log_json: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    public_url: Option<String>,
    fhir_system_prefix: Option<String>,
    crypto_suite: Option<String>,
    issuer_name: Option<String>,
    federation_root_key: Option<PathBuf>,
    trust_list: Option<String>,
    trust_list_refresh_secs: Option<u64>,
    federation_timeout_ms: Option<u64>,
    federation_peer_rate_per_sec: Option<u32>,
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub bind: Option<String>,
}

/// A configuration that cannot be used, with a message for the operator.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: String::new(),
            bind: "127.0.0.1:8080".into(),
            master_key: None,
            issuer: "HC".into(),
            dynamic_token_ttl_secs: 120,
            static_token_ttl_secs: 5 * 365 * 24 * 3600,
            clock_skew_secs: 60,
            session_ttl_secs: 8 * 3600,
            db_pool_size: 16,
            db_timeout_secs: 5,
            log_writers: 1,
            verify_rate_per_sec: 2000,
            holder_rate_per_min: 30,
            login_failures_before_lockout: 5,
            key_refresh_secs: 2,
            link_scan_window_secs: 24 * 3600,
            temporary_card_days: 30,
            log_json: false,
            trusted_proxies: TrustedProxies::default(),
            public_url: None,
            fhir_system_prefix: String::new(),
            crypto_suite: None,
            issuer_name: None,
            federation_root_key: None,
            trust_list: None,
            trust_list_refresh_secs: 300,
            federation_timeout_ms: 2000,
            federation_peer_rate_per_sec: 1000,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_suite(name: &str, v: &str) -> Result<Suite, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError(format!("{name}: {v:?} is not `default` or `gm`")))
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError(format!("{name}: cannot parse {v:?}"))),
    }
}

impl Settings {
    /// The FHIR identifier systems' common start (see [`Settings::fhir_system_prefix`]).
    pub fn fhir_prefix(&self) -> String {
        if self.fhir_system_prefix.trim().is_empty() {
            format!("urn:healthcard:{}", self.issuer)
        } else {
            self.fhir_system_prefix
                .trim()
                .trim_end_matches(':')
                .to_string()
        }
    }

    /// Reads the layers: defaults, file (`--config` or `HEALTHCARD_CONFIG`), environment, flags.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        let file = overrides
            .config_file
            .clone()
            .or_else(|| env("HEALTHCARD_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            let f: FileSettings = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            s.apply_file(f)?;
        }
        s.apply_env()?;
        if let Some(d) = &overrides.data_dir {
            s.data_dir = d.clone();
        }
        if let Some(u) = &overrides.database_url {
            s.database_url = u.clone();
        }
        if let Some(b) = &overrides.bind {
            s.bind = b.clone();
        }
        if s.database_url.is_empty() {
            s.database_url = database_file(&s.data_dir).display().to_string();
        }
        s.check()?;
        Ok(s)
    }

    fn apply_file(&mut self, f: FileSettings) -> Result<(), ConfigError> {
        if let Some(list) = &f.trusted_proxies {
            self.trusted_proxies = TrustedProxies::parse_all(list.iter().map(String::as_str))
                .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))?;
        }
        if let Some(u) = &f.public_url {
            self.public_url = Some(u.clone());
        }
        if let Some(v) = &f.issuer_name {
            self.issuer_name = Some(v.clone());
        }
        if let Some(v) = &f.federation_root_key {
            self.federation_root_key = Some(v.clone());
        }
        if let Some(v) = &f.trust_list {
            self.trust_list = Some(v.clone());
        }
        if let Some(v) = &f.crypto_suite {
            self.crypto_suite = Some(parse_suite("crypto_suite", v)?);
        }
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = f.$field { self.$field = v; } )* };
        }
        take!(
            data_dir,
            database_url,
            bind,
            issuer,
            dynamic_token_ttl_secs,
            static_token_ttl_secs,
            clock_skew_secs,
            session_ttl_secs,
            db_pool_size,
            db_timeout_secs,
            log_writers,
            verify_rate_per_sec,
            holder_rate_per_min,
            login_failures_before_lockout,
            key_refresh_secs,
            link_scan_window_secs,
            temporary_card_days,
            log_json,
            fhir_system_prefix,
            trust_list_refresh_secs,
            federation_timeout_ms,
            federation_peer_rate_per_sec
        );
        Ok(())
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        if let Some(v) = env("HEALTHCARD_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("HEALTHCARD_DATABASE_URL").or_else(|| env("DATABASE_URL")) {
            self.database_url = v;
        }
        if let Some(v) = env("HEALTHCARD_BIND") {
            self.bind = v;
        }
        self.master_key = env("HEALTHCARD_MASTER_KEY");
        if let Some(v) = env("HEALTHCARD_ISSUER") {
            self.issuer = v;
        }
        if let Some(v) = env("HEALTHCARD_TRUSTED_PROXIES") {
            self.trusted_proxies = TrustedProxies::parse(&v)
                .map_err(|e| ConfigError(format!("HEALTHCARD_TRUSTED_PROXIES: {e}")))?;
        }
        if let Some(v) = env("HEALTHCARD_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = env("HEALTHCARD_FHIR_SYSTEM_PREFIX") {
            self.fhir_system_prefix = v;
        }
        if let Some(v) = env("HEALTHCARD_ISSUER_NAME") {
            self.issuer_name = Some(v);
        }
        if let Some(v) = env("HEALTHCARD_FEDERATION_ROOT_KEY") {
            self.federation_root_key = Some(v.into());
        }
        if let Some(v) = env("HEALTHCARD_TRUST_LIST") {
            self.trust_list = Some(v);
        }
        if let Some(v) = env("HEALTHCARD_CRYPTO_SUITE") {
            self.crypto_suite = Some(parse_suite("HEALTHCARD_CRYPTO_SUITE", &v)?);
        }
        macro_rules! num {
            ($($field:ident => $name:literal),*) => {
                $( if let Some(v) = env_parse($name)? { self.$field = v; } )*
            };
        }
        num!(
            dynamic_token_ttl_secs => "HEALTHCARD_DYNAMIC_TOKEN_TTL_SECS",
            static_token_ttl_secs => "HEALTHCARD_STATIC_TOKEN_TTL_SECS",
            clock_skew_secs => "HEALTHCARD_CLOCK_SKEW_SECS",
            session_ttl_secs => "HEALTHCARD_SESSION_TTL_SECS",
            db_pool_size => "HEALTHCARD_DB_POOL_SIZE",
            db_timeout_secs => "HEALTHCARD_DB_TIMEOUT_SECS",
            log_writers => "HEALTHCARD_LOG_WRITERS",
            verify_rate_per_sec => "HEALTHCARD_VERIFY_RATE_PER_SEC",
            holder_rate_per_min => "HEALTHCARD_HOLDER_RATE_PER_MIN",
            login_failures_before_lockout => "HEALTHCARD_LOGIN_FAILURES_BEFORE_LOCKOUT",
            key_refresh_secs => "HEALTHCARD_KEY_REFRESH_SECS",
            link_scan_window_secs => "HEALTHCARD_LINK_SCAN_WINDOW_SECS",
            temporary_card_days => "HEALTHCARD_TEMPORARY_CARD_DAYS",
            log_json => "HEALTHCARD_LOG_JSON",
            trust_list_refresh_secs => "HEALTHCARD_TRUST_LIST_REFRESH_SECS",
            federation_timeout_ms => "HEALTHCARD_FEDERATION_TIMEOUT_MS",
            federation_peer_rate_per_sec => "HEALTHCARD_FEDERATION_PEER_RATE_PER_SEC"
        );
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.issuer.is_empty() || self.issuer.len() > 16 {
            return Err(ConfigError("issuer must be 1-16 characters".into()));
        }
        if !(10..=3600).contains(&self.dynamic_token_ttl_secs) {
            return Err(ConfigError("dynamic_token_ttl_secs must be 10-3600".into()));
        }
        if self.static_token_ttl_secs < 86_400 {
            return Err(ConfigError(
                "static_token_ttl_secs must be at least a day".into(),
            ));
        }
        if !(0..=600).contains(&self.clock_skew_secs) {
            return Err(ConfigError("clock_skew_secs must be 0-600".into()));
        }
        if self.db_pool_size == 0
            || self.verify_rate_per_sec == 0
            || self.holder_rate_per_min == 0
            || self.federation_peer_rate_per_sec == 0
        {
            return Err(ConfigError(
                "pool size and rate limits must be positive".into(),
            ));
        }
        if !(60..=30 * 86_400).contains(&self.link_scan_window_secs) {
            return Err(ConfigError(
                "link_scan_window_secs must be 60 s to 30 days".into(),
            ));
        }
        if !(1..=365).contains(&self.temporary_card_days) {
            return Err(ConfigError("temporary_card_days must be 1-365".into()));
        }
        if !(1..=64).contains(&self.log_writers) {
            return Err(ConfigError("log_writers must be 1-64".into()));
        }
        if let Some(u) = &self.public_url {
            public_base(u)?;
        }
        if let Some(n) = &self.issuer_name {
            crate::domain::IssuerName::parse(n)
                .map_err(|e| ConfigError(format!("issuer_name: {e}")))?;
        }
        if !(1..=86_400).contains(&self.trust_list_refresh_secs) {
            return Err(ConfigError(
                "trust_list_refresh_secs must be 1 s to a day".into(),
            ));
        }
        if !(50..=30_000).contains(&self.federation_timeout_ms) {
            return Err(ConfigError("federation_timeout_ms must be 50-30000".into()));
        }
        if self.trust_list.is_some() {
            if self.federation_root_key.is_none() {
                return Err(ConfigError(
                    "trust_list needs federation_root_key (the operator's public JWK file)".into(),
                ));
            }
            crate::domain::IssuerCode::parse(&self.issuer).map_err(|_| {
                ConfigError(
                    "a federated node's issuer must be its 6-digit GB/T 2260 code (e.g. 370100)"
                        .into(),
                )
            })?;
        }
        Ok(())
    }

    /// The base of links shown to people (`https://hc.example`, no trailing
    /// slash): the configured public URL, never a request's `Host` header
    /// (which any client can set). Unset, `http://` and the bind address,
    /// with an unspecified address read as loopback: right for local use only.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(u) => public_base(u).unwrap_or_else(|_| u.clone()),
            None => {
                let bind = self
                    .bind
                    .replace("0.0.0.0:", "127.0.0.1:")
                    .replace("[::]:", "[::1]:");
                format!("http://{bind}")
            }
        }
    }

    /// The master key: `HEALTHCARD_MASTER_KEY` if set, else the key file of
    /// the data folder ([`master_key_file`]; created with mode 0600 on first
    /// use). Returns whether it was created now.
    pub fn master_key(&self) -> Result<(MasterKey, bool), ConfigError> {
        match &self.master_key {
            Some(text) => MasterKey::from_base64(text)
                .map(|k| (k, false))
                .map_err(|e| ConfigError(format!("HEALTHCARD_MASTER_KEY: {e}"))),
            None => {
                let file = master_key_file(&self.data_dir);
                MasterKey::load_or_create_file(&file)
                    .map_err(|e| ConfigError(format!("master key {}: {e}", file.display())))
            }
        }
    }

    /// Whether the master key comes from the data folder's key file (not
    /// from `HEALTHCARD_MASTER_KEY`).
    pub fn master_key_from_file(&self) -> bool {
        self.master_key.is_none()
    }

    /// The database URL with any password hidden, for log lines.
    pub fn database_url_for_logs(&self) -> String {
        redact_url(&self.database_url)
    }
}

/// Checks a public URL (`http(s)://host[:port][/path]`, no query or
/// fragment) and returns it without a trailing slash.
fn public_base(url: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError(format!(
            "public_url must be http(s)://host[/path], not {url:?}"
        ))
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || host.contains('@')
        || url.contains(['?', '#'])
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Sub-folder of the data folder for the SQLite database (and its -wal and
/// -shm files), apart from the key so that a copy of one does not carry the other.
pub const DB_SUBDIR: &str = "db";
/// Sub-folder of the data folder for the master key file.
pub const KEYS_SUBDIR: &str = "keys";
/// The SQLite file's name.
pub const DB_FILE: &str = "healthcard.db";

/// The SQLite file in `data_dir`: `db/healthcard.db`, or `healthcard.db`
/// where a folder of the old flat layout already has one there.
pub fn database_file(data_dir: &Path) -> PathBuf {
    let old = data_dir.join(DB_FILE);
    if old.exists() {
        old
    } else {
        data_dir.join(DB_SUBDIR).join(DB_FILE)
    }
}

/// The master key file in `data_dir`: `keys/master.key`, or `master.key`
/// where a folder of the old flat layout already has one there.
pub fn master_key_file(data_dir: &Path) -> PathBuf {
    let old = data_dir.join(crate::crypto::MASTER_KEY_FILE);
    if old.exists() {
        old
    } else {
        data_dir
            .join(KEYS_SUBDIR)
            .join(crate::crypto::MASTER_KEY_FILE)
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_log_urls() {
        assert_eq!(
            redact_url("postgres://hc:secret@db:5432/hc"),
            "postgres://hc:***@db:5432/hc"
        );
        assert_eq!(redact_url("data/healthcard.db"), "data/healthcard.db");
        assert_eq!(redact_url("postgres://hc@db/hc"), "postgres://hc@db/hc");
    }

    #[test]
    fn public_urls_are_checked() {
        assert_eq!(
            public_base("https://hc.example/").unwrap(),
            "https://hc.example"
        );
        assert_eq!(
            public_base("http://10.0.0.5:8080/hc").unwrap(),
            "http://10.0.0.5:8080/hc"
        );
        for bad in [
            "hc.example",
            "https://",
            "https://a b",
            "https://x/?q",
            "ftp://x",
            "https://u@x",
        ] {
            assert!(public_base(bad).is_err(), "{bad}");
        }
        let s = Settings::default();
        assert_eq!(s.public_base(), "http://127.0.0.1:8080");
    }

    #[test]
    fn a_new_data_folder_keeps_database_and_key_apart_and_an_old_one_keeps_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(database_file(d), d.join("db").join("healthcard.db"));
        assert_eq!(master_key_file(d), d.join("keys").join("master.key"));
        std::fs::write(d.join("healthcard.db"), b"").unwrap();
        std::fs::write(d.join("master.key"), b"").unwrap();
        assert_eq!(database_file(d), d.join("healthcard.db"));
        assert_eq!(master_key_file(d), d.join("master.key"));
    }

    #[test]
    fn a_trust_list_needs_a_root_key_and_a_city_code() {
        let federated = Settings {
            trust_list: Some("list.jws".into()),
            federation_root_key: Some("root.jwk".into()),
            issuer: "370100".into(),
            ..Settings::default()
        };
        assert!(federated.check().is_ok());
        let no_root = Settings {
            federation_root_key: None,
            ..federated.clone()
        };
        assert!(no_root.check().is_err());
        let not_a_code = Settings {
            issuer: "HC".into(),
            ..federated.clone()
        };
        assert!(not_a_code.check().is_err());
        // Not federated: any short issuer, as before.
        assert!(Settings::default().check().is_ok());
        for bad in [0, 86_401] {
            let s = Settings {
                trust_list_refresh_secs: bad,
                ..Settings::default()
            };
            assert!(s.check().is_err());
        }
        let s = Settings {
            federation_timeout_ms: 10,
            ..Settings::default()
        };
        assert!(s.check().is_err());
        let s = Settings {
            issuer_name: Some(" ".into()),
            ..Settings::default()
        };
        assert!(s.check().is_err());
        assert!(toml::from_str::<FileSettings>(
            "trust_list_refresh_secs = 60\nissuer_name = \"济南市\""
        )
        .is_ok());
    }

    #[test]
    fn file_settings_reject_unknown_fields() {
        assert!(toml::from_str::<FileSettings>("bind = \"0.0.0.0:1\"").is_ok());
        assert!(toml::from_str::<FileSettings>("bnd = \"0.0.0.0:1\"").is_err());
    }
}
