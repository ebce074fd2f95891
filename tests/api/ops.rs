use serde_json::Value;

use crate::helpers::{on_both, spawn_app, Backend};

#[test]
fn health_readiness_metrics_and_openapi() {
    on_both(|app| {
        let r = app.get("/healthz").send().unwrap();
        assert_eq!(r.status(), 200);
        let r = app.get("/readyz").send().unwrap();
        assert_eq!(r.status(), 200);

        let text = app.get("/metrics").send().unwrap().text().unwrap();
        assert!(text.contains("healthcard_http_requests_total"), "{text}");
        assert!(text.contains("healthcard_db_pool_connections"));

        let doc: Value = app.get("/openapi.json").send().unwrap().json().unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/admin/login",
            "/api/v1/residents",
            "/api/v1/residents/{id}",
            "/api/v1/residents/{id}/cards",
            "/api/v1/cards/{id}",
            "/api/v1/cards/{id}/suspend",
            "/api/v1/cards/{id}/reinstate",
            "/api/v1/cards/{id}/revoke",
            "/api/v1/cards/{id}/reissue",
            "/api/v1/cards/{id}/tokens",
            "/api/v1/cards/{id}/qr.svg",
            "/api/v1/cards/{id}/qr.png",
            "/api/v1/holder/tokens",
            "/api/v1/holder/qr.svg",
            "/api/v1/holder/qr.png",
            "/api/v1/holder/access-log",
            "/api/v1/verify",
            "/api/v1/links",
            "/api/v1/cards/{id}/links",
            "/api/v1/revocations",
            "/api/v1/cards/{id}/access-log",
            "/api/v1/clinics",
            "/.well-known/jwks.json",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "OpenAPI lacks {p}");
        }
    });
}

#[test]
fn jwks_lists_the_active_key() {
    let app = spawn_app(Backend::Sqlite).unwrap();
    let v: Value = app
        .get("/.well-known/jwks.json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "OKP");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["alg"], "EdDSA");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["kid"].as_str().unwrap().len(), 11, "8 bytes base64url");
    assert_eq!(k["x"].as_str().unwrap().len(), 43, "32 bytes base64url");
}

#[test]
fn metrics_count_verification_outcomes_by_channel() {
    let app = spawn_app(Backend::Sqlite).unwrap();
    let (_, key) = app.clinic("C1", &["verify"]);
    let v = app.verify(&key, "EHC1:garbage");
    assert_eq!(v["reason"], "malformed");
    let text = app.get("/metrics").send().unwrap().text().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("healthcard_verifications_total")
                && l.contains("outcome=\"malformed\"")
                && l.contains("channel=\"window\"")),
        "{text}"
    );
}

#[test]
fn database_outage_answers_503_and_recovers() {
    // PostgreSQL only: block new connections to the test database, then allow them again.
    let Some(app) = spawn_app(Backend::Postgres) else {
        return;
    };
    let url = app.settings.database_url.clone();
    let db = url.rsplit('/').next().unwrap().to_string();
    let admin_url = format!("{}/postgres", url.rsplit_once('/').unwrap().0);
    let mut admin = postgres_admin(&admin_url);
    admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"));
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ));
    let r = app.get("/readyz").send().unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().unwrap();
    assert_eq!(v["code"], "database_unavailable");
    let r = app.admin_get("/api/v1/clinics");
    // The session check itself needs the database.
    assert_eq!(r.status(), 503);
    admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"));
    let mut ok = false;
    for _ in 0..50 {
        if app.get("/readyz").send().unwrap().status() == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(ok, "service recovers when the database returns");
    assert_eq!(app.admin_get("/api/v1/clinics").status(), 200);
}

fn postgres_admin(url: &str) -> impl FnMut(&str) {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(url).unwrap();
    move |sql: &str| {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
}
