use serde_json::{json, Value};

use crate::helpers::{error_code, on_both};

#[test]
fn key_rotation_story() {
    on_both(|app| {
        let (_, card, _) = app.resident_with_card(70);
        let (_, key) = app.clinic("K1", &["verify"]);
        let old_static = app.mint(&card, "static");
        let old_dynamic = app.mint(&card, "dynamic");
        let jwks = |app: &crate::helpers::TestApp| -> Vec<String> {
            let v: Value = app
                .get("/.well-known/jwks.json")
                .send()
                .unwrap()
                .json()
                .unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect()
        };
        let before = jwks(&app);
        assert_eq!(before.len(), 1);
        let r = app.admin_post("/api/v1/keys/rotate", json!({}));
        assert_eq!(r.status(), 201);
        let new_kid = r.json::<Value>().unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_string();
        let after = jwks(&app);
        assert_eq!(after.len(), 2, "old and new key published");
        assert!(after.contains(&before[0]) && after.contains(&new_kid));
        // New tokens carry the new kid; old ones still verify.
        let new_static = app.mint(&card, "static");
        assert_eq!(app.verify(&key, &old_static)["valid"], true);
        assert_eq!(app.verify(&key, &old_dynamic)["valid"], true);
        assert_eq!(app.verify(&key, &new_static)["valid"], true);
        let list: Vec<Value> = app.admin_get("/api/v1/keys").json().unwrap();
        let state_of = |kid: &str| list.iter().find(|k| k["kid"] == kid).unwrap()["state"].clone();
        assert_eq!(state_of(&before[0]), "retired");
        assert_eq!(state_of(&new_kid), "active");
        // Compromised: every token of the old key stops at once, the new key's keep working.
        let r = app.admin_post(&format!("/api/v1/keys/{}/revoke", before[0]), json!({}));
        assert_eq!(r.status(), 204);
        let v = app.verify(&key, &old_static);
        assert_eq!(v["valid"], false);
        assert_eq!(v["reason"], "key_revoked");
        assert_eq!(app.verify(&key, &new_static)["valid"], true);
        assert_eq!(
            jwks(&app),
            vec![new_kid.clone()],
            "revoked keys are not published"
        );
        // The active key cannot be revoked without a successor.
        let r = app.admin_post(&format!("/api/v1/keys/{new_kid}/revoke"), json!({}));
        assert_eq!(r.status(), 409);
        let r = app.admin_post("/api/v1/keys/nokey/revoke", json!({}));
        assert_eq!(error_code(r, 404), "not_found");
    });
}
