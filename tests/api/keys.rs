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

/// Rotating through every ordered pair of algorithms (ed25519 → es256 → sm2
/// → ed25519 → sm2 → es256 → ed25519): each new key signs, every earlier
/// token still verifies, and the JWKS and key list name each key's algorithm.
#[test]
fn keys_of_every_algorithm_share_one_ring() {
    on_both(|app| {
        let (_, card, _) = app.resident_with_card(71);
        let (_, key) = app.clinic("K2", &["verify"]);
        let list = |app: &crate::helpers::TestApp| -> Vec<Value> {
            app.admin_get("/api/v1/keys").json().unwrap()
        };
        let first = list(&app);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0]["alg"], "ed25519", "the default algorithm");
        let mut tokens = vec![(
            "ed25519",
            app.mint(&card, "static"),
            app.mint(&card, "dynamic"),
        )];
        for alg in ["es256", "sm2", "ed25519", "sm2", "es256", "ed25519"] {
            let r = app.admin_post("/api/v1/keys/rotate", json!({ "alg": alg }));
            assert_eq!(r.status(), 201);
            let v: Value = r.json().unwrap();
            assert_eq!(
                (v["alg"].as_str(), v["state"].as_str()),
                (Some(alg), Some("active"))
            );
            tokens.push((alg, app.mint(&card, "static"), app.mint(&card, "dynamic")));
        }
        for (alg, static_token, dynamic_token) in &tokens {
            assert_eq!(
                app.verify(&key, static_token)["valid"],
                true,
                "{alg} static"
            );
            assert_eq!(
                app.verify(&key, dynamic_token)["valid"],
                true,
                "{alg} dynamic"
            );
        }
        // The store's reasons do not depend on the algorithm either.
        for (alg, _, dynamic_token) in &tokens {
            assert_eq!(
                app.verify(&key, dynamic_token)["reason"],
                "replayed",
                "{alg}"
            );
        }
        let keys = list(&app);
        assert_eq!(keys.len(), 7);
        let mut algs: Vec<_> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
        algs.sort_unstable();
        assert_eq!(
            algs,
            ["ed25519", "ed25519", "ed25519", "es256", "es256", "sm2", "sm2"]
        );
        let jwks: Value = app
            .get("/.well-known/jwks.json")
            .send()
            .unwrap()
            .json()
            .unwrap();
        for k in jwks["keys"].as_array().unwrap() {
            let shape = (k["kty"].as_str().unwrap(), k["crv"].as_str().unwrap());
            match k["alg"].as_str().unwrap() {
                "EdDSA" => assert_eq!(shape, ("OKP", "Ed25519")),
                "ES256" => assert_eq!(shape, ("EC", "P-256")),
                "SM2SM3" => assert_eq!(shape, ("EC", "SM2")),
                other => panic!("unexpected JWK alg {other}"),
            }
            assert_eq!(k["y"].is_string(), shape.0 == "EC");
        }
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 7);
    });
}

#[test]
fn rotate_takes_an_optional_alg_and_refuses_unknown_ones() {
    on_both(|app| {
        // No body at all: the default algorithm, as before algorithms existed.
        let r = app
            .post("/api/v1/keys/rotate")
            .bearer_auth(&app.admin_token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.json::<Value>().unwrap()["alg"], "ed25519");
        for bad in [
            json!({"alg": "rsa"}),
            json!({"alg": "ES256"}),
            json!({"alg": ""}),
        ] {
            let r = app.admin_post("/api/v1/keys/rotate", bad);
            assert_eq!(error_code(r, 422), "invalid_alg");
        }
        assert_eq!(
            app.admin_get("/api/v1/keys")
                .json::<Vec<Value>>()
                .unwrap()
                .len(),
            2,
            "a refused rotation makes no key"
        );
    });
}

/// A data folder made with `HEALTHCARD_CRYPTO_SUITE=gm`: the first key is
/// SM2, ID numbers are sealed with SM4-GCM and found by an HMAC-SM3 index.
#[test]
fn a_national_suite_data_folder_runs_on_sm2_sm3_sm4() {
    use healthcard::crypto::Suite;
    for backend in [
        crate::helpers::Backend::Sqlite,
        crate::helpers::Backend::Postgres,
    ] {
        let Some(app) =
            crate::helpers::spawn_app_with(backend, |s| s.crypto_suite = Some(Suite::Gm))
        else {
            continue;
        };
        assert_eq!(app.ctx.master.suite(), Suite::Gm);
        let keys: Vec<Value> = app.admin_get("/api/v1/keys").json().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["alg"], "sm2", "the first key of a gm folder");
        let (rid, card, _) = app.resident_with_card(72);
        let (_, key) = app.clinic("K3", &["verify"]);
        let token = app.mint(&card, "static");
        assert_eq!(app.verify(&key, &token)["valid"], true);
        // Its kid is SM3's, and the published key verifies offline.
        let jwks: healthcard::token::Jwks = app
            .get("/.well-known/jwks.json")
            .send()
            .unwrap()
            .json()
            .unwrap();
        let ring = healthcard::token::KeyRing::from_jwks("HC", &jwks).unwrap();
        let (public, _) = ring.verifiers().next().unwrap();
        assert_eq!(
            public.kid(),
            healthcard::token::Kid::of_public_key_sm3(public.public_key())
        );
        assert_eq!(keys[0]["kid"], public.kid().to_b64());
        let now = chrono::Utc::now().timestamp();
        assert!(
            healthcard::token::verify(&token, &ring, &healthcard::token::Validation::at(now))
                .is_ok()
        );
        let nid = crate::helpers::national_id(72);
        let r = app.admin_get(&format!("/api/v1/residents?national_id={nid}"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().unwrap()["id"], rid.as_str());
        let r = app.admin_post(
            "/api/v1/residents",
            json!({"name": "李四", "national_id": nid}),
        );
        assert_eq!(error_code(r, 409), "national_id_registered");
    }
}
