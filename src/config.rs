//! Configuration in one place: defaults, then a TOML file, then the
//! environment, then command-line flags (each later layer wins).
//!
//! A new setting is a field of [`Settings`] (its doc comment, and a `serde`
//! attribute if its text needs parsing) and its default in
//! `impl Default for Settings`: the file key is the field's name and the
//! environment variable `HEALTHCARD_` and the name in capitals, both
//! derived from the field by [`Settings::load`]. A range or a rule across
//! settings goes in [`Settings::check`]; the row goes in docs/operations.md.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::crypto::{MasterKey, Suite};
use crate::proxy::TrustedProxies;

/// The data folder when none is given: `./data`.
pub const DEFAULT_DATA_DIR: &str = "data";

/// Everything the service and the commands read from their surroundings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where SQLite's file, the master key file and other local state live.
    pub data_dir: PathBuf,
    /// `postgres://…` or a SQLite path (`sqlite://path` or a plain path);
    /// also `DATABASE_URL`.
    pub database_url: String,
    /// Address the HTTP server binds; port 0 picks a free port.
    pub bind: String,
    /// Base64 master key, only from `HEALTHCARD_MASTER_KEY` (never a file
    /// key); `None` means the key file in `data_dir`.
    #[serde(skip)]
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
    /// How long a temporary card (临时卡) is valid after issue, 1-365 days.
    pub temporary_card_days: u32,
    /// JSON log lines instead of human-readable ones.
    pub log_json: bool,
    /// Proxies whose `X-Forwarded-*` and `Forwarded` headers are believed
    /// (default none): a list in the file, comma- or space-separated text
    /// in the environment.
    #[serde(deserialize_with = "trusted_proxies")]
    pub trusted_proxies: TrustedProxies,
    /// This node's public base URL (`https://hc.example`), for links shown to
    /// people; `None`: `http://` and the bind address, for local use.
    pub public_url: Option<String>,
    /// Start of the FHIR identifier systems (`{prefix}:resident`, `{prefix}:card`,
    /// `{prefix}:clinic:{code}:mrn`); empty means `urn:healthcard:{issuer}`.
    pub fhir_system_prefix: String,
    /// The suite a new data folder is made with (`default` or `gm`); for an
    /// existing folder it must match what the folder records (or be unset).
    #[serde(deserialize_with = "crypto_suite")]
    pub crypto_suite: Option<Suite>,
    /// The issuer's name shown to people (济南市), in this node's trust-list entry.
    pub issuer_name: Option<String>,
    /// A file with the federation operator's public JWK; federation is off without it.
    pub federation_root_key: Option<PathBuf>,
    /// Where the trust list comes from, an `http(s)://` URL or a file path.
    pub trust_list: Option<String>,
    /// How often to fetch the trust list.
    pub trust_list_refresh_secs: u64,
    /// How long a visiting node waits for a home node before answering
    /// `issuer_unavailable`.
    pub federation_timeout_ms: u64,
    /// Node-to-node requests a second this node answers per peer node key
    /// (sustained; bursts up to twice that), 429 `rate_limited` beyond.
    pub federation_peer_rate_per_sec: u32,
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub bind: Option<String>,
}

/// A configuration that cannot be used, with a message for the operator
/// that names the setting (its file key or environment variable).
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

/// Prefix of every setting's environment variable.
const ENV_PREFIX: &str = "HEALTHCARD_";

/// An environment variable's value, `None` when unset or blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The environment layer: `HEALTHCARD_<KEY>` for each file key of
/// [`Settings`] (and `DATABASE_URL` under `HEALTHCARD_DATABASE_URL`), as
/// text that [`Figment::extract_lossy`] reads as a number or a flag where
/// the field is one. Blank variables count as unset; others beginning with
/// `HEALTHCARD_` (the tests' own) are not settings and are left alone.
struct Environment;

impl Environment {
    const NAME: &'static str = "environment";

    fn variable(key: &str) -> String {
        format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named(Self::NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict: Dict = setting_keys()
            .iter()
            .filter_map(|k| Some((k.to_string(), Value::from(env(&Self::variable(k))?))))
            .collect();
        if !dict.contains_key("database_url") {
            if let Some(url) = env("DATABASE_URL") {
                dict.insert("database_url".into(), Value::from(url));
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// The file keys of [`Settings`], as `serde`'s derive lists them (it hands
/// its field names to `deserialize_struct`): one list, not a copy to keep.
fn setting_keys() -> &'static [&'static str] {
    struct Fields<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct's field names"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("only a struct's field names"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let fields = Cell::new(&[][..]);
    let _ = Settings::deserialize(Fields(&fields));
    fields.get()
}

/// Turns figment's errors into one message naming each wrong setting as the
/// operator wrote it: `HEALTHCARD_X: …` from the environment, `FILE: x: …`
/// from the file.
fn config_error(e: figment::Error) -> ConfigError {
    let lines: Vec<String> = e
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let place = match e.metadata.as_ref().map(|m| (&*m.name, &m.source)) {
                Some((Environment::NAME, _)) => {
                    return format!("{}: {}", Environment::variable(&key), e.kind)
                }
                Some((_, Some(Source::File(path)))) if key.is_empty() => path.display().to_string(),
                Some((_, Some(Source::File(path)))) => format!("{}: {key}", path.display()),
                _ => key,
            };
            format!("{place}: {}", e.kind)
        })
        .collect();
    ConfigError(lines.join("; "))
}

/// `trusted_proxies`: a list (file) or comma- or space-separated text (environment).
fn trusted_proxies<'de, D: Deserializer<'de>>(d: D) -> Result<TrustedProxies, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        List(Vec<String>),
    }
    match Given::deserialize(d)? {
        Given::Text(t) => TrustedProxies::parse(&t),
        Given::List(l) => TrustedProxies::parse_all(l.iter().map(String::as_str)),
    }
    .map_err(de::Error::custom)
}

/// `crypto_suite`: `default` or `gm`.
fn crypto_suite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Suite>, D::Error> {
    let v = String::deserialize(d)?;
    v.parse()
        .map(Some)
        .map_err(|_| de::Error::custom(format!("{v:?} is not `default` or `gm`")))
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
        let mut layers = Figment::new();
        let file = overrides
            .config_file
            .clone()
            .or_else(|| env("HEALTHCARD_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            std::fs::metadata(&path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            layers = layers.merge(Toml::file_exact(path));
        }
        let mut s: Settings = layers
            .merge(Environment)
            .extract_lossy()
            .map_err(config_error)?;
        s.master_key = env("HEALTHCARD_MASTER_KEY");
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
    crate::domain::http_base_url(url).ok_or_else(|| {
        ConfigError(format!(
            "public_url must be http(s)://host[/path], not {url:?}"
        ))
    })
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
        assert!(from_file("trust_list_refresh_secs = 60\nissuer_name = \"济南市\"").is_ok());
    }

    fn from_file(text: &str) -> Result<Settings, ConfigError> {
        Figment::from(Toml::string(text))
            .extract_lossy()
            .map_err(config_error)
    }

    #[test]
    fn file_settings_reject_unknown_fields_and_name_a_bad_one() {
        assert_eq!(from_file("bind = \"0.0.0.0:1\"").unwrap().bind, "0.0.0.0:1");
        let e = from_file("bnd = \"0.0.0.0:1\"").unwrap_err().0;
        assert!(e.contains("bnd"), "{e}");
        let e = from_file("db_pool_size = \"many\"").unwrap_err().0;
        assert!(e.starts_with("db_pool_size: "), "{e}");
        let e = from_file("crypto_suite = \"sm\"").unwrap_err().0;
        assert!(e.contains("crypto_suite") && e.contains("`gm`"), "{e}");
        // The master key is never read from a file.
        assert!(from_file("master_key = \"x\"").is_err());
        let s = from_file("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\ncrypto_suite = \"gm\"")
            .unwrap();
        assert_eq!(s.crypto_suite, Some(Suite::Gm));
        assert_eq!(
            s.trusted_proxies,
            TrustedProxies::parse("10.0.0.0/8 ::1").unwrap()
        );
        // What is not in the file keeps its default.
        assert_eq!(s.dynamic_token_ttl_secs, 120);
    }

    #[test]
    fn every_setting_but_the_master_key_has_a_file_key_and_a_variable() {
        let keys = setting_keys();
        assert_eq!(keys.len(), 28, "{keys:?}");
        assert!(keys.contains(&"federation_peer_rate_per_sec") && !keys.contains(&"master_key"));
        assert_eq!(Environment::variable("log_json"), "HEALTHCARD_LOG_JSON");
    }
}
