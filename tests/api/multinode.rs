//! Several processes on one PostgreSQL database behave as one service.

use serde_json::json;

use crate::helpers::{spawn_app_with, Backend};

#[test]
fn two_nodes_share_replay_revocation_and_keys() {
    let Some(url) = crate::common::db::fresh_pg_url() else {
        return;
    };
    let master = healthcard::crypto::MasterKey::generate().to_base64();
    let node = |m: &str| {
        let (url, m) = (url.clone(), m.to_string());
        spawn_app_with(Backend::Postgres, move |s| {
            s.database_url = url;
            s.master_key = Some(m);
        })
        .unwrap()
    };
    let a = node(&master);
    // The second node joins the same database (its admin is a second account).
    let b = spawn_app_with_admin(url.clone(), master.clone());
    let (_, card, _) = a.resident_with_card(100);
    let (_, key) = a.clinic("N1", &["verify"]);
    // A dynamic token accepted on node A is a replay on node B.
    let tok = a.mint(&card, "dynamic");
    assert_eq!(a.verify(&key, &tok)["valid"], true);
    let v = b.verify(&key, &tok);
    assert_eq!(v["reason"], "replayed");
    // A card revoked through node B is refused on node A at once.
    let stat = b.mint(&card, "static");
    assert_eq!(a.verify(&key, &stat)["valid"], true);
    let r = b.admin_post(
        &format!("/api/v1/cards/{card}/revoke"),
        json!({"reason": "lost"}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(a.verify(&key, &stat)["reason"], "card_revoked");
    // A key rotated on node A is used and published by node B within the refresh interval.
    let r = a.admin_post("/api/v1/keys/rotate", json!({}));
    assert_eq!(r.status(), 201);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let jwks: serde_json::Value = b
        .get("/.well-known/jwks.json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    // The access-log chain written by both nodes is whole.
    let report = healthcard::store::access_log::verify_chain(
        &mut a.ctx.conn().unwrap(),
        &a.ctx.master.chain_key(),
    )
    .unwrap();
    assert!(report.first_bad.is_none(), "{report:?}");
    assert!(report.rows_checked >= 8);
}

fn spawn_app_with_admin(url: String, master: String) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_as(Backend::Postgres, "admin2", move |s| {
        s.database_url = url;
        s.master_key = Some(master);
    })
    .unwrap()
}
