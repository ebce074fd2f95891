//! Signing keys as the service sees them: loaded from the store into a
//! [`KeyRing`], refreshed so that a rotation or revocation made by another
//! node (or the CLI) takes effect within `key_refresh_secs`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::registry::{entry, Actor};
use super::AppContext;
use crate::crypto::{MasterKey, Suite};
use crate::store::{access_log, signing_keys, Conflict, DbConnection, DbPool, StoreError};
use crate::token::{Alg, KeyRing, KeyState, Kid, SigningKey, VerifyingKey};

/// The node's current key ring, swapped whole on reload so readers never block.
#[derive(Clone)]
pub struct KeyStore {
    ring: Arc<RwLock<Arc<KeyRing>>>,
    pool: DbPool,
    master: MasterKey,
    issuer: String,
}

/// The algorithm of a key made without one being named: SM2 in a data
/// folder of the national suite, Ed25519 otherwise.
pub fn default_alg(master: &MasterKey) -> Alg {
    match master.suite() {
        Suite::Default => Alg::Ed25519,
        Suite::Gm => Alg::Sm2,
    }
}

/// A fresh key of `alg` named as `master`'s suite names keys: SHA-256 kids
/// by default, SM3 kids under the national suite.
fn generate(master: &MasterKey, alg: Alg) -> SigningKey {
    let key = SigningKey::generate_alg(alg);
    match master.suite() {
        Suite::Default => key,
        Suite::Gm => {
            let kid = Kid::of_public_key_sm3(key.public_key());
            key.with_kid(kid)
                .expect("the SM3 kid names the key it was made from")
        }
    }
}

/// Stores `key` as the active key (the previous one is retired).
fn insert_active(
    conn: &mut DbConnection,
    master: &MasterKey,
    key: &SigningKey,
) -> Result<(), StoreError> {
    let sealed = key
        .seal(master)
        .map_err(|e| StoreError::Other(format!("sealing the new signing key: {e}")))?;
    signing_keys::insert_active(
        conn,
        &key.kid().to_b64(),
        key.alg().as_str(),
        key.public_key(),
        &sealed,
    )?;
    Ok(())
}

/// Makes a first signing key of `alg` when there is no active one. Returns
/// whether it made one.
pub fn ensure_active_key(
    conn: &mut DbConnection,
    master: &MasterKey,
    alg: Alg,
) -> Result<bool, StoreError> {
    let keys = signing_keys::list(conn)?;
    if keys.iter().any(|k| k.state == KeyState::Active) {
        return Ok(false);
    }
    match insert_active(conn, master, &generate(master, alg)) {
        Ok(_) => Ok(true),
        // Another node started at the same moment and won; its key is as good.
        Err(StoreError::Conflict(Conflict::SigningKeyActive)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Builds a ring from what the store holds. A sealed key that does not open
/// (wrong master key) is an error: serving with a key we cannot use is worse.
pub fn load_ring(
    conn: &mut DbConnection,
    master: &MasterKey,
    issuer: &str,
) -> Result<KeyRing, StoreError> {
    let mut ring = KeyRing::new(issuer);
    for stored in signing_keys::list(conn)? {
        let state = stored.state;
        let alg: Alg = stored
            .alg
            .parse()
            .map_err(|_| StoreError::Other(format!("unknown key algorithm {:?}", stored.alg)))?;
        if state == KeyState::Active {
            let kid = Kid::from_b64(&stored.kid)
                .ok_or_else(|| StoreError::Other(format!("bad kid {:?}", stored.kid)))?;
            // A master key other than the one that sealed it (or an altered row).
            let key = SigningKey::unseal(master, alg, &stored.sealed_private)
                .map_err(|_| StoreError::Crypto)?
                .with_kid(kid)
                .map_err(|_| {
                    StoreError::Other(format!("kid {} does not name its key", stored.kid))
                })?;
            ring.set_active(key);
        } else {
            let kid = Kid::from_b64(&stored.kid)
                .ok_or_else(|| StoreError::Other(format!("bad kid {:?}", stored.kid)))?;
            let key = VerifyingKey::with_kid(alg, &stored.public_key, kid)
                .map_err(|_| StoreError::Other(format!("bad public key for {}", stored.kid)))?;
            ring.add_verifier(key, state);
        }
    }
    Ok(ring)
}

/// Makes a new active key of `alg` for `actor`; the previous one (of any
/// algorithm) is retired and keeps verifying until its tokens expire. The
/// key and its access-log row are one transaction; this node's ring is
/// reloaded at once (other nodes follow within `key_refresh_secs`).
pub fn rotate(ctx: &AppContext, actor: &Actor, alg: Alg) -> Result<Kid, StoreError> {
    let kid = ctx.with_tx(|c| {
        let kid = insert_rotated(c, &ctx.master, alg)?;
        let row = entry(actor, "key.rotate", None, None, Some(kid.to_b64()));
        access_log::append(c, &ctx.master.chain_key(), &[row])?;
        Ok(kid)
    })?;
    ctx.keys.reload()?;
    Ok(kid)
}

/// Marks a key compromised for `actor`: every token it signed stops
/// verifying. The active key cannot be revoked (`key_active`): rotate
/// first, so that there is always a key to sign with. Logged and reloaded
/// as [`rotate`] is.
pub fn revoke(ctx: &AppContext, actor: &Actor, kid: &str) -> Result<(), StoreError> {
    ctx.with_tx(|c| {
        mark_revoked(c, kid)?;
        let row = entry(actor, "key.revoke", None, None, Some(kid.to_string()));
        access_log::append(c, &ctx.master.chain_key(), &[row])
    })?;
    ctx.keys.reload()
}

fn insert_rotated(
    conn: &mut DbConnection,
    master: &MasterKey,
    alg: Alg,
) -> Result<Kid, StoreError> {
    let key = generate(master, alg);
    insert_active(conn, master, &key)?;
    Ok(*key.kid())
}

impl KeyStore {
    /// Loads the ring and starts a background refresh.
    pub fn load(pool: &DbPool, master: &MasterKey, issuer: &str) -> Result<KeyStore, StoreError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        let ring = load_ring(&mut conn, master, issuer)?;
        Ok(KeyStore {
            ring: Arc::new(RwLock::new(Arc::new(ring))),
            pool: pool.clone(),
            master: master.clone(),
            issuer: issuer.to_string(),
        })
    }

    /// The ring to use for this request.
    pub fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys now (after a rotation or revocation on this node).
    pub fn reload(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let ring = Arc::new(load_ring(&mut conn, &self.master, &self.issuer)?);
        match self.ring.write() {
            Ok(mut g) => *g = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    /// Refreshes every `every` on a plain thread, for as long as the process runs.
    /// A failed refresh keeps the previous ring: the database may be briefly away.
    pub fn spawn_refresh(&self, every: Duration) {
        let me = self.clone();
        std::thread::Builder::new()
            .name("key-refresh".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                if let Err(e) = me.reload() {
                    tracing::warn!(error = %e, "signing key refresh failed; keeping the current keys");
                }
            })
            .expect("spawning a thread at start-up");
    }
}

/// A stored key for listings, without its secret half: the API answers it
/// as `http::views::KeyInfoView`; the CLI prints it as JSON lines.
#[derive(Debug, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    /// `ed25519`, `es256` or `sm2`.
    pub alg: String,
    pub state: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Lists the keys, newest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<KeyInfo>, StoreError> {
    let mut keys: Vec<KeyInfo> = signing_keys::list(conn)?
        .into_iter()
        .map(|k| KeyInfo {
            kid: k.kid,
            alg: k.alg,
            state: k.state.as_str().to_string(),
            created_at: k.created_at.and_utc(),
        })
        .collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    Ok(keys)
}

fn mark_revoked(conn: &mut DbConnection, kid: &str) -> Result<(), StoreError> {
    let keys = signing_keys::list(conn)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(StoreError::NotFound)?;
    if key.state == KeyState::Active {
        return Err(StoreError::Conflict(Conflict::KeyActive));
    }
    signing_keys::revoke(conn, kid)
}
