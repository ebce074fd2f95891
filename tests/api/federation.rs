//! Federation (issue 18): three cities on loopback, each its own data folder
//! and database (the third on PostgreSQL when a server is available), one
//! trust list signed in the test by the federation operator's key.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use healthcard::service::federation::describe;
use healthcard::token::message_signature;
use healthcard::token::trust_list::{self, Entry, Payload};
use healthcard::token::{Jwk, SigningKey};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, TestApp};

struct Federation {
    root: SigningKey,
    dir: tempfile::TempDir,
    nodes: Vec<TestApp>,
    sequence: u64,
}

impl Federation {
    fn list_file(&self) -> PathBuf {
        self.dir.path().join("trust-list.jws")
    }

    /// The file node `i` reads its list from: a link to the shared one,
    /// until [`Self::freeze`].
    fn node_list_file(&self, i: usize) -> PathBuf {
        node_list_file(self.dir.path(), &self.nodes[i].settings.issuer)
    }

    /// Node `i` keeps the list it holds now (as a node whose refresh timer
    /// has not come round yet): its file no longer follows the shared one.
    fn freeze(&self, i: usize) {
        let jws = std::fs::read_to_string(self.list_file()).unwrap();
        write_list(&self.node_list_file(i), &jws);
    }

    /// Every node's entry, as `describe` gives it, at its real address.
    fn entries(&self) -> Vec<Entry> {
        self.nodes
            .iter()
            .map(|n| Entry {
                base_url: n.base.clone(),
                ..describe(&n.ctx)
            })
            .collect()
    }

    /// Signs `issuers` as the next list (valid `lifetime`) and waits until
    /// every node serves it.
    fn publish(&mut self, issuers: Vec<Entry>, lifetime: chrono::Duration) -> String {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.publish_to(issuers, lifetime, &all)
    }

    /// [`Self::publish`], waiting only for the nodes `waited` (the others
    /// frozen).
    fn publish_to(
        &mut self,
        issuers: Vec<Entry>,
        lifetime: chrono::Duration,
        waited: &[usize],
    ) -> String {
        self.sequence += 1;
        let now = chrono::Utc::now();
        let jws = trust_list::sign(
            &self.root,
            &Payload {
                sequence: self.sequence,
                issued_at: now,
                expires_at: now + lifetime,
                issuers,
            },
        )
        .unwrap();
        write_list(&self.list_file(), &jws);
        for &i in waited {
            wait_for(|| served_list(&self.nodes[i]).as_deref() == Some(jws.as_str()));
        }
        jws
    }
}

fn node_list_file(dir: &Path, issuer: &str) -> PathBuf {
    dir.join(format!("trust-list-{issuer}.jws"))
}

fn write_list(path: &Path, jws: &str) {
    // Written aside and renamed, so a node never reads half a list.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, jws).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// The list a node serves; `None` without one, or when the request fails
/// (a kept-alive connection the server closed just then: callers poll).
fn served_list(n: &TestApp) -> Option<String> {
    let r = n.get("/.well-known/healthcard-trust-list").send().ok()?;
    (r.status() == 200).then(|| r.text().ok()).flatten()
}

fn wait_for(mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three cities: Jinan 370100 and Chengdu 510100 on SQLite, Beijing 110100
/// on PostgreSQL when a server is available.
fn federation() -> Federation {
    federation_with(|_| {})
}

/// [`federation`] with `tweak` applied to every node's settings.
fn federation_with(
    tweak: impl Fn(&mut healthcard::config::Settings) + Clone + Send + 'static,
) -> Federation {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = trust_list::generate_root();
    let root_file = dir.path().join("root.jwk");
    std::fs::write(
        &root_file,
        serde_json::to_string(&Jwk::from_verifying_key(&root.verifying_key())).unwrap(),
    )
    .unwrap();
    let shared = dir.path().join("trust-list.jws");
    let node = |code: &str, name: &str, backend: Backend| {
        // Each node reads a link to the shared list (see `Federation::freeze`).
        let list = node_list_file(dir.path(), code);
        let _ = std::fs::remove_file(&list);
        std::os::unix::fs::symlink(&shared, &list).unwrap();
        let (code, name, root_file, list, tweak) = (
            code.to_string(),
            name.to_string(),
            root_file.clone(),
            list.clone(),
            tweak.clone(),
        );
        spawn_app_with(backend, move |s| {
            s.issuer = code;
            s.issuer_name = Some(name);
            s.federation_root_key = Some(root_file);
            s.trust_list = Some(list.display().to_string());
            s.trust_list_refresh_secs = 1;
            s.federation_timeout_ms = 800;
            tweak(s);
        })
    };
    let third = if crate::common::db::fresh_pg_url().is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let nodes = vec![
        node("370100", "济南市", Backend::Sqlite).unwrap(),
        node("510100", "成都市", Backend::Sqlite).unwrap(),
        node("110100", "北京市", third)
            .or_else(|| node("110100", "北京市", Backend::Sqlite))
            .unwrap(),
    ];
    let mut f = Federation {
        root,
        dir,
        nodes,
        sequence: 0,
    };
    let entries = f.entries();
    f.publish(entries, chrono::Duration::days(7));
    f
}

fn verify(n: &TestApp, key: &str, token: &str) -> Value {
    n.verify(key, token)
}

#[test]
fn cards_of_one_city_verify_in_another_and_the_home_city_keeps_the_say() {
    let mut f = federation();
    let (jinan, chengdu, beijing) = (&f.nodes[0], &f.nodes[1], &f.nodes[2]);
    let (rid, card, holder) = jinan.resident_with_card(7);
    let (_, cd_key) = chengdu.clinic("CD01", &["verify", "link", "pii"]);
    let (_, bj_key) = beijing.clinic("BJ01", &["verify"]);
    let (_, jn_key) = jinan.clinic("JN01", &["verify"]);

    // A static card of Jinan at a Chengdu clinic: valid, named by its issuer,
    // what a clinic without pii sees even though this one has pii.
    let stat = jinan.mint(&card, "static");
    let v = verify(chengdu, &cd_key, &stat);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["issuer"], json!({"code": "370100", "name": "济南市"}));
    assert_eq!(v["card_id"], card.as_str());
    assert_eq!(v["resident"]["id"], rid.as_str());
    assert_eq!(v["resident"]["name"], "张三");
    assert!(v["resident"]["national_id"].is_null(), "{v}");
    assert!(v["resident"]["national_id_masked"]
        .as_str()
        .unwrap()
        .contains('*'));
    assert!(v["local_patient_id"].is_null());
    // A card of the node's own city carries no issuer.
    let (_, own_card, _) = chengdu.resident_with_card(8);
    let own = verify(chengdu, &cd_key, &chengdu.mint(&own_card, "static"));
    assert_eq!(own["valid"], true);
    assert!(own.get("issuer").is_none());

    // A forgery is refused at the visiting node, without asking home.
    let before = jinan
        .admin_get(&format!("/api/v1/cards/{card}/access-log"))
        .json::<Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    let mut forged = stat.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let v = verify(chengdu, &cd_key, &forged);
    assert_eq!(v["valid"], false);
    assert!(
        ["bad_signature", "malformed"].contains(&v["reason"].as_str().unwrap()),
        "{v}"
    );
    let after = jinan
        .admin_get(&format!("/api/v1/cards/{card}/access-log"))
        .json::<Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "the home node was not asked");

    // A dynamic token is accepted once across the federation.
    let dynamic = jinan.mint(&card, "dynamic");
    assert_eq!(verify(beijing, &bj_key, &dynamic)["valid"], true);
    assert_eq!(verify(chengdu, &cd_key, &dynamic)["reason"], "replayed");
    assert_eq!(verify(jinan, &jn_key, &dynamic)["reason"], "replayed");

    // Chengdu's own number for the Jinan resident, kept in Chengdu.
    let r = chengdu
        .post("/api/v1/links")
        .bearer_auth(&cd_key)
        .json(&json!({"card_id": card, "local_patient_id": "CD-MRN-1"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let linked: Value = r.json().unwrap();
    assert_eq!(linked["issuer"], "370100");
    assert_eq!(linked["resident_id"], rid.as_str());
    let v = verify(chengdu, &cd_key, &stat);
    assert_eq!(v["local_patient_id"], "CD-MRN-1");
    // Beijing never scanned it, so it cannot link it.
    let (_, bj_link) = beijing.clinic("BJ02", &["verify", "link"]);
    let r = beijing
        .post("/api/v1/links")
        .bearer_auth(&bj_link)
        .json(&json!({"card_id": card, "local_patient_id": "BJ-1"}))
        .send()
        .unwrap();
    assert_eq!(crate::helpers::error_code(r, 409), "no_recent_scan");

    // The home city's access log names the foreign node and its clinic.
    let log: Value = jinan
        .admin_get(&format!("/api/v1/cards/{card}/access-log"))
        .json()
        .unwrap();
    let actors: Vec<String> = log["entries"]
        .as_array()
        .or(log.as_array())
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str().map(String::from))
        .collect();
    assert!(actors.iter().any(|a| a == "510100-CD01"), "{actors:?}");
    assert!(actors.iter().any(|a| a == "110100-BJ01"), "{actors:?}");
    // And the resident's own page shows the Chengdu clinic that looked them up.
    let mine: Value = jinan
        .get("/api/v1/holder/access-log")
        .bearer_auth(&holder)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "510100-CD01"),
        "{mine}"
    );

    // The Chengdu kiosk shows the Jinan card as valid, with its city.
    let (_, kiosk_key) = chengdu.clinic("CD02", &["verify"]);
    let cookie = crate::admins::kiosk_open(chengdu, &kiosk_key);
    let csrf = healthcard::web::csrf::token_for(&"C".repeat(43));
    let html = chengdu
        .post("/kiosk/scan")
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("token", stat.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("data-outcome=\"valid\""), "{html}");
    assert!(html.contains("济南市 (370100)"), "{html}");

    // Revoked at home: refused abroad at once, and in the visiting node's
    // revocation feed with its issuer soon after.
    let r = jinan.admin_post(
        &format!("/api/v1/cards/{card}/revoke"),
        json!({"reason": "lost"}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(verify(chengdu, &cd_key, &stat)["reason"], "card_revoked");
    wait_for(|| {
        let feed: Value = chengdu
            .get("/api/v1/revocations")
            .bearer_auth(&cd_key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        feed["revoked"].as_array().unwrap().iter().any(|e| {
            e["card_id"] == card.as_str() && e["status"] == "revoked" && e["issuer"] == "370100"
        })
    });

    // The home node down: issuer_unavailable, quickly.
    let (_, card2, _) = jinan.resident_with_card(9);
    let stat2 = jinan.mint(&card2, "static");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut entries = f.entries();
    entries[0].base_url = dead_url;
    f.publish(entries, chrono::Duration::days(7));
    let chengdu = &f.nodes[1];
    let start = Instant::now();
    let v = verify(chengdu, &cd_key, &stat2);
    assert_eq!(v["reason"], "issuer_unavailable", "{v}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(v.get("resident").is_none());

    // An issuer missing from the list: issuer_unknown.
    let entries: Vec<Entry> = f.entries().into_iter().skip(1).collect();
    f.publish(entries, chrono::Duration::days(7));
    let (chengdu, jinan) = (&f.nodes[1], &f.nodes[0]);
    assert_eq!(verify(chengdu, &cd_key, &stat2)["reason"], "issuer_unknown");
    // Jinan's own card still works at home.
    assert_eq!(verify(jinan, &jn_key, &stat2)["valid"], true);
}

#[test]
fn lists_that_are_forged_or_expired_and_requests_of_strangers_are_refused() {
    let mut f = federation();
    let (_, card, _) = f.nodes[0].resident_with_card(11);
    let stat = f.nodes[0].mint(&card, "static");
    let (_, cd_key) = f.nodes[1].clinic("CD01", &["verify"]);
    let (_, jn_key) = f.nodes[0].clinic("JN01", &["verify"]);
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["valid"], true);
    let good = served_list(&f.nodes[1]).unwrap();

    // A forged list (another operator key, higher sequence) is refused; the
    // last good one stays in use and /readyz says why.
    let (forger, _) = trust_list::generate_root();
    let now = chrono::Utc::now();
    let forged = trust_list::sign(
        &forger,
        &Payload {
            sequence: 99,
            issued_at: now,
            expires_at: now + chrono::Duration::days(7),
            issuers: vec![],
        },
    )
    .unwrap();
    write_list(&f.list_file(), &forged);
    wait_for(|| {
        let r: Value = f.nodes[1].get("/readyz").send().unwrap().json().unwrap();
        r["trust_list"]["last_error"].is_string()
    });
    assert_eq!(served_list(&f.nodes[1]).unwrap(), good);
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["valid"], true);

    // A request signed by a node key that is in no list.
    let stranger = SigningKey::generate();
    let body = json!({"token": stat, "clinic": {"code": "X", "name": "x"}}).to_string();
    let send = |key: &SigningKey, body: &str| {
        let s = message_signature::sign(
            key,
            "POST",
            "/federation/v1/resolve",
            "",
            body.as_bytes(),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
        f.nodes[0]
            .post("/federation/v1/resolve")
            .header("content-type", "application/json")
            .header("content-digest", &s.content_digest)
            .header("signature-input", &s.signature_input)
            .header("signature", &s.signature)
            .body(body.to_string())
            .send()
            .unwrap()
    };
    assert_eq!(
        crate::helpers::error_code(send(&stranger, &body), 401),
        "unknown_node"
    );
    let unsigned = f.nodes[0]
        .post("/federation/v1/resolve")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(
        crate::helpers::error_code(unsigned, 401),
        "unsigned_request"
    );
    // Chengdu's real node key: answered once; the same request again is a replay.
    let chengdu_key = f.nodes[1].ctx.federation.node_key().clone();
    let s = message_signature::sign(
        &chengdu_key,
        "POST",
        "/federation/v1/resolve",
        "",
        body.as_bytes(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    let again = || {
        f.nodes[0]
            .post("/federation/v1/resolve")
            .header("content-type", "application/json")
            .header("content-digest", &s.content_digest)
            .header("signature-input", &s.signature_input)
            .header("signature", &s.signature)
            .body(body.clone())
            .send()
            .unwrap()
    };
    let first = again();
    assert_eq!(first.status(), 200);
    let answer: Value = first.json().unwrap();
    assert_eq!(answer["valid"], true);
    assert!(answer["resident"]["national_id"].is_null());
    assert_eq!(crate::helpers::error_code(again(), 401), "replayed_request");
    // Correctly signed but not a resolve request: 400 with its code.
    let junk = b"{\"token\": 5}";
    let s2 = message_signature::sign(
        &chengdu_key,
        "POST",
        "/federation/v1/resolve",
        "",
        junk,
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    let r = f.nodes[0]
        .post("/federation/v1/resolve")
        .header("content-type", "application/json")
        .header("content-digest", &s2.content_digest)
        .header("signature-input", &s2.signature_input)
        .header("signature", &s2.signature)
        .body(junk.to_vec())
        .send()
        .unwrap();
    assert_eq!(crate::helpers::error_code(r, 400), "bad_resolve_request");
    // A stale request (signed two minutes ago).
    let old = message_signature::sign(
        &chengdu_key,
        "POST",
        "/federation/v1/resolve",
        "",
        body.as_bytes(),
        chrono::Utc::now().timestamp() - 120,
    )
    .unwrap();
    let r = f.nodes[0]
        .post("/federation/v1/resolve")
        .header("content-digest", &old.content_digest)
        .header("signature-input", &old.signature_input)
        .header("signature", &old.signature)
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(crate::helpers::error_code(r, 401), "stale_request");

    // A key withdrawn at home: refused abroad at once (the home node says
    // key_revoked), and unknown_key once the list no longer carries it.
    let old_kid = f.nodes[0]
        .ctx
        .keys
        .current()
        .active()
        .unwrap()
        .kid()
        .to_b64();
    assert_eq!(
        f.nodes[0]
            .admin_post("/api/v1/keys/rotate", json!({}))
            .status(),
        201
    );
    let r = f.nodes[0].admin_post(&format!("/api/v1/keys/{old_kid}/revoke"), json!({}));
    assert_eq!(r.status(), 204);
    wait_for(|| verify(&f.nodes[0], &jn_key, &stat)["reason"] == "key_revoked");
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["reason"], "key_revoked");
    let entries = f.entries();
    assert!(!entries[0].keys.iter().any(|k| k.kid == old_kid));
    f.publish(entries, chrono::Duration::days(7));
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["reason"], "unknown_key");
    let (_, card, _) = f.nodes[0].resident_with_card(13);
    let stat = f.nodes[0].mint(&card, "static");
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["valid"], true);

    // A list that expires: foreign cards fail closed, own cards keep working.
    let entries = f.entries();
    f.publish(entries, chrono::Duration::seconds(3));
    let (_, own_card, _) = f.nodes[1].resident_with_card(12);
    let own = f.nodes[1].mint(&own_card, "static");
    wait_for(|| {
        let r: Value = f.nodes[1].get("/readyz").send().unwrap().json().unwrap();
        r["trust_list"]["expired"] == true
    });
    assert_eq!(
        verify(&f.nodes[1], &cd_key, &stat)["reason"],
        "trust_list_expired"
    );
    assert_eq!(verify(&f.nodes[1], &cd_key, &own)["valid"], true);
    assert_eq!(verify(&f.nodes[0], &jn_key, &stat)["valid"], true);
    let metrics = f.nodes[1].get("/metrics").send().unwrap().text().unwrap();
    assert!(
        metrics.contains("healthcard_trust_list{measure=\"expires_in_seconds\"}"),
        "{metrics}"
    );
}

/// `healthcard federation keygen|describe|sign|show` as processes.
#[test]
fn the_operator_signs_and_checks_a_list_from_the_command_line() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_healthcard"))
            .args(args)
            .env_remove("HEALTHCARD_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("HEALTHCARD_MASTER_KEY")
            .env_remove("HEALTHCARD_DATA_DIR")
            .env_remove("HEALTHCARD_TRUST_LIST")
            .env_remove("HEALTHCARD_FEDERATION_ROOT_KEY")
            .env("HEALTHCARD_ISSUER", "370100")
            .env("HEALTHCARD_ISSUER_NAME", "济南市")
            .env("HEALTHCARD_PUBLIC_URL", "https://hc.jinan.example")
            .output()
            .unwrap()
    };
    let key = d.join("operator.jwk");
    let key_s = key.to_str().unwrap();
    let public = crate::helpers::ok(&run(&["federation", "keygen", "--out", key_s]));
    let public: Value = serde_json::from_str(&public).unwrap();
    assert_eq!(public["kty"], "OKP");
    assert_eq!(public["crv"], "Ed25519");
    assert!(public.get("d").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let private: Value = serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert!(private["d"].is_string());
    // Never overwrites a key.
    crate::helpers::err(&run(&["federation", "keygen", "--out", key_s]));
    let root = d.join("root.jwk");
    std::fs::write(&root, public.to_string()).unwrap();

    // A node's entry.
    let data = d.join("data");
    let data_s = data.to_str().unwrap();
    crate::helpers::ok(&run(&["--data-dir", data_s, "migrate"]));
    let entry = crate::helpers::ok(&run(&["--data-dir", data_s, "federation", "describe"]));
    let entry: Value = serde_json::from_str(&entry).unwrap();
    assert_eq!(entry["code"], "370100");
    assert_eq!(entry["name"], "济南市");
    assert_eq!(entry["base_url"], "https://hc.jinan.example");
    assert_eq!(entry["keys"].as_array().unwrap().len(), 1);
    assert_eq!(entry["node_keys"][0]["crv"], "Ed25519");
    // Not a city code: refused, naming the setting.
    let o = Command::new(env!("CARGO_BIN_EXE_healthcard"))
        .args(["--data-dir", data_s, "federation", "describe"])
        .env_remove("HEALTHCARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("HEALTHCARD_MASTER_KEY")
        .env_remove("HEALTHCARD_TRUST_LIST")
        .env_remove("HEALTHCARD_FEDERATION_ROOT_KEY")
        .env("HEALTHCARD_ISSUER", "HC")
        .output()
        .unwrap();
    assert!(crate::helpers::err(&o).contains("HEALTHCARD_ISSUER"));
    let entries = d.join("entries.json");
    std::fs::write(&entries, json!([entry]).to_string()).unwrap();

    // Signed, shown, and refused when altered or under another root.
    let jws = crate::helpers::ok(&run(&[
        "federation",
        "sign",
        "--key",
        key_s,
        "--sequence",
        "42",
        "--expires-in-days",
        "3",
        entries.to_str().unwrap(),
    ]));
    let list = d.join("list.jws");
    std::fs::write(&list, jws.trim()).unwrap();
    let shown = crate::helpers::ok(&run(&[
        "federation",
        "show",
        "--root",
        root.to_str().unwrap(),
        list.to_str().unwrap(),
    ]));
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["sequence"], 42);
    assert_eq!(shown["issuers"][0]["code"], "370100");
    let mut altered = jws.trim().to_string();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    std::fs::write(&list, &altered).unwrap();
    let e = crate::helpers::err(&run(&[
        "federation",
        "show",
        "--root",
        root.to_str().unwrap(),
        list.to_str().unwrap(),
    ]));
    assert!(e.contains("refused"), "{e}");
    // An entry that is not one (a bad code) is refused at signing.
    std::fs::write(
        &entries,
        json!([{"code": "HC", "name": "x", "base_url": "https://x", "keys": [], "node_keys": []}])
            .to_string(),
    )
    .unwrap();
    crate::helpers::err(&run(&[
        "federation",
        "sign",
        "--key",
        key_s,
        entries.to_str().unwrap(),
    ]));
}

/// A signed `POST /federation/v1/resolve` from `key` to `home`, as a node
/// sends it; the same `signed` headers can be sent again (a replay).
fn signed_resolve(key: &SigningKey, body: &str) -> message_signature::Signed {
    message_signature::sign(
        key,
        "POST",
        "/federation/v1/resolve",
        "",
        body.as_bytes(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap()
}

fn send_signed(
    home: &TestApp,
    s: &message_signature::Signed,
    body: &str,
) -> reqwest::blocking::Response {
    home.post("/federation/v1/resolve")
        .header("content-type", "application/json")
        .header("content-digest", &s.content_digest)
        .header("signature-input", &s.signature_input)
        .header("signature", &s.signature)
        .body(body.to_string())
        .send()
        .unwrap()
}

fn access_log_len(n: &TestApp, card: &str) -> usize {
    n.admin_get(&format!("/api/v1/cards/{card}/access-log"))
        .json::<Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

/// A peer node's requests are limited per node key: 429 `rate_limited` with
/// Retry-After beyond the rate, nothing written for a refused request (its
/// nonce is not spent: the same request answers once the rate allows), and
/// another peer's key keeps its own quota.
#[test]
fn a_peer_node_over_its_rate_is_answered_429_and_nothing_is_written() {
    let f = federation_with(|s| s.federation_peer_rate_per_sec = 1);
    let (jinan, chengdu, beijing) = (&f.nodes[0], &f.nodes[1], &f.nodes[2]);
    let (_, card, _) = jinan.resident_with_card(21);
    let stat = jinan.mint(&card, "static");
    let body = json!({"token": stat, "clinic": {"code": "CD01", "name": "x"}}).to_string();
    let cd_key = chengdu.ctx.federation.node_key().clone();
    let issued = access_log_len(jinan, &card);
    // The burst (twice the rate) is answered, then 429 until the rate allows.
    let mut refused = None;
    let mut answered = 0;
    for _ in 0..10 {
        let s = signed_resolve(&cd_key, &body);
        let r = send_signed(jinan, &s, &body);
        if r.status() == 429 {
            refused = Some((s, r));
            break;
        }
        assert_eq!(r.status(), 200);
        answered += 1;
    }
    let (s, r) = refused.expect("a request over the rate is refused");
    assert!(answered >= 2, "the burst is answered: {answered}");
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(crate::helpers::error_code(r, 429), "rate_limited");
    let logged = access_log_len(jinan, &card);
    assert_eq!(
        logged,
        issued + answered,
        "one row per answered request, none for the refused"
    );
    // Another node's key has its own quota.
    let bj_key = beijing.ctx.federation.node_key().clone();
    let b = signed_resolve(&bj_key, &body);
    assert_eq!(send_signed(jinan, &b, &body).status(), 200);
    // The refused request's nonce was not spent: sent again once the rate
    // allows, it is answered (and only then logged).
    std::thread::sleep(Duration::from_millis(1100));
    let again = send_signed(jinan, &s, &body);
    assert_eq!(again.status(), 200);
    assert_eq!(access_log_len(jinan, &card), logged + 2);
    // ... and then it is a replay, refused and not logged.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        crate::helpers::error_code(send_signed(jinan, &s, &body), 401),
        "replayed_request"
    );
    assert_eq!(access_log_len(jinan, &card), logged + 2);
}

/// The binary on a node's own database and data folder, with its
/// federation settings (as an operator runs it beside the server).
fn node_cli(n: &TestApp, args: &[&str]) -> std::process::Output {
    let s = &n.settings;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_healthcard"));
    cmd.arg("--data-dir")
        .arg(&s.data_dir)
        .arg("--database-url")
        .arg(&s.database_url)
        .args(args)
        .env_remove("HEALTHCARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("HEALTHCARD_MASTER_KEY")
        .env_remove("HEALTHCARD_DATA_DIR")
        .env("HEALTHCARD_ISSUER", &s.issuer);
    if let Some(root) = &s.federation_root_key {
        cmd.env("HEALTHCARD_FEDERATION_ROOT_KEY", root);
    }
    if let Some(list) = &s.trust_list {
        cmd.env("HEALTHCARD_TRUST_LIST", list);
    }
    cmd.output().unwrap()
}

/// What a home node discloses is its operator's policy per peer city:
/// by default what a clinic without `pii` sees, even to a peer's `pii`
/// clinic and even when the request asks for it; with the `pii` grant the
/// full number, to that peer's `pii` clinics only, never to another peer.
#[test]
fn a_peer_gets_the_full_number_only_with_the_home_operators_grant_and_a_pii_clinic() {
    let f = federation();
    let (jinan, chengdu, beijing) = (&f.nodes[0], &f.nodes[1], &f.nodes[2]);
    let full = crate::helpers::national_id(31);
    let (_, card, _) = jinan.resident_with_card(31);
    let (_, cd_pii) = chengdu.clinic("CD01", &["verify", "pii"]);
    let (_, cd_plain) = chengdu.clinic("CD02", &["verify"]);
    let (_, bj_pii) = beijing.clinic("BJ01", &["verify", "pii"]);
    let (_, jn_plain) = jinan.clinic("JN01", &["verify"]);
    let stat = jinan.mint(&card, "static");
    let local_masked = verify(jinan, &jn_plain, &stat)["resident"]["national_id_masked"].clone();
    assert!(local_masked.is_string());

    // No grant: the peer's answer is a non-pii clinic's, whatever is asked.
    let v = verify(chengdu, &cd_pii, &stat);
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["resident"]["national_id"].is_null(), "{v}");
    assert_eq!(v["resident"]["national_id_masked"], local_masked);
    let cd_node = chengdu.ctx.federation.node_key().clone();
    let asking =
        json!({"token": stat, "clinic": {"code": "CD01", "name": "x"}, "pii": true}).to_string();
    let r = send_signed(jinan, &signed_resolve(&cd_node, &asking), &asking);
    assert_eq!(r.status(), 200);
    let text = r.text().unwrap();
    assert!(!text.contains(&full), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["resident"]["national_id_masked"], local_masked);

    // A bad policy is refused; the grant is set by the home operator's CLI.
    crate::helpers::err(&node_cli(
        jinan,
        &[
            "federation",
            "peer",
            "set",
            "--issuer",
            "510100",
            "--disclosure",
            "all",
        ],
    ));
    let out = crate::helpers::ok(&node_cli(
        jinan,
        &[
            "federation",
            "peer",
            "set",
            "--issuer",
            "510100",
            "--disclosure",
            "pii",
        ],
    ));
    assert!(out.contains("\"pii\""), "{out}");
    let list = crate::helpers::ok(&node_cli(jinan, &["federation", "peer", "list"]));
    assert!(
        list.contains("\"510100\"") && list.contains("\"pii\""),
        "{list}"
    );
    // In force at the running node within its refresh tick.
    wait_for(|| verify(chengdu, &cd_pii, &stat)["resident"]["national_id"] == full.as_str());
    // Only for the peer's pii clinics, and only for that peer.
    let v = verify(chengdu, &cd_plain, &stat);
    assert_eq!(v["valid"], true);
    assert!(v["resident"]["national_id"].is_null(), "{v}");
    let plain_request = json!({"token": stat, "clinic": {"code": "CD02", "name": "x"}}).to_string();
    let r = send_signed(
        jinan,
        &signed_resolve(&cd_node, &plain_request),
        &plain_request,
    );
    assert!(!r.text().unwrap().contains(&full));
    let v = verify(beijing, &bj_pii, &stat);
    assert_eq!(v["valid"], true);
    assert!(v["resident"]["national_id"].is_null(), "{v}");
    // Withdrawn: back to the default.
    crate::helpers::ok(&node_cli(
        jinan,
        &[
            "federation",
            "peer",
            "set",
            "--issuer",
            "510100",
            "--disclosure",
            "standard",
        ],
    ));
    wait_for(|| verify(chengdu, &cd_pii, &stat)["resident"]["national_id"].is_null());
}

/// A peer's stand-in clinic at the home node is found by the peers table,
/// never by its code: `fed-…` codes are refused for new clinics (API and
/// CLI), and a clinic of that code from before is never taken for the peer.
#[test]
fn no_clinic_can_be_taken_for_a_peer_citys_stand_in() {
    let f = federation();
    let (jinan, chengdu) = (&f.nodes[0], &f.nodes[1]);
    for code in ["fed-510100", "FED-9"] {
        let r = jinan.admin_post(
            "/api/v1/clinics",
            json!({"code": code, "name": "x", "scopes": ["verify"]}),
        );
        assert_eq!(crate::helpers::error_code(r, 422), "invalid_clinic_code");
    }
    let e = crate::helpers::err(&node_cli(
        jinan,
        &["clinic", "create", "--code", "fed-510100", "--name", "x"],
    ));
    assert!(e.contains("clinic_code") || e.contains("reserved"), "{e}");
    // A clinic called fed-510100 made before the prefix was reserved (the
    // store does not refuse it; only new clinics' codes are checked).
    let old_code = healthcard::domain::ClinicCode::parse("fed-510100").unwrap();
    let (old, _) = healthcard::store::clinics::create(
        &mut jinan.ctx.conn().unwrap(),
        &old_code,
        "a real clinic",
        healthcard::domain::Scopes::from_list(&[healthcard::domain::Scope::Verify]).unwrap(),
    )
    .unwrap();
    let (_, card, _) = jinan.resident_with_card(41);
    let (_, cd_key) = chengdu.clinic("CD01", &["verify"]);
    assert_eq!(
        verify(chengdu, &cd_key, &jinan.mint(&card, "static"))["valid"],
        true
    );
    // The same at a home node on the other database (Beijing, PostgreSQL when
    // a server is available): the stand-in made once, a dynamic token once.
    let beijing = &f.nodes[2];
    let (_, bj_card, _) = beijing.resident_with_card(42);
    assert_eq!(
        verify(chengdu, &cd_key, &beijing.mint(&bj_card, "static"))["valid"],
        true
    );
    let dynamic = beijing.mint(&bj_card, "dynamic");
    assert_eq!(verify(chengdu, &cd_key, &dynamic)["valid"], true);
    assert_eq!(verify(chengdu, &cd_key, &dynamic)["reason"], "replayed");
    let bj_peers = crate::helpers::ok(&node_cli(beijing, &["federation", "peer", "list"]));
    assert_eq!(bj_peers.lines().count(), 1, "{bj_peers}");
    let peers = crate::helpers::ok(&node_cli(jinan, &["federation", "peer", "list"]));
    let row: Value = serde_json::from_str(peers.lines().next().unwrap()).unwrap();
    assert_eq!(row["issuer"], "510100");
    assert_eq!(row["disclosure"], "standard");
    let stand_in = row["stand_in_clinic"].as_str().unwrap();
    assert_ne!(
        stand_in,
        old.id.to_string(),
        "the old clinic was taken for the peer"
    );
    // The home access log names the peer's clinic, under the stand-in.
    let log: Value = jinan
        .admin_get(&format!("/api/v1/cards/{card}/access-log"))
        .json()
        .unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "510100-CD01"),
        "{log}"
    );
}

/// `healthcard federation node-key rotate|retire|list`: the new key is used
/// only once the list in force carries it; both are accepted during the
/// overlap; retiring is refused before the list carries the new key; once
/// retired and dropped from the list, the old key is a stranger.
#[test]
fn a_node_key_is_rotated_without_a_gap() {
    let mut f = federation();
    let (_, card, _) = f.nodes[0].resident_with_card(51);
    let stat = f.nodes[0].mint(&card, "static");
    let (_, cd_key) = f.nodes[1].clinic("CD01", &["verify"]);
    let old = f.nodes[1].ctx.federation.node_key();
    let old_kid = old.kid().to_b64();

    let out = crate::helpers::ok(&node_cli(
        &f.nodes[1],
        &["federation", "node-key", "rotate"],
    ));
    let new_jwk: Value = serde_json::from_str(&out).unwrap();
    let new_kid = new_jwk["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    // The running node learns of it at its next tick and lists both ...
    wait_for(|| describe(&f.nodes[1].ctx).node_keys.len() == 2);
    // ... but keeps signing with the old key: the list does not carry the new one.
    assert_eq!(f.nodes[1].ctx.federation.node_key().kid().to_b64(), old_kid);
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["valid"], true);
    let e = crate::helpers::err(&node_cli(
        &f.nodes[1],
        &["federation", "node-key", "retire"],
    ));
    assert!(e.contains("does not carry"), "{e}");

    // The list with both: the node switches, and both keys are accepted.
    let entries = f.entries();
    f.publish(entries, chrono::Duration::days(7));
    wait_for(|| f.nodes[1].ctx.federation.node_key().kid().to_b64() == new_kid);
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["valid"], true);
    let body = json!({"token": stat, "clinic": {"code": "CD01", "name": "x"}}).to_string();
    assert_eq!(
        send_signed(&f.nodes[0], &signed_resolve(&old, &body), &body).status(),
        200
    );
    let keys = crate::helpers::ok(&node_cli(&f.nodes[1], &["federation", "node-key", "list"]));
    assert!(
        keys.lines()
            .any(|l| l.contains(&new_kid) && l.contains("\"in_use\":true")),
        "{keys}"
    );

    // Retired: describe lists the new key only; the next list drops the old.
    let out = crate::helpers::ok(&node_cli(
        &f.nodes[1],
        &["federation", "node-key", "retire"],
    ));
    assert!(out.contains(&old_kid), "{out}");
    wait_for(|| describe(&f.nodes[1].ctx).node_keys.len() == 1);
    let entries = f.entries();
    assert_eq!(entries[1].node_keys[0].kid, new_kid);
    f.publish(entries, chrono::Duration::days(7));
    assert_eq!(
        crate::helpers::error_code(
            send_signed(&f.nodes[0], &signed_resolve(&old, &body), &body),
            401
        ),
        "unknown_node"
    );
    assert_eq!(verify(&f.nodes[1], &cd_key, &stat)["valid"], true);
}

/// FHIR `$resolve-card` of a foreign card at the visiting node: a Patient
/// of what the home city disclosed (valid FHIR R4), its resident and card
/// under the home issuer's systems, the clinic's own number, the home city
/// as managingOrganization, and no ID number without the home's grant.
#[test]
fn resolve_card_of_a_foreign_card_is_a_patient_of_what_its_home_city_disclosed() {
    let f = federation();
    let (jinan, chengdu) = (&f.nodes[0], &f.nodes[1]);
    let full = crate::helpers::national_id(61);
    let (rid, card, _) = jinan.resident_with_card(61);
    let (_, cd_key) = chengdu.clinic("CD01", &["verify", "link", "pii"]);
    let stat = jinan.mint(&card, "static");
    assert_eq!(verify(chengdu, &cd_key, &stat)["valid"], true);
    let r = chengdu
        .post("/api/v1/links")
        .bearer_auth(&cd_key)
        .json(&json!({"card_id": card, "local_patient_id": "CD-77"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "token", "valueString": stat},
        {"name": "channel", "valueCode": "window"},
    ]});
    let r = chengdu
        .post("/fhir/Patient/$resolve-card")
        .bearer_auth(&cd_key)
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .unwrap();
    let v = crate::fhir::fhir(r, 200);
    let param = |name: &str| {
        v["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {v}"))
    };
    assert_eq!(param("valid")["valueBoolean"], true, "{v}");
    assert_eq!(param("issuer")["valueString"], "370100");
    let p = &param("patient")["resource"];
    assert_eq!(p["resourceType"], "Patient");
    assert!(p.get("id").is_none(), "the resource lives at home: {p}");
    let ids = p["identifier"].as_array().unwrap();
    let has = |system: &str, value: &str| {
        ids.iter()
            .any(|i| i["system"] == system && i["value"] == value)
    };
    assert!(has("urn:healthcard:370100:resident", &rid), "{p}");
    assert!(has("urn:healthcard:370100:card", &card), "{p}");
    assert!(
        ids.iter().any(|i| i["value"] == "CD-77"
            && i["system"].as_str().unwrap().ends_with(":clinic:CD01:mrn")),
        "{p}"
    );
    assert!(
        !v.to_string().contains(&full),
        "no ID number without the grant: {v}"
    );
    assert!(!ids
        .iter()
        .any(|i| i["system"].as_str().unwrap().starts_with("urn:oid:")));
    assert_eq!(p["managingOrganization"]["identifier"]["value"], "370100");
    assert_eq!(p["managingOrganization"]["display"], "济南市");
    assert_eq!(p["name"][0]["text"], "张三");
}

/// A captured peer request replayed within its lifetime is refused at once
/// (`replayed_request`), before the peer's rate is counted: it neither
/// spends the real peer's quota (whose clinics keep verifying) nor writes
/// anything.
#[test]
fn a_replayed_peer_request_spends_neither_the_peers_rate_nor_a_row() {
    let f = federation_with(|s| s.federation_peer_rate_per_sec = 1);
    let (jinan, chengdu) = (&f.nodes[0], &f.nodes[1]);
    let (_, card, _) = jinan.resident_with_card(23);
    let stat = jinan.mint(&card, "static");
    let (_, cd_key) = chengdu.clinic("CD01", &["verify"]);
    let body = json!({"token": stat, "clinic": {"code": "CD01", "name": "x"}}).to_string();
    let node_key = chengdu.ctx.federation.node_key().clone();
    let captured = signed_resolve(&node_key, &body);
    assert_eq!(send_signed(jinan, &captured, &body).status(), 200);
    let logged = access_log_len(jinan, &card);
    for _ in 0..10 {
        assert_eq!(
            crate::helpers::error_code(send_signed(jinan, &captured, &body), 401),
            "replayed_request"
        );
    }
    assert_eq!(access_log_len(jinan, &card), logged);
    // The burst (twice the rate of 1/s) had one request spent: Chengdu's
    // genuine request is answered, not 429.
    let v = verify(chengdu, &cd_key, &stat);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(access_log_len(jinan, &card), logged + 1);
}

type Rule = dyn Fn(&str, &[u8]) -> Option<(u16, String)> + Send + Sync;

/// A stand-in for a home node at its own loopback address: a request that
/// `rule` answers is answered so, every other one is passed to `home`.
fn proxy(home: String, rule: std::sync::Arc<Rule>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (home, rule) = (home.clone(), rule.clone());
            std::thread::spawn(move || {
                let _ = proxy_one(stream, &home, &*rule);
            });
        }
    });
    format!("http://{addr}")
}

fn proxy_one(stream: std::net::TcpStream, home: &str, rule: &Rule) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let client = reqwest::blocking::Client::new();
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("GET").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut headers = Vec::new();
        let mut len = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let (status, text) = match rule(&target, &body) {
            Some(answer) => answer,
            None => {
                let mut req = client.request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{home}{target}"),
                );
                for (k, v) in &headers {
                    if matches!(
                        k.as_str(),
                        "content-type" | "content-digest" | "signature-input" | "signature"
                    ) {
                        req = req.header(k.as_str(), v.as_str());
                    }
                }
                let r = req
                    .body(body)
                    .send()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                (r.status().as_u16(), r.text().unwrap_or_default())
            }
        };
        write!(
            out,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        )?;
        out.flush()?;
    }
}

/// A home node of the previous release refuses the `pii` field (400
/// `bad_resolve_request`): a `pii` clinic's request is sent once more
/// without it and answered with the standard disclosure, not
/// `issuer_unavailable`.
#[test]
fn a_pii_clinic_verifies_cards_of_a_city_still_on_the_previous_release() {
    let mut f = federation();
    let home = f.nodes[0].base.clone();
    let old_release = proxy(
        home,
        std::sync::Arc::new(|target: &str, body: &[u8]| {
            let pii = String::from_utf8_lossy(body).contains("\"pii\"");
            (target.starts_with("/federation/v1/resolve") && pii).then(|| {
                let e = json!({"code": "bad_resolve_request", "message": "unknown field `pii`"});
                (400, e.to_string())
            })
        }),
    );
    let mut entries = f.entries();
    entries[0].base_url = old_release;
    f.publish(entries, chrono::Duration::days(7));
    let (jinan, chengdu) = (&f.nodes[0], &f.nodes[1]);
    let (_, card, _) = jinan.resident_with_card(24);
    let (_, cd_pii) = chengdu.clinic("CD01", &["verify", "pii"]);
    let (_, cd_plain) = chengdu.clinic("CD02", &["verify"]);
    let stat = jinan.mint(&card, "static");
    let v = verify(chengdu, &cd_plain, &stat);
    assert_eq!(v["valid"], true, "{v}");
    let v = verify(chengdu, &cd_pii, &stat);
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["resident"]["national_id"].is_null(), "{v}");
    assert!(v["resident"]["national_id_masked"].is_string(), "{v}");
    // A dynamic token still once only, through the retry too.
    let dynamic = jinan.mint(&card, "dynamic");
    assert_eq!(verify(chengdu, &cd_pii, &dynamic)["valid"], true);
    assert_eq!(verify(chengdu, &cd_pii, &dynamic)["reason"], "replayed");
}

/// A peer that still holds the list from before a city's node-key rotation
/// (it fetches on its own timer) refuses the new key `unknown_node`; the
/// rotating city signs the request anew with its previous key, so its
/// clinics keep verifying that peer's cards.
#[test]
fn a_peer_still_holding_the_old_list_is_asked_with_the_previous_node_key() {
    let mut f = federation();
    let (_, card, _) = f.nodes[0].resident_with_card(52);
    let stat = f.nodes[0].mint(&card, "static");
    let (_, cd_key) = f.nodes[1].clinic("CD01", &["verify"]);
    crate::helpers::ok(&node_cli(
        &f.nodes[1],
        &["federation", "node-key", "rotate"],
    ));
    wait_for(|| describe(&f.nodes[1].ctx).node_keys.len() == 2);
    let old_kid = f.nodes[1].ctx.federation.node_key().kid().to_b64();
    // Jinan keeps the list it has; the others take the one with both keys.
    f.freeze(0);
    let entries = f.entries();
    f.publish_to(entries, chrono::Duration::days(7), &[1, 2]);
    wait_for(|| f.nodes[1].ctx.federation.node_key().kid().to_b64() != old_kid);
    let v = verify(&f.nodes[1], &cd_key, &stat);
    assert_eq!(v["valid"], true, "{v}");
    // Beijing, which holds the new list, is asked with the new key.
    let (_, bj_card, _) = f.nodes[2].resident_with_card(53);
    let v = verify(&f.nodes[1], &cd_key, &f.nodes[2].mint(&bj_card, "static"));
    assert_eq!(v["valid"], true, "{v}");
}

/// After an upgrade from the release that found a peer's stand-in by its
/// code, the stand-in it made (`fed-<issuer>`, named `… (federation
/// <issuer>)`, no usable key) is adopted: the peer's history stays at one
/// clinic, no `fed-<issuer>-1` is made.
#[test]
fn the_previous_releases_stand_in_clinic_is_adopted_after_the_upgrade() {
    let f = federation();
    let (jinan, chengdu) = (&f.nodes[0], &f.nodes[1]);
    let mut conn = jinan.ctx.conn().unwrap();
    let (old, _) = healthcard::store::clinics::create(
        &mut conn,
        &healthcard::domain::ClinicCode::parse("fed-510100").unwrap(),
        "成都市 (federation 510100)",
        healthcard::domain::Scopes::from_list(&[healthcard::domain::Scope::Verify]).unwrap(),
    )
    .unwrap();
    for k in healthcard::store::clinics::list_keys(&mut conn, old.id).unwrap() {
        healthcard::store::clinics::revoke_key(&mut conn, &k.id).unwrap();
    }
    drop(conn);
    let (_, card, _) = jinan.resident_with_card(43);
    let (_, cd_key) = chengdu.clinic("CD01", &["verify"]);
    assert_eq!(
        verify(chengdu, &cd_key, &jinan.mint(&card, "static"))["valid"],
        true
    );
    let peers = crate::helpers::ok(&node_cli(jinan, &["federation", "peer", "list"]));
    let row: Value = serde_json::from_str(peers.lines().next().unwrap()).unwrap();
    assert_eq!(row["stand_in_clinic"], old.id.to_string(), "{peers}");
    let clinics = healthcard::store::clinics::list(&mut jinan.ctx.conn().unwrap()).unwrap();
    assert!(
        !clinics.iter().any(|c| c.code.as_str() == "fed-510100-1"),
        "a second stand-in was made"
    );
}

/// A listed peer that answers for a card id another city issued (its own
/// token, its own resident) does not take over that card's record at the
/// visiting node: the record stays the first issuer's.
#[test]
fn a_second_issuer_cannot_take_over_a_known_foreign_card() {
    let mut f = federation();
    let (_, card, _) = f.nodes[0].resident_with_card(62);
    let (_, cd_key) = f.nodes[1].clinic("CD01", &["verify"]);
    let v = verify(&f.nodes[1], &cd_key, &f.nodes[0].mint(&card, "static"));
    assert_eq!(v["valid"], true, "{v}");
    let card_id = uuid::Uuid::parse_str(&card).unwrap();
    let record = |f: &Federation| {
        healthcard::store::federation::foreign_card(
            &mut f.nodes[1].ctx.conn().unwrap(),
            healthcard::domain::CardId::from(card_id),
        )
        .unwrap()
        .unwrap()
    };
    let before = record(&f);
    assert_eq!(before.issuer, "370100");
    // Beijing turns malicious: a token of its own key for Jinan's card id,
    // and an answer of its own for it.
    let mut resident = v["resident"].clone();
    resident["id"] = json!(uuid::Uuid::new_v4().to_string());
    let answer = json!({"valid": true, "card_id": card, "resident": resident}).to_string();
    let malicious = proxy(
        f.nodes[2].base.clone(),
        std::sync::Arc::new(move |target: &str, _: &[u8]| {
            target
                .starts_with("/federation/v1/resolve")
                .then(|| (200, answer.clone()))
        }),
    );
    let mut entries = f.entries();
    entries[2].base_url = malicious;
    f.publish(entries, chrono::Duration::days(7));
    let forged = f.nodes[2]
        .ctx
        .keys
        .current()
        .mint(
            card_id,
            healthcard::token::TokenKind::Static,
            chrono::Utc::now().timestamp(),
            3600,
        )
        .unwrap()
        .text;
    let _ = verify(&f.nodes[1], &cd_key, &forged);
    let after = record(&f);
    assert_eq!(after.issuer, "370100");
    assert_eq!(after.resident_id, before.resident_id);
}

/// `node-key retire` deletes only the keys it read as older than the
/// newest: a key rotated a moment before (by the CLI or another node, not
/// yet re-read by the retiring node) is kept.
#[test]
fn retiring_never_deletes_a_node_key_rotated_a_moment_before() {
    let mut f = federation();
    crate::helpers::ok(&node_cli(
        &f.nodes[1],
        &["federation", "node-key", "rotate"],
    ));
    wait_for(|| describe(&f.nodes[1].ctx).node_keys.len() == 2);
    let entries = f.entries();
    f.publish(entries, chrono::Duration::days(7));
    // A third key by the CLI; the running node has not re-read its keys yet
    // (its tick is 1 s) when its retire runs.
    let out = crate::helpers::ok(&node_cli(
        &f.nodes[1],
        &["federation", "node-key", "rotate"],
    ));
    let third: Value = serde_json::from_str(&out).unwrap();
    let third = third["kid"].as_str().unwrap().to_string();
    let retired = healthcard::service::federation::retire_node_keys(
        &f.nodes[1].ctx,
        &healthcard::service::registry::Actor::system("test"),
    )
    .unwrap();
    assert!(!retired.contains(&third), "{retired:?}");
    let keys = crate::helpers::ok(&node_cli(&f.nodes[1], &["federation", "node-key", "list"]));
    assert!(
        keys.contains(&third),
        "the key rotated a moment before was deleted: {keys}"
    );
    assert_eq!(keys.lines().count(), 2, "{keys}");
}

/// A disclosure change is in force within the policy tick even while the
/// revocation polls hang on slow home nodes (they run on the list's
/// thread; the policies on a thread of their own).
#[test]
fn a_policy_change_is_in_force_within_its_tick_while_revocation_polls_hang() {
    let mut f = federation();
    let slow = |home: String| {
        proxy(
            home,
            std::sync::Arc::new(|target: &str, _: &[u8]| {
                target.starts_with("/federation/v1/revocations").then(|| {
                    std::thread::sleep(Duration::from_secs(8));
                    (503, "{}".to_string())
                })
            }),
        )
    };
    let mut entries = f.entries();
    entries[0].base_url = slow(f.nodes[0].base.clone());
    entries[2].base_url = slow(f.nodes[2].base.clone());
    f.publish(entries, chrono::Duration::days(7));
    let (jinan, chengdu, beijing) = (&f.nodes[0], &f.nodes[1], &f.nodes[2]);
    // Chengdu sees cards of both: its polls of their feeds now hang.
    let (_, cd_key) = chengdu.clinic("CD01", &["verify"]);
    let (_, jn_card, _) = jinan.resident_with_card(71);
    let (_, bj_card, _) = beijing.resident_with_card(72);
    assert_eq!(
        verify(chengdu, &cd_key, &jinan.mint(&jn_card, "static"))["valid"],
        true
    );
    assert_eq!(
        verify(chengdu, &cd_key, &beijing.mint(&bj_card, "static"))["valid"],
        true
    );
    std::thread::sleep(Duration::from_secs(2));
    // Chengdu grants Beijing pii; Beijing's pii clinic sees it within the tick.
    let full = crate::helpers::national_id(73);
    let (_, cd_card, _) = chengdu.resident_with_card(73);
    let stat = chengdu.mint(&cd_card, "static");
    let (_, bj_pii) = beijing.clinic("BJ01", &["verify", "pii"]);
    assert!(verify(beijing, &bj_pii, &stat)["resident"]["national_id"].is_null());
    crate::helpers::ok(&node_cli(
        chengdu,
        &[
            "federation",
            "peer",
            "set",
            "--issuer",
            "110100",
            "--disclosure",
            "pii",
        ],
    ));
    let start = Instant::now();
    while verify(beijing, &bj_pii, &stat)["resident"]["national_id"] != full.as_str() {
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "the grant was not in force within its tick"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
