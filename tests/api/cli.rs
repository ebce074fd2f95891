//! The command line as a process.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use healthcard::crypto::MasterKey;

use crate::helpers::{cli, err, ok};

fn healthcard(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    cli(dir, None, args, stdin)
}

#[test]
fn cli_first_start_admin_clinic_keys_verify_audit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&healthcard(d, &["migrate"], None));
    assert!(d.join("db").join("healthcard.db").exists());
    let key_file = d.join("keys").join("master.key");
    assert!(key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let out = ok(&healthcard(
        d,
        &["admin", "create", "--username", "root"],
        Some("s3cret-passw0rd\n"),
    ));
    assert!(out.contains("root"));
    let short = healthcard(
        d,
        &["admin", "create", "--username", "other"],
        Some("short\n"),
    );
    assert!(!short.status.success());
    let dup = healthcard(
        d,
        &["admin", "create", "--username", "root"],
        Some("s3cret-passw0rd\n"),
    );
    assert!(!dup.status.success());

    let out = ok(&healthcard(
        d,
        &[
            "clinic",
            "create",
            "--code",
            "C001",
            "--name",
            "第一医院",
            "--scopes",
            "verify,link",
        ],
        None,
    ));
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert!(v["api_key"].as_str().unwrap().starts_with("hck_"));
    assert_eq!(v["clinic"]["code"], "C001");
    assert_eq!(v["clinic"]["scopes"], serde_json::json!(["verify", "link"]));
    let bad = healthcard(
        d,
        &["clinic", "create", "--code", "C 1", "--name", "x"],
        None,
    );
    assert!(!bad.status.success());
    // Issue 14: an emergency department that issues temporary cards.
    let er = ok(&healthcard(
        d,
        &[
            "clinic",
            "create",
            "--code",
            "ER",
            "--name",
            "急诊科",
            "--scopes",
            "register,verify",
        ],
        None,
    ));
    let v: Value = serde_json::from_str(er.trim()).expect("one JSON object");
    assert_eq!(
        v["clinic"]["scopes"],
        serde_json::json!(["verify", "register"])
    );

    let keys = ok(&healthcard(d, &["keys", "list"], None));
    assert_eq!(keys.lines().count(), 1);
    ok(&healthcard(d, &["keys", "rotate"], None));
    let keys = ok(&healthcard(d, &["keys", "list"], None));
    assert_eq!(keys.lines().count(), 2);
    assert!(keys.contains("\"retired\"") && keys.contains("\"active\""));

    // Verify a token minted with the local keys, online and offline from a saved JWKS.
    let jwks = ok(&healthcard(d, &["keys", "jwks"], None));
    let jwks_path = d.join("jwks.json");
    std::fs::write(&jwks_path, &jwks).unwrap();
    let token = mint_with_local_key(d);
    let out = ok(&healthcard(d, &["verify", &token], None));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["claims"]["kind"], "static");
    let other = tempfile::tempdir().unwrap();
    let out = ok(&healthcard(
        other.path(),
        &["verify", "--jwks", jwks_path.to_str().unwrap(), &token],
        None,
    ));
    assert!(out.contains("\"valid\": true"));
    // From a QR image.
    let png = d.join("card.png");
    std::fs::write(
        &png,
        healthcard::token::qr::encode(&token).unwrap().to_png(),
    )
    .unwrap();
    let out = ok(&healthcard(
        d,
        &["verify", "--qr", png.to_str().unwrap()],
        None,
    ));
    assert!(out.contains("\"valid\": true"));
    // A broken token: exit status 1 and a reason.
    let o = healthcard(d, &["verify", "EHC1:XYZ"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("malformed"));

    let out = ok(&healthcard(d, &["audit", "verify"], None));
    assert!(out.contains("intact"), "{out}");
    // Tamper with one row: the audit finds it.
    tamper_access_log(d);
    let o = healthcard(d, &["audit", "verify"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("BROKEN"));
}

/// `keys rotate --alg` for each algorithm; the offline `verify --jwks` checks
/// tokens of every key in the mixed ring.
#[test]
fn cli_rotates_to_each_algorithm_and_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut tokens = vec![mint_with_local_key(d)];
    for alg in ["es256", "sm2", "ed25519"] {
        let out = ok(&healthcard(d, &["keys", "rotate", "--alg", alg], None));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["alg"], alg);
        tokens.push(mint_with_local_key(d));
    }
    let o = healthcard(d, &["keys", "rotate", "--alg", "rsa"], None);
    assert!(!o.status.success());
    let keys = ok(&healthcard(d, &["keys", "list"], None));
    assert_eq!(keys.lines().count(), 4);
    for alg in ["\"ed25519\"", "\"es256\"", "\"sm2\""] {
        assert!(keys.contains(alg), "{keys}");
    }
    let jwks = ok(&healthcard(d, &["keys", "jwks"], None));
    let jwks_path = d.join("jwks.json");
    std::fs::write(&jwks_path, &jwks).unwrap();
    let other = tempfile::tempdir().unwrap();
    for token in &tokens {
        let out = ok(&healthcard(
            other.path(),
            &["verify", "--jwks", jwks_path.to_str().unwrap(), token],
            None,
        ));
        assert!(out.contains("\"valid\": true"), "{out}");
    }
}

/// The suite is chosen when a data folder is made and cannot be changed later.
#[test]
fn cli_crypto_suite_is_recorded_and_cannot_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_suite = |suite: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_healthcard"))
            .arg("--data-dir")
            .arg(d)
            .args(args)
            .env_remove("HEALTHCARD_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("HEALTHCARD_MASTER_KEY")
            .env("HEALTHCARD_CRYPTO_SUITE", suite)
            .output()
            .unwrap()
    };
    // Only `migrate` (or `serve`) makes a data folder.
    ok(&with_suite("gm", &["migrate"]));
    let keys = ok(&with_suite("gm", &["keys", "list"]));
    assert!(keys.contains("\"sm2\""), "{keys}");
    assert_eq!(
        std::fs::read_to_string(d.join("crypto_suite")).unwrap(),
        "gm\n"
    );
    // Rotating without --alg keeps to the suite's algorithm.
    let out = ok(&with_suite("gm", &["keys", "rotate"]));
    assert!(out.contains("\"sm2\""), "{out}");
    let o = with_suite("default", &["keys", "list"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("gm crypto suite"));
    // Unset: the recorded suite.
    ok(&healthcard(d, &["keys", "list"], None));
    let o = with_suite("sm9", &["keys", "list"]);
    assert!(!o.status.success(), "an unknown suite name is refused");
    // A folder made before suites (or with the default) cannot become gm.
    let old = tempfile::tempdir().unwrap();
    ok(&healthcard(old.path(), &["migrate"], None));
    ok(&healthcard(old.path(), &["keys", "list"], None));
    assert_eq!(
        std::fs::read_to_string(old.path().join("crypto_suite")).unwrap(),
        "default\n"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_healthcard"))
        .arg("--data-dir")
        .arg(old.path())
        .args(["keys", "list"])
        .env_remove("HEALTHCARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("HEALTHCARD_MASTER_KEY")
        .env("HEALTHCARD_CRYPTO_SUITE", "gm")
        .output()
        .unwrap();
    assert!(!o.status.success());
}

fn open(d: &std::path::Path) -> healthcard::service::AppContext {
    let s = healthcard::config::Settings {
        data_dir: d.to_path_buf(),
        database_url: healthcard::config::database_file(d).display().to_string(),
        ..Default::default()
    };
    healthcard::service::AppContext::open(s).unwrap().0
}

fn mint_with_local_key(d: &std::path::Path) -> String {
    let ctx = open(d);
    ctx.keys
        .current()
        .mint(
            uuid::Uuid::new_v4(),
            healthcard::token::TokenKind::Static,
            chrono::Utc::now().timestamp(),
            3600,
        )
        .unwrap()
        .text
}

fn tamper_access_log(d: &std::path::Path) {
    use diesel::RunQueryDsl;
    let ctx = open(d);
    let mut conn = ctx.conn().unwrap();
    // The append-only trigger first (the owner of the file can drop it).
    diesel::sql_query("DROP TRIGGER access_log_no_update")
        .execute(&mut *conn)
        .unwrap();
    diesel::sql_query(
        "UPDATE access_log SET actor = 'mallory' WHERE seq = (SELECT MIN(seq) FROM access_log)",
    )
    .execute(&mut *conn)
    .unwrap();
}

#[test]
fn cli_import_legacy_reports_bad_rows_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&healthcard(d, &["migrate"], None));
    ok(&healthcard(
        d,
        &[
            "clinic",
            "create",
            "--code",
            "OLD",
            "--name",
            "旧医院",
            "--scopes",
            "verify,link",
        ],
        None,
    ));
    let csv = d.join("legacy.csv");
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "local_patient_id,name,national_id,phone").unwrap();
    writeln!(f, "A1,张三,{},13800138000", crate::helpers::national_id(1)).unwrap();
    writeln!(f, "A2,李四,{},", crate::helpers::national_id(2)).unwrap();
    writeln!(f, "A3,王五,110105194912310021,").unwrap(); // wrong check digit
    writeln!(f, "A4,,{},", crate::helpers::national_id(4)).unwrap(); // no name
    writeln!(f, "A5,张三,{},", crate::helpers::national_id(1)).unwrap(); // same person, second number
    writeln!(f, "A6,冒名顶替,{},", crate::helpers::national_id(1)).unwrap(); // 张三's number, another name
    writeln!(f, "A8,李四,{},", crate::helpers::national_id(8)).unwrap(); // two people may share a name
    drop(f);
    let o = healthcard(
        d,
        &["import-legacy", "--clinic", "OLD", csv.to_str().unwrap()],
        None,
    );
    let out = ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(
        !err.contains("110105194912310021"),
        "no ID number in the report"
    );
    assert!(
        err.contains("line 7") && err.contains("name does not match"),
        "{err}"
    );
    assert!(!err.contains("冒名顶替"), "no name in the report");
    let v: Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["bad_rows"], 3);
    assert_eq!(v["residents_created"], 3);
    assert_eq!(v["cards_issued"], 3);
    assert_eq!(v["links_created"], 4, "A1, A2, A5, A8; not A6");
    let o = healthcard(
        d,
        &["import-legacy", "--clinic", "OLD", csv.to_str().unwrap()],
        None,
    );
    let v: Value = serde_json::from_str(ok(&o).trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["residents_created"], 0);
    assert_eq!(v["cards_issued"], 0);
    assert_eq!(v["links_created"], 0);
    let o = healthcard(
        d,
        &["import-legacy", "--clinic", "NOPE", csv.to_str().unwrap()],
        None,
    );
    assert!(!o.status.success());
}

/// A refusal names what was refused, in words, and a file's fault is not
/// called a database error.
/// `healthcard --data-dir DIR ARGS` with these environment variables set.
fn healthcard_with_env(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthcard"));
    cmd.arg("--data-dir").arg(dir).args(args);
    for k in [
        "HEALTHCARD_DATABASE_URL",
        "DATABASE_URL",
        "HEALTHCARD_MASTER_KEY",
        "HEALTHCARD_CONFIG",
        "HEALTHCARD_DYNAMIC_TOKEN_TTL_SECS",
        "HEALTHCARD_PUBLIC_URL",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(vars.iter().copied()).output().unwrap()
}

#[test]
fn a_bad_setting_is_named_as_the_operator_wrote_it_and_later_layers_win() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = err(&healthcard_with_env(
        d,
        &["migrate"],
        &[("HEALTHCARD_DB_POOL_SIZE", "many")],
    ));
    assert!(e.contains("HEALTHCARD_DB_POOL_SIZE"), "{e}");
    let e = err(&healthcard_with_env(
        d,
        &["migrate"],
        &[("HEALTHCARD_CRYPTO_SUITE", "sm")],
    ));
    assert!(
        e.contains("HEALTHCARD_CRYPTO_SUITE") && e.contains("`gm`"),
        "{e}"
    );
    let file = d.join("healthcard.toml");
    std::fs::write(&file, "db_pool_size = \"many\"\n").unwrap();
    let config = ["--config", file.to_str().unwrap(), "migrate"];
    let e = err(&healthcard_with_env(d, &config, &[]));
    assert!(
        e.contains("healthcard.toml") && e.contains("db_pool_size"),
        "{e}"
    );
    std::fs::write(&file, "bnd = \"127.0.0.1:1\"\n").unwrap();
    let e = err(&healthcard_with_env(d, &config, &[]));
    assert!(e.contains("bnd"), "{e}");
    // A value out of its range names the setting too; the environment wins
    // over the file, and a blank variable counts as unset.
    std::fs::write(&file, "dynamic_token_ttl_secs = 5\n").unwrap();
    let e = err(&healthcard_with_env(d, &config, &[]));
    assert!(e.contains("dynamic_token_ttl_secs"), "{e}");
    ok(&healthcard_with_env(
        d,
        &config,
        &[
            ("HEALTHCARD_DYNAMIC_TOKEN_TTL_SECS", "120"),
            ("HEALTHCARD_PUBLIC_URL", " "),
        ],
    ));
    let e = err(&healthcard_with_env(
        d,
        &[
            "--config",
            d.join("missing.toml").to_str().unwrap(),
            "migrate",
        ],
        &[],
    ));
    assert!(e.contains("missing.toml"), "{e}");
}

#[test]
fn cli_errors_name_the_thing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&healthcard(d, &["migrate"], None));
    let pw = Some("s3cret-passw0rd\n");
    ok(&healthcard(
        d,
        &["admin", "create", "--username", "root"],
        pw,
    ));
    let e = err(&healthcard(
        d,
        &["admin", "create", "--username", "root"],
        pw,
    ));
    assert!(e.contains(r#"username "root" is taken"#), "{e}");
    let clinic = ["clinic", "create", "--code", "C001", "--name", "第一医院"];
    ok(&healthcard(d, &clinic, None));
    let e = err(&healthcard(d, &clinic, None));
    assert!(e.contains(r#"clinic code "C001" is taken"#), "{e}");
    // The name's rule is the API's and the portal's: at most 128 characters.
    let long = "医".repeat(129);
    let e = err(&healthcard(
        d,
        &["clinic", "create", "--code", "C002", "--name", &long],
        None,
    ));
    assert!(e.contains("clinic_name"), "{e}");
    ok(&healthcard(
        d,
        &[
            "clinic",
            "create",
            "--code",
            "C002",
            "--name",
            &long[..128 * 3],
        ],
        None,
    ));
    let csv = d.join("wrong-header.csv");
    std::fs::write(&csv, "id,name\nA1,张三\n").unwrap();
    let e = err(&healthcard(
        d,
        &["import-legacy", "--clinic", "C001", csv.to_str().unwrap()],
        None,
    ));
    assert!(
        e.contains("the CSV header must be local_patient_id,name,national_id,phone"),
        "{e}"
    );
    assert!(!e.contains("database"), "{e}");
    // A master key file other than the one that sealed the data is named as such.
    let key = d.join("keys").join("master.key");
    let good = std::fs::read(&key).unwrap();
    std::fs::write(&key, format!("{}\n", MasterKey::generate().to_base64())).unwrap();
    for args in [
        &["audit", "verify"][..],
        &["clinic", "list"],
        &["keys", "list"],
    ] {
        let e = err(&healthcard(d, args, None));
        assert!(e.contains("master key"), "{args:?}: {e}");
        assert!(!e.contains("database error"), "{args:?}: {e}");
    }
    std::fs::write(&key, good).unwrap();
    ok(&healthcard(d, &["audit", "verify"], None));
}

#[test]
fn cli_adds_lists_and_removes_a_guardian() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(&healthcard(d, &["migrate"], None));
    let (parent, child) = {
        let ctx = open(d);
        let actor = healthcard::service::registry::Actor::system("test");
        let born = |birth: chrono::NaiveDate, n: u32| {
            let new = healthcard::store::residents::NewResident::with_national_id(
                healthcard::domain::PersonName::parse("家人").unwrap(),
                healthcard::domain::NationalId::parse(&crate::helpers::national_id_born_on(
                    birth, n,
                ))
                .unwrap(),
                None,
            );
            healthcard::service::registry::register_resident(
                &ctx,
                &actor,
                &new,
                healthcard::store::Conflict::NationalIdRegistered,
            )
            .unwrap()
            .id
            .to_string()
        };
        let today = chrono::Utc::now().date_naive();
        (
            born(today - chrono::Duration::days(40 * 365), 1),
            born(today - chrono::Duration::days(5 * 365), 2),
        )
    };
    let out = ok(&healthcard(
        d,
        &[
            "resident",
            "guardian",
            "add",
            &child,
            &parent,
            "--relation",
            "father",
        ],
        None,
    ));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["relation"], "father");
    // The rules hold here too: oneself is refused, with a non-zero exit.
    let o = healthcard(
        d,
        &[
            "resident",
            "guardian",
            "add",
            &child,
            &child,
            "--relation",
            "sibling",
        ],
        None,
    );
    assert!(!o.status.success());
    let o = healthcard(
        d,
        &[
            "resident",
            "guardian",
            "add",
            &child,
            &parent,
            "--relation",
            "uncle",
        ],
        None,
    );
    assert!(!o.status.success());
    let list = ok(&healthcard(
        d,
        &["resident", "guardian", "list", &parent],
        None,
    ));
    let lines: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["side"], "dependant");
    assert_eq!(lines[0]["resident_id"], child.as_str());
    ok(&healthcard(
        d,
        &["resident", "guardian", "remove", &child, &parent],
        None,
    ));
    let list = ok(&healthcard(
        d,
        &["resident", "guardian", "list", &child],
        None,
    ));
    assert!(list.trim().is_empty());
    assert!(!healthcard(
        d,
        &["resident", "guardian", "remove", &child, &parent],
        None
    )
    .status
    .success());
}

/// `healthcard [--data-dir DATA] serve` in `cwd` on a free loopback port,
/// read until it says where it listens and what to do next: the process,
/// its URL and the lines it printed.
fn serve(cwd: &std::path::Path, data: Option<&std::path::Path>) -> (Child, String, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthcard"));
    if let Some(d) = data {
        cmd.arg("--data-dir").arg(d);
    }
    let mut child = cmd
        .arg("serve")
        .current_dir(cwd)
        .env_remove("HEALTHCARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("HEALTHCARD_MASTER_KEY")
        .env_remove("HEALTHCARD_DATA_DIR")
        .env("HEALTHCARD_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut url = None;
    for line in lines.by_ref().take(20) {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("healthcard listening on ") {
            url = rest.split_whitespace().next().map(str::to_owned);
        }
        let done = line.starts_with("next: make a clinic:");
        seen.push(line);
        if done {
            break;
        }
    }
    // Keep reading: a server whose standard error is closed fails its next log line.
    std::thread::spawn(move || lines.for_each(drop));
    match url {
        Some(u) => (child, u, seen),
        None => {
            child.kill().unwrap();
            panic!("no address in {seen:?}");
        }
    }
}

/// `serve` says where it really listens (a port of 0 resolved) and prints
/// next steps that run as printed: this binary, with this data folder.
#[test]
fn serve_prints_the_bound_address_and_commands_to_paste() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, url, seen) = serve(dir.path(), Some(&data));
    let answer = reqwest::blocking::get(format!("{url}/healthz"))
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "{url}");
    assert_eq!(answer, 200, "{seen:?}");
    // The printed command, run as printed (its password on standard input), works.
    let cmd = seen
        .iter()
        .find_map(|l| l.strip_prefix("next: make an administrator:"))
        .unwrap_or_else(|| panic!("no next step in {seen:?}"));
    let cmd = cmd.trim().split("   (").next().unwrap();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(words[0], env!("CARGO_BIN_EXE_healthcard"), "{cmd}");
    let mut admin = Command::new(words[0])
        .args(&words[1..])
        .current_dir(dir.path())
        .env_remove("HEALTHCARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("HEALTHCARD_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    admin
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-passw0rd-here\n")
        .unwrap();
    let out = admin.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = err(&healthcard(
        &data,
        &["admin", "create", "--username", "admin"],
        Some("s3cret-passw0rd-here\n"),
    ));
    assert!(e.contains("taken"), "{e}");
}

/// The README's walk-through is `scripts/walkthrough.sh`, and it runs to the
/// end against a fresh server on its default data folder.
#[test]
fn the_readme_walkthrough_runs_as_written() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(repo.join("scripts/walkthrough.sh")).unwrap();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let body = &script[script.find("set -euo pipefail").unwrap()..];
    assert!(
        readme.contains(body.trim_end()),
        "README.md's walk-through is not scripts/walkthrough.sh"
    );
    assert!(
        Command::new("jq").arg("--version").output().is_ok(),
        "the walk-through needs jq: run scripts/setup"
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, _) = serve(dir.path(), None);
    let out = Command::new("bash")
        .arg(repo.join("scripts/walkthrough.sh"))
        .current_dir(dir.path())
        .env("HC", env!("CARGO_BIN_EXE_healthcard"))
        .env("BASE", &url)
        .env_remove("HEALTHCARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("HEALTHCARD_MASTER_KEY")
        .env_remove("HEALTHCARD_DATA_DIR")
        .output()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""valid": true"#), "{stdout}");
    assert!(stdout.contains("MRN-0001"), "{stdout}");
    assert!(dir.path().join("card.png").exists());
}
