//! Federation of issuers (issue 18, `docs/federation.md`): the trust list a
//! node holds and refreshes, this city's node key and entry, verification of
//! a foreign card through its home node, the home node's side of it, and
//! the revocations of foreign cards this node has seen.
//!
//! A node without `HEALTHCARD_FEDERATION_ROOT_KEY` is not federated: every
//! token goes the local way, as before.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::domain::{
    CardId, CardStatus, Channel, ClinicCode, Disclosure, IssuerCode, LocalPatientId, Scope, Scopes,
    Step,
};
use crate::store::clinics::{self, Clinic};
use crate::store::federation as fstore;
use crate::store::{DbPool, StoreError};
use crate::token::message_signature::{self as msig, SignatureError};
use crate::token::trust_list::{self, Check, Entry, Issuer, TrustList};
use crate::token::{self, Claims, Jwk, KeyRing, Kid, Reason, SigningKey, Validation};

use super::audit::ForeignSeen;
pub use super::audit::Nonce;
use super::verification::{self, Outcome, Use};
use super::AppContext;

/// Seal purpose of node keys: a sealed node key cannot be opened as a token
/// signing key or anything else.
const NODE_KEY_PURPOSE: &[u8] = b"healthcard node key v1";
/// A signed request older or newer than this is refused (`stale_request`).
pub const MAX_REQUEST_AGE_SECS: i64 = 60;
/// Route of the home node's resolution.
pub const RESOLVE_PATH: &str = "/federation/v1/resolve";
/// Route of the home node's revocation feed.
pub const REVOCATIONS_PATH: &str = "/federation/v1/revocations";

/// The trust list as this node holds it, with the fetch history.
#[derive(Clone)]
pub struct Federation {
    inner: Arc<Inner>,
}

struct Inner {
    /// The operator's key; `None`: not federated.
    root: Option<token::VerifyingKey>,
    /// This node's own issuer code (`HEALTHCARD_ISSUER`).
    issuer: String,
    source: Option<String>,
    list: RwLock<Option<Arc<TrustList>>>,
    last: Mutex<FetchState>,
    /// This city's node keys, oldest first (more than one while a rotation
    /// is under way), re-read by the refresh thread.
    node_keys: RwLock<Vec<Arc<SigningKey>>>,
    /// The one requests are signed with ([`Federation::choose_node_key`]).
    signing: RwLock<Arc<SigningKey>>,
    /// For requests to other nodes (resolve), bounded by the timeout.
    client: reqwest::Client,
    timeout: Duration,
    refresh: Duration,
    leeway_secs: i64,
    /// The home node's stand-in clinics of peers, by code (ids never change).
    peer_clinics: Mutex<std::collections::HashMap<String, Clinic>>,
    /// What this node discloses to each peer (`federation_peers`), re-read
    /// by the refresh thread; a peer without a row gets the default.
    policies: RwLock<std::collections::HashMap<String, Disclosure>>,
    /// Nonces of peer requests this node accepted, with the time (unix
    /// seconds) after which they could no longer be replayed: a replay is
    /// refused before it costs the peer's rate or a batch rollback. Bounded
    /// ([`SEEN_NONCES_MAX`]); the database spend stays the authority across
    /// the city's nodes.
    seen_nonces: Mutex<std::collections::HashMap<String, i64>>,
}

/// At most this many nonces are remembered in memory; a full set drops its
/// expired nonces, or all of them if more than half are live (the database
/// still refuses a replay the set forgot).
const SEEN_NONCES_MAX: usize = 100_000;

#[derive(Default, Clone)]
struct FetchState {
    fetched_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

/// What `/readyz` and `/metrics` show about the list.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub federated: bool,
    pub sequence: Option<u64>,
    /// Seconds since the list in use was issued.
    pub age_secs: Option<i64>,
    /// Seconds until it expires (negative once it has).
    pub expires_in_secs: Option<i64>,
    pub expired: bool,
    pub issuers: usize,
    pub last_fetch: Option<DateTime<Utc>>,
    /// Why the last fetch was refused, if it was.
    pub last_error: Option<String>,
}

/// Why a federation start-up or request failed.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The node is not federated (no root key configured).
    #[error("this node is not part of a federation")]
    Off,
    /// The node's own list is past its expiry, or it has none.
    #[error("this node has no current trust list")]
    TrustListExpired,
    /// The request signature was refused.
    #[error("{0}")]
    Signature(SignatureError),
    /// The request's nonce was seen before.
    #[error("this request was already received (nonce replayed)")]
    Replayed,
    /// The body is not a resolve request.
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Federation {
    /// Reads the operator's key file, loads (or makes) this city's node key
    /// and tries a first fetch of the list. A node that cannot read its root
    /// key does not start; a list that cannot be fetched now is fetched again
    /// on schedule.
    pub fn open(
        settings: &Settings,
        pool: &DbPool,
        master: &MasterKey,
    ) -> anyhow::Result<Federation> {
        let root = match &settings.federation_root_key {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("federation root key {}: {e}", path.display()))?;
                let jwk: Jwk = serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "federation root key {}: not a public JWK: {e}",
                        path.display()
                    )
                })?;
                Some(
                    trust_list::root_from_public(&jwk).map_err(|e| {
                        anyhow::anyhow!("federation root key {}: {e}", path.display())
                    })?,
                )
            }
        };
        let node_keys = {
            let mut conn = pool.get().map_err(StoreError::from)?;
            ensure_node_key(&mut conn, master)?;
            open_node_keys(&mut conn, master)?
        };
        let first = node_keys
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no node key"))?;
        let timeout = Duration::from_millis(settings.federation_timeout_ms);
        let client = new_client(timeout)?;
        let fed = Federation {
            inner: Arc::new(Inner {
                root,
                issuer: settings.issuer.clone(),
                source: settings.trust_list.clone(),
                list: RwLock::new(None),
                last: Mutex::new(FetchState::default()),
                node_keys: RwLock::new(node_keys),
                signing: RwLock::new(first),
                client,
                timeout,
                refresh: Duration::from_secs(settings.trust_list_refresh_secs),
                leeway_secs: settings.clock_skew_secs,
                peer_clinics: Mutex::new(Default::default()),
                policies: RwLock::new(Default::default()),
                seen_nonces: Mutex::new(Default::default()),
            }),
        };
        if let Ok(mut conn) = pool.get() {
            fed.reload_policies(&mut conn);
        }
        // A file is read now; a URL by the refresh thread's first round
        // (this may run inside the server's runtime, where a blocking HTTP
        // client must not).
        let from_file = fed.inner.source.as_deref().is_some_and(|s| !is_url(s));
        if fed.federated() && from_file {
            let _ = fed.refresh_now();
        }
        Ok(fed)
    }

    /// Re-reads the disclosure policies of peers (every refresh tick, so a
    /// change made on any node of the city, or by the CLI, is in force
    /// everywhere within `min(trust_list_refresh_secs, 30 s)`).
    fn reload_policies(&self, conn: &mut crate::store::DbConnection) {
        match fstore::peers(conn) {
            Ok(rows) => {
                *self
                    .inner
                    .policies
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) =
                    rows.into_iter().map(|r| (r.issuer, r.disclosure)).collect();
            }
            Err(e) => {
                tracing::warn!(error = %e, "federation peers unread; keeping the last policies")
            }
        }
    }

    /// Whether this node accepted `nonce` before, within the time it could
    /// be replayed (checked before the peer's rate limit).
    pub fn nonce_seen(&self, nonce: &Nonce) -> bool {
        let now = Utc::now().timestamp();
        self.inner
            .seen_nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&nonce.key)
            .is_some_and(|&until| until >= now)
    }

    /// Remembers a nonce this node accepts (after the rate limit); `false`
    /// if it was remembered already (the same request arriving twice at
    /// once: the second is a replay).
    pub fn remember_nonce(&self, nonce: &Nonce) -> bool {
        let now = Utc::now().timestamp();
        let until = nonce.expires_at.and_utc().timestamp() + self.inner.leeway_secs;
        let mut seen = self
            .inner
            .seen_nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if seen.get(&nonce.key).is_some_and(|&u| u >= now) {
            return false;
        }
        if seen.len() >= SEEN_NONCES_MAX {
            seen.retain(|_, u| *u >= now);
            // Still full of live nonces: start afresh rather than scan the
            // set on every request (the database still refuses a replay),
            // so the pass costs once per SEEN_NONCES_MAX / 2 or more requests.
            if seen.len() > SEEN_NONCES_MAX / 2 {
                seen.clear();
            }
        }
        seen.insert(nonce.key.clone(), until);
        true
    }

    /// What this node discloses to the peer `issuer`.
    pub fn disclosure_for(&self, issuer: &IssuerCode) -> Disclosure {
        self.inner
            .policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(issuer.as_str())
            .copied()
            .unwrap_or_default()
    }

    /// Whether this node is configured with an operator key.
    pub fn federated(&self) -> bool {
        self.inner.root.is_some()
    }

    /// The list in use, even if expired.
    pub fn list(&self) -> Option<Arc<TrustList>> {
        self.inner
            .list
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The list in use if it has not expired.
    pub fn current(&self) -> Option<Arc<TrustList>> {
        self.list().filter(|l| !l.expired_at(Utc::now()))
    }

    /// The HTTP client for requests to other nodes, one per thread: a
    /// client's kept-alive connections are driven by the runtime that opened
    /// them, and every actix worker is a runtime of its own, so a client
    /// shared by the workers would hop threads on every call.
    fn client(&self) -> reqwest::Client {
        thread_local! {
            static CLIENTS: std::cell::RefCell<Vec<(usize, reqwest::Client)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let id = Arc::as_ptr(&self.inner) as usize;
        CLIENTS.with(|c| {
            let mut clients = c.borrow_mut();
            if let Some((_, client)) = clients.iter().find(|(i, _)| *i == id) {
                return client.clone();
            }
            let client = self
                .inner
                .client_builder()
                .unwrap_or_else(|_| self.inner.client.clone());
            clients.push((id, client.clone()));
            client
        })
    }

    /// The node key this node signs requests with: the newest of the
    /// city's node keys that the list in use carries for this issuer, else
    /// the oldest (see [`Self::choose_node_key`]).
    pub fn node_key(&self) -> Arc<SigningKey> {
        self.inner
            .signing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The city's node key made before `key` (during a rotation, the one
    /// peers that still hold the previous list know), if any.
    fn previous_node_key(&self, key: &SigningKey) -> Option<Arc<SigningKey>> {
        let keys = self.node_keys();
        let at = keys.iter().position(|k| k.kid() == key.kid())?;
        at.checked_sub(1).map(|i| keys[i].clone())
    }

    /// Every node key of this city, oldest first: what `describe` lists.
    pub fn node_keys(&self) -> Vec<Arc<SigningKey>> {
        self.inner
            .node_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Picks the key to sign with after the list or the keys changed: a key
    /// made by `federation node-key rotate` is used only once the list in
    /// force carries it (peers would refuse it before); until then the old
    /// one keeps signing, and both are accepted while the list carries both.
    fn choose_node_key(&self) {
        let keys = self.node_keys();
        let list = self.list();
        let own = |k: &Arc<SigningKey>| {
            list.as_ref().is_some_and(|l| {
                l.node_key(k.kid())
                    .is_some_and(|(i, _)| i.code.as_str() == self.inner.issuer)
            })
        };
        let chosen = keys.iter().rev().find(|k| own(k)).or(keys.first()).cloned();
        if let Some(k) = chosen {
            let mut signing = self
                .inner
                .signing
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if signing.kid() != k.kid() {
                tracing::info!(kid = %k.kid().to_b64(), "node key in use changed");
                *signing = k;
            }
        }
    }

    /// Re-reads the city's node keys (a rotation or retirement by the CLI
    /// or another node); keeps the ones held if the database cannot say.
    fn reload_node_keys(&self, conn: &mut crate::store::DbConnection, master: &MasterKey) {
        match open_node_keys(conn, master) {
            Ok(keys) if !keys.is_empty() => {
                *self
                    .inner
                    .node_keys
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) = keys;
                self.choose_node_key();
            }
            Ok(_) => tracing::warn!("no node key in the database; keeping the one held"),
            Err(e) => tracing::warn!(error = %e, "node keys unread; keeping the ones held"),
        }
    }

    /// Fetches the list from its source now and takes it if it verifies
    /// (signature, type, dates, sequence not lower than the one in use).
    /// A refused list leaves the last good one in place. Returns whether the
    /// list changed.
    pub fn refresh_now(&self) -> Result<bool, String> {
        let (Some(root), Some(source)) = (&self.inner.root, &self.inner.source) else {
            return Ok(false);
        };
        let result = fetch(source, self.inner.timeout).and_then(|text| {
            let last = self.list();
            let list = trust_list::verify(
                &text,
                root,
                &Check {
                    now: Utc::now(),
                    leeway_secs: self.inner.leeway_secs,
                    last: last.as_deref(),
                    check_dates: true,
                },
            )
            .map_err(|e| e.to_string())?;
            let changed = last.as_ref().is_none_or(|l| l.jws != list.jws);
            if changed {
                tracing::info!(
                    sequence = list.sequence(),
                    issuers = list.issuers.len(),
                    expires_at = %list.expires_at(),
                    "trust list taken"
                );
                *self.inner.list.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(list));
                self.choose_node_key();
            }
            Ok(changed)
        });
        let mut last = self.inner.last.lock().unwrap_or_else(|p| p.into_inner());
        last.fetched_at = Some(Utc::now());
        last.error = result.as_ref().err().cloned();
        if let Err(e) = &result {
            tracing::warn!(error = %e, "trust list refused; keeping the last good one");
        }
        drop(last);
        self.warn_if_expiring();
        result
    }

    /// Logs a warning while the list in use has less than a day (or three
    /// refresh intervals, if longer) to live, and an error once it expired.
    fn warn_if_expiring(&self) {
        let Some(list) = self.list() else { return };
        let left = list.expires_at() - Utc::now();
        let margin = chrono::Duration::hours(24).max(chrono::Duration::seconds(
            3 * self.inner.refresh.as_secs() as i64,
        ));
        if left <= chrono::Duration::zero() {
            tracing::error!(sequence = list.sequence(), "trust list expired: foreign cards are refused (trust_list_expired) until a new list arrives");
        } else if left < margin {
            tracing::warn!(
                sequence = list.sequence(),
                expires_in_secs = left.num_seconds(),
                "trust list expires soon: ask the federation operator for a new one"
            );
        }
    }

    /// What `/readyz` and `/metrics` report.
    pub fn status(&self) -> Status {
        let now = Utc::now();
        let list = self.list();
        let last = self
            .inner
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Status {
            federated: self.federated(),
            sequence: list.as_ref().map(|l| l.sequence()),
            age_secs: list.as_ref().map(|l| (now - l.issued_at()).num_seconds()),
            expires_in_secs: list.as_ref().map(|l| (l.expires_at() - now).num_seconds()),
            expired: self.federated() && list.as_ref().is_none_or(|l| l.expired_at(now)),
            issuers: list.as_ref().map_or(0, |l| l.issuers.len()),
            last_fetch: last.fetched_at,
            last_error: last.error,
        }
    }
}

impl Inner {
    fn client_builder(&self) -> reqwest::Result<reqwest::Client> {
        new_client(self.timeout)
    }
}

/// A client for node-to-node calls: bounded by `timeout` (connect and whole
/// request), no redirects followed.
fn new_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Reads the list's text from a file or an `http(s)://` URL.
fn fetch(source: &str, timeout: Duration) -> Result<String, String> {
    if is_url(source) {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout.max(Duration::from_secs(10)))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(source)
            .send()
            .map_err(|e| format!("fetching the trust list: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("fetching the trust list: HTTP {}", resp.status()));
        }
        let text = resp.text().map_err(|e| e.to_string())?;
        if text.len() > trust_list::MAX_LEN {
            return Err("the trust list is too long".into());
        }
        Ok(text)
    } else {
        let meta = std::fs::metadata(source).map_err(|e| format!("{source}: {e}"))?;
        if meta.len() > trust_list::MAX_LEN as u64 {
            return Err("the trust list is too long".into());
        }
        std::fs::read_to_string(source).map_err(|e| format!("{source}: {e}"))
    }
}

/// Makes (and seals) this city's first node key if it has none.
fn ensure_node_key(
    conn: &mut crate::store::DbConnection,
    master: &MasterKey,
) -> Result<(), StoreError> {
    if fstore::node_key(conn)?.is_none() {
        insert_new_node_key(conn, master)
            .map(drop)
            .or_else(|e| match e {
                // Another node of the city made one at the same moment.
                StoreError::Conflict(_) => Ok(()),
                e => Err(e),
            })?;
    }
    Ok(())
}

fn insert_new_node_key(
    conn: &mut crate::store::DbConnection,
    master: &MasterKey,
) -> Result<SigningKey, StoreError> {
    let key = SigningKey::generate();
    let secret = key.secret_bytes().expect("a generated key is in memory");
    fstore::insert_node_key(
        conn,
        &fstore::StoredNodeKey {
            kid: key.kid().to_b64(),
            public_key: key.public_key().to_vec(),
            sealed_private: master.seal(NODE_KEY_PURPOSE, secret),
        },
    )?;
    Ok(key)
}

/// Every node key of the city, opened, oldest first.
fn open_node_keys(
    conn: &mut crate::store::DbConnection,
    master: &MasterKey,
) -> Result<Vec<Arc<SigningKey>>, StoreError> {
    fstore::node_keys(conn)?
        .into_iter()
        .map(|stored| {
            let secret = master
                .open(NODE_KEY_PURPOSE, &stored.sealed_private)
                .map_err(|_| {
                    StoreError::Other("the node key cannot be opened with this master key".into())
                })?;
            let key = SigningKey::from_secret(token::Alg::Ed25519, &secret)
                .map_err(|e| StoreError::Other(format!("node key: {e}")))?;
            if key.kid().to_b64() != stored.kid {
                return Err(StoreError::Other(
                    "the node key's kid does not name it".into(),
                ));
            }
            Ok(Arc::new(key))
        })
        .collect()
}

/// Why a node-key rotation step was refused.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// Retiring before the list in force carries the newest key would
    /// leave this city unable to sign anything peers accept.
    #[error("the trust list in force does not carry the newest node key ({0}) yet: send `federation describe` to the operator and wait for the list that carries it")]
    NotInList(String),
    /// Only one key: nothing to retire.
    #[error("this city has one node key only; nothing to retire")]
    NothingToRetire,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `healthcard federation node-key rotate`: a new node key beside the one
/// in use (logged). Nodes keep signing with the old one until the list in
/// force carries the new one (`describe` now lists both).
pub fn rotate_node_key(
    ctx: &AppContext,
    actor: &super::registry::Actor,
) -> Result<SigningKey, StoreError> {
    let key = ctx.with_tx(|c| {
        let key = insert_new_node_key(c, &ctx.master)?;
        crate::store::access_log::append(
            c,
            &ctx.master.chain_key(),
            &[super::registry::entry(
                actor,
                "federation.node_key.rotate",
                None,
                None,
                Some(key.kid().to_b64()),
            )],
        )?;
        Ok(key)
    })?;
    if let Ok(mut conn) = ctx.conn() {
        ctx.federation.reload_node_keys(&mut conn, &ctx.master);
    }
    Ok(key)
}

/// `healthcard federation node-key retire`: deletes every node key but the
/// newest, once the list in force carries the newest for this issuer
/// (logged); `describe` then lists the new key only, for the next list.
/// Returns the kids retired.
pub fn retire_node_keys(
    ctx: &AppContext,
    actor: &super::registry::Actor,
) -> Result<Vec<String>, NodeKeyError> {
    let keys = ctx.federation.node_keys();
    let (Some(newest), true) = (keys.last(), keys.len() > 1) else {
        return Err(NodeKeyError::NothingToRetire);
    };
    let newest_kid = newest.kid();
    let listed = ctx.federation.current().is_some_and(|l| {
        l.node_key(newest_kid)
            .is_some_and(|(i, _)| i.code.as_str() == ctx.settings.issuer)
    });
    if !listed {
        return Err(NodeKeyError::NotInList(newest_kid.to_b64()));
    }
    let retired: Vec<String> = keys[..keys.len() - 1]
        .iter()
        .map(|k| k.kid().to_b64())
        .collect();
    ctx.with_tx(|c| {
        // Only the kids named above: a key rotated (by another node or the
        // CLI) since they were read stays, and so does the newest.
        fstore::retire_node_keys(c, &retired)?;
        crate::store::access_log::append(
            c,
            &ctx.master.chain_key(),
            &[super::registry::entry(
                actor,
                "federation.node_key.retire",
                None,
                None,
                Some(retired.join(",")),
            )],
        )
        .map(|_| ())
    })?;
    if let Ok(mut conn) = ctx.conn() {
        ctx.federation.reload_node_keys(&mut conn, &ctx.master);
    }
    Ok(retired)
}

/// Starts the refresh thread: the list every `trust_list_refresh_secs`, the
/// home nodes' revocation feeds every `min(that, 30 s)`.
pub fn spawn_refresh(ctx: AppContext) {
    if !ctx.federation.federated() {
        return;
    }
    let list_every = ctx.federation.inner.refresh;
    let tick = list_every.min(Duration::from_secs(30));
    std::thread::Builder::new()
        .name("trust-list".into())
        .spawn(move || {
            if ctx.federation.list().is_none() {
                let _ = ctx.federation.refresh_now();
            }
            // The policies (and node keys) on a timer of their own: the
            // list fetch and the revocation polls are HTTP calls in turn,
            // which must not hold a policy change past its tick.
            {
                let ctx = ctx.clone();
                std::thread::Builder::new()
                    .name("federation-policies".into())
                    .spawn(move || loop {
                        std::thread::sleep(tick);
                        if let Ok(mut conn) = ctx.conn() {
                            ctx.federation.reload_policies(&mut conn);
                            ctx.federation.reload_node_keys(&mut conn, &ctx.master);
                        }
                    })
                    .expect("spawning a thread at start-up");
            }
            let mut since_list = Duration::ZERO;
            loop {
                std::thread::sleep(tick);
                since_list += tick;
                if since_list >= list_every {
                    since_list = Duration::ZERO;
                    let _ = ctx.federation.refresh_now();
                }
                poll_revocations(&ctx);
            }
        })
        .expect("spawning a thread at start-up");
}

/// This node's entry for the operator (`healthcard federation describe`).
pub fn describe(ctx: &AppContext) -> Entry {
    let s = &ctx.settings;
    Entry {
        code: s.issuer.clone(),
        name: s.issuer_name.clone().unwrap_or_else(|| s.issuer.clone()),
        base_url: s.public_base(),
        keys: ctx.keys.current().jwks().keys,
        node_keys: ctx
            .federation
            .node_keys()
            .iter()
            .map(|k| Jwk::from_verifying_key(&k.verifying_key()))
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// The visiting node: routing a token and asking its home node.

/// The resident as a home node discloses it to a peer: what a clinic
/// without `pii` sees (masked numbers only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerResident {
    pub id: Uuid,
    pub name: String,
    pub sex: String,
    pub birth_date: chrono::NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_id_masked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_masked: Option<String>,
    /// The full ID number: only from a home node whose policy for this peer
    /// is `pii`, and only for an asking clinic with `pii` (see
    /// [`Disclosure`]); the visiting node shows it to such a clinic only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_id: Option<String>,
}

impl PeerResident {
    /// The resident as disclosed: what a clinic without `pii` sees, plus
    /// the full ID number when `pii` (never more than a `pii` clinic sees).
    fn of(r: &crate::store::residents::Resident, pii: bool) -> PeerResident {
        PeerResident {
            national_id: if pii {
                r.national_id().map(|n| n.as_str().to_string())
            } else {
                None
            },
            id: r.id.as_uuid(),
            name: r.name.clone(),
            sex: r.sex.as_str().to_string(),
            birth_date: r.birth_date,
            national_id_masked: r.national_id().map(|n| n.masked()),
            document_type: r.primary_document().map(|d| d.kind().as_str().to_owned()),
            document_masked: r.primary_document().map(|d| d.masked()),
        }
    }
}

/// The asking clinic, as the visiting node names it to the home node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerClinic {
    pub code: String,
    pub name: String,
}

/// `POST /federation/v1/resolve`'s body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub token: String,
    pub clinic: PeerClinic,
    /// `window`, `kiosk`, `doctor` or `app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// One of the steps of care (`registration`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The asking clinic holds `pii` at the visiting node: the home node may
    /// then disclose the full number, if its policy for the peer allows.
    /// Sent only when true, so that a home node of the previous release
    /// (which refuses unknown fields) still answers the usual requests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pii: bool,
}

/// Its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveAnswer {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident: Option<PeerResident>,
}

/// The issuer of a foreign card, as the answer names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRef {
    pub code: String,
    pub name: String,
}

/// A foreign card's valid resolution at the visiting node.
#[derive(Debug, Clone)]
pub struct ForeignResolution {
    pub issuer: IssuerRef,
    pub resident: PeerResident,
    /// The asking clinic's own number for this resident (kept here).
    pub local_patient_id: Option<String>,
}

/// Where a token is judged.
pub enum Route {
    /// By this node: its own key, or nothing federated about it.
    Local,
    /// By its home node, after the signature check here.
    Foreign(Arc<TrustList>, usize),
    /// Refused here.
    Refused(Reason),
}

/// Decides where `text` is judged: this node's own keys first; then the
/// list's (`trust_list_expired` without a current one); a token of no
/// listed key is `unknown_key` when its `iss` is this node's or a listed
/// issuer's, else `issuer_unknown`. The unauthenticated `iss` only picks
/// between those two refusals.
pub fn route(ctx: &AppContext, ring: &KeyRing, text: &str) -> Route {
    if !ctx.federation.federated() {
        return Route::Local;
    }
    let Some(peeked) = token::verify::peek(text) else {
        return Route::Local;
    };
    if ring.verifier(&peeked.kid).is_some()
        || peeked.issuer.as_deref() == Some(ctx.settings.issuer.as_str())
    {
        return Route::Local;
    }
    let Some(list) = ctx.federation.current() else {
        return Route::Refused(Reason::TrustListExpired);
    };
    if let Some(i) = list
        .issuers
        .iter()
        .position(|i| i.keys.verifier(&peeked.kid).is_some())
    {
        // Never a round trip to itself: this node judges its own issuer's keys.
        if list.issuers[i].code.as_str() == ctx.settings.issuer {
            return Route::Local;
        }
        return Route::Foreign(list, i);
    }
    match peeked.issuer {
        Some(iss) if list.issuer(&iss).is_some() => Route::Refused(Reason::UnknownKey),
        _ => Route::Refused(Reason::IssuerUnknown),
    }
}

/// Verifies a foreign card for `clinic`: its signature and times against
/// the issuer's keys in the list, then its home node's judgement (card
/// state, replay), then this node's own number for the resident. Logs this
/// node's access-log row either way.
pub async fn verify_foreign(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    text: &str,
    used: Use,
    list: Arc<TrustList>,
    index: usize,
) -> Result<Outcome, StoreError> {
    let issuer = &list.issuers[index];
    let validation = Validation {
        now: Utc::now().timestamp(),
        leeway_secs: ctx.settings.clock_skew_secs,
    };
    let refused = |reason, card_id| Outcome::Invalid { reason, card_id };
    let outcome = match token::verify(text, &issuer.keys, &validation) {
        Err(r) => refused(r.reason, r.claims.map(|c| c.card_id)),
        Ok(v) if v.claims.issuer != issuer.code.as_str() => {
            refused(Reason::IssuerUnknown, Some(v.claims.card_id))
        }
        Ok(v) => ask_home(ctx, clinic, text, used, issuer, v.claims).await,
    };
    let mut entry = verification::log_entry(clinic, &outcome, used);
    entry.detail = Some(format!("issuer {}", issuer.code));
    match outcome {
        // The card recorded and the clinic's number read in the batch that
        // logs the verification (one transaction, no hop of its own).
        Outcome::Foreign {
            claims,
            mut resolution,
        } => {
            let seen = ForeignSeen {
                card: CardId::from(claims.card_id),
                issuer: resolution.issuer.code.clone(),
                resident_id: resolution.resident.id.to_string(),
                clinic: clinic.id,
            };
            resolution.local_patient_id = ctx.audit.record_foreign(entry, seen).await?;
            Ok(Outcome::Foreign { claims, resolution })
        }
        outcome => {
            ctx.audit.record(entry).await?;
            Ok(outcome)
        }
    }
}

/// The home node's judgement of a correctly signed foreign token; a valid
/// one without the clinic's number yet (the caller reads it in its batch).
async fn ask_home(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    text: &str,
    used: Use,
    issuer: &Issuer,
    claims: Claims,
) -> Outcome {
    let unavailable = Outcome::Invalid {
        reason: Reason::IssuerUnavailable,
        card_id: Some(claims.card_id),
    };
    let request = |pii: bool| {
        serde_json::to_vec(&ResolveRequest {
            token: text.to_string(),
            clinic: PeerClinic {
                code: clinic.code.as_str().to_string(),
                name: clinic.name.clone(),
            },
            channel: used.channel.map(|c| c.as_str().to_string()),
            step: used.step.map(|s| s.as_str().to_string()),
            pii,
        })
        .expect("a request serializes")
    };
    let pii = clinic.scopes.contains(Scope::Pii);
    let client = ctx.federation.client();
    let mut answer = call(ctx, &client, issuer, "POST", RESOLVE_PATH, "", request(pii)).await;
    if pii && matches!(&answer, Err(e) if e.is(400, "bad_resolve_request")) {
        // A home node of the previous release refuses the `pii` field
        // (its request type denies unknown fields): asked once more
        // without it (signed anew), it answers the standard disclosure.
        tracing::info!(issuer = %issuer.code, "home node refused `pii` (previous release?): asking without it");
        answer = call(
            ctx,
            &client,
            issuer,
            "POST",
            RESOLVE_PATH,
            "",
            request(false),
        )
        .await;
    }
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(issuer = %issuer.code, error = %e, "home node did not answer");
            return unavailable;
        }
    };
    let answer: ResolveAnswer = match serde_json::from_slice(&answer) {
        Ok(a) => a,
        Err(_) => {
            tracing::warn!(issuer = %issuer.code, "home node answered something else than a resolution");
            return unavailable;
        }
    };
    match (answer.valid, answer.resident, answer.reason) {
        (true, Some(resident), _) if answer.card_id == Some(claims.card_id) => Outcome::Foreign {
            claims,
            resolution: Box::new(ForeignResolution {
                issuer: IssuerRef {
                    code: issuer.code.to_string(),
                    name: issuer.name.to_string(),
                },
                resident,
                local_patient_id: None,
            }),
        },
        (false, _, Some(reason)) => Outcome::Invalid {
            reason,
            card_id: Some(claims.card_id),
        },
        _ => unavailable,
    }
}

/// A node-to-node request not answered with a 200.
#[derive(Debug)]
struct CallError {
    /// The HTTP status, if the other node answered.
    status: Option<u16>,
    /// The answer's error `code`, if it carried one.
    code: Option<String>,
    message: String,
}

impl CallError {
    fn other(e: impl std::fmt::Display) -> CallError {
        CallError {
            status: None,
            code: None,
            message: e.to_string(),
        }
    }

    /// Whether the other node answered `status` with error `code`.
    fn is(&self, status: u16, code: &str) -> bool {
        self.status == Some(status) && self.code.as_deref() == Some(code)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, "HTTP {s} {c}"),
            (Some(s), None) => write!(f, "HTTP {s}"),
            _ => f.write_str(&self.message),
        }
    }
}

/// Sends a signed request to `issuer`'s node and returns the body of a 200.
/// Signed with the node key in use; refused `unknown_node` (a peer that
/// still holds the list from before this city's node-key rotation: each
/// node fetches the list on its own timer), it is signed anew with the
/// city's previous node key and sent once more.
async fn call(
    ctx: &AppContext,
    client: &reqwest::Client,
    issuer: &Issuer,
    method: &str,
    route: &str,
    query: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, CallError> {
    let key = ctx.federation.node_key();
    match send(client, &key, issuer, method, route, query, body.clone()).await {
        Err(e) if e.is(401, "unknown_node") => match ctx.federation.previous_node_key(&key) {
            Some(previous) => {
                tracing::info!(issuer = %issuer.code, "peer does not know the node key in use yet: signing with the previous one");
                send(client, &previous, issuer, method, route, query, body).await
            }
            None => Err(e),
        },
        answer => answer,
    }
}

async fn send(
    client: &reqwest::Client,
    key: &SigningKey,
    issuer: &Issuer,
    method: &str,
    route: &str,
    query: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, CallError> {
    let path = format!("{}{route}", url_path(&issuer.base_url));
    let signed = msig::sign(key, method, &path, query, &body, Utc::now().timestamp())
        .map_err(CallError::other)?;
    let mut url = format!("{}{route}", issuer.base_url);
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let req = match method {
        "POST" => client
            .post(&url)
            .header("content-type", "application/json")
            .body(body),
        _ => client.get(&url),
    };
    let resp = req
        .header(msig::CONTENT_DIGEST, signed.content_digest)
        .header(msig::SIGNATURE_INPUT, signed.signature_input)
        .header(msig::SIGNATURE, signed.signature)
        .send()
        .await
        .map_err(CallError::other)?;
    let status = resp.status();
    if !status.is_success() {
        #[derive(Deserialize)]
        struct Refusal {
            code: String,
        }
        let code = resp
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Refusal>(&b).ok())
            .map(|r| r.code);
        return Err(CallError {
            status: Some(status.as_u16()),
            code,
            message: format!("HTTP {status}"),
        });
    }
    let bytes = resp.bytes().await.map_err(CallError::other)?;
    Ok(bytes.to_vec())
}

/// The path part of a base URL (`https://h/hc` → `/hc`, `https://h` → ``).
fn url_path(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.find('/').map_or("", |i| &rest[i..])
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Unavailable("the blocking pool stopped".into()))?
}

/// Links `local` at `clinic` to the foreign card's resident, if this node
/// has verified that card (valid, for this clinic, recently: as for a local
/// card). `None` if the card is not a foreign card seen here.
pub fn link_foreign(
    ctx: &AppContext,
    conn: &mut crate::store::DbConnection,
    clinic: &Clinic,
    card: CardId,
    local: &LocalPatientId,
) -> Result<Option<fstore::ForeignCard>, StoreError> {
    let Some(found) = fstore::foreign_card(conn, card)? else {
        return Ok(None);
    };
    match found.status {
        CardStatus::Revoked => {
            return Err(StoreError::Conflict(crate::store::Conflict::CardRevoked))
        }
        CardStatus::Replaced => {
            return Err(StoreError::Conflict(crate::store::Conflict::CardReplaced))
        }
        CardStatus::Active | CardStatus::Suspended => {}
    }
    let since = crate::store::now() - chrono::Duration::seconds(ctx.settings.link_scan_window_secs);
    if !crate::store::access_log::verified_since(conn, clinic.id, card, since)? {
        return Err(StoreError::Conflict(crate::store::Conflict::NoRecentScan));
    }
    fstore::create_foreign_link(conn, clinic.id, local, &found.issuer, &found.resident_id)?;
    Ok(Some(found))
}

// ---------------------------------------------------------------------------
// The home node: authenticating a peer and resolving for it.

/// A peer whose request signature verified.
#[derive(Debug, Clone)]
pub struct Peer {
    pub issuer: IssuerCode,
    pub name: String,
    /// The kid of the node key that signed the request.
    pub node_kid: String,
}

/// What arrived with a node-to-node request, its path as this node received
/// it ([`authenticate`] puts the path of the public URL before it).
pub type SignedRequest<'a> = msig::Request<'a>;

/// Checks a node-to-node request: this node's list current, the signature
/// by a node key of a listed issuer other than this one, fresh. CPU only
/// (one Ed25519 verification), so it runs on the request's worker. The
/// returned nonce must then be spent in the transaction of what the request
/// does ([`resolve_for_peer`] through the access-log writer, or
/// [`spend_nonce`]): never seen by any node of this city.
pub fn authenticate(
    ctx: &AppContext,
    req: &SignedRequest,
) -> Result<(Peer, Nonce), FederationError> {
    if !ctx.federation.federated() {
        return Err(FederationError::Off);
    }
    let list = ctx
        .federation
        .current()
        .ok_or(FederationError::TrustListExpired)?;
    let path = format!("{}{}", url_path(&ctx.settings.public_base()), req.path);
    let now = Utc::now().timestamp();
    let mut caller: Option<&Issuer> = None;
    let verified = msig::verify(
        &msig::Request {
            path: &path,
            ..*req
        },
        now,
        MAX_REQUEST_AGE_SECS,
        |kid: &Kid| {
            list.node_key(kid)
                .filter(|(i, _)| i.code.as_str() != ctx.settings.issuer)
                .map(|(i, k)| {
                    caller = Some(i);
                    k
                })
        },
    )
    .map_err(FederationError::Signature)?;
    let caller = caller.ok_or(FederationError::Signature(SignatureError::UnknownNode))?;
    let expires = chrono::DateTime::from_timestamp(verified.created + MAX_REQUEST_AGE_SECS + 1, 0)
        .unwrap_or_default()
        .naive_utc();
    let nonce = Nonce {
        key: format!("{}:{}", verified.keyid, verified.nonce),
        expires_at: expires,
    };
    Ok((
        Peer {
            issuer: caller.code.clone(),
            name: caller.name.to_string(),
            node_kid: verified.keyid.to_string(),
        },
        nonce,
    ))
}

/// Spends a request's nonce on its own (a request that writes nothing
/// else: the revocation feed); `Replayed` if it was spent before.
pub fn spend_nonce(ctx: &AppContext, nonce: &Nonce) -> Result<(), FederationError> {
    if !fstore::spend_nonce(&mut *ctx.conn()?, &nonce.key, nonce.expires_at)? {
        return Err(FederationError::Replayed);
    }
    Ok(())
}

/// The local stand-in for a peer city in this node's clinics table
/// (`fed-<code>`, no usable API key), so that its resolutions are judged,
/// logged and counted exactly like a clinic's.
fn peer_clinic(ctx: &AppContext, peer: &Peer) -> Result<Clinic, StoreError> {
    let cache = &ctx.federation.inner.peer_clinics;
    if let Some(c) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(peer.issuer.as_str())
    {
        return Ok(c.clone());
    }
    let clinic = load_peer_clinic(ctx, peer)?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(peer.issuer.to_string(), clinic.clone());
    Ok(clinic)
}

fn load_peer_clinic(ctx: &AppContext, peer: &Peer) -> Result<Clinic, StoreError> {
    let issuer = peer.issuer.as_str();
    if let Some(id) = fstore::peer(&mut *ctx.conn()?, issuer)?.and_then(|p| p.clinic_id) {
        return clinics::get(&mut *ctx.conn()?, id);
    }
    // The previous release's stand-in (found by its code then), adopted in
    // the transaction that records it, so that the peer's history stays at
    // one clinic across the upgrade.
    let adopted = ctx.with_tx(|c| {
        let Some(old) = previous_release_stand_in(c, peer)? else {
            return Ok(None);
        };
        if fstore::peer(c, issuer)?.and_then(|p| p.clinic_id).is_some() {
            // Recorded by another node meanwhile: re-read below.
            return Err(StoreError::Conflict(crate::store::Conflict::Unique));
        }
        fstore::set_peer_clinic(c, issuer, old.id)?;
        Ok(Some(old))
    });
    match adopted {
        Ok(Some(clinic)) => return Ok(clinic),
        Ok(None) => {}
        Err(StoreError::Conflict(_)) => {
            if let Some(id) = fstore::peer(&mut *ctx.conn()?, issuer)?.and_then(|p| p.clinic_id) {
                return clinics::get(&mut *ctx.conn()?, id);
            }
        }
        Err(e) => return Err(e),
    }
    let name = format!("{} (federation {})", peer.name, peer.issuer);
    let scopes =
        Scopes::from_list(&[Scope::Verify]).map_err(|e| StoreError::Other(e.to_string()))?;
    // `fed-<code>`: a prefix no clinic can be created with
    // (`ClinicCode::parse_new`); a clinic of that code from before the
    // prefix was reserved is passed over, never taken for the peer.
    for n in 0..10 {
        let code = ClinicCode::stand_in(&peer.issuer, n);
        let made = ctx.with_tx(|c| {
            let (clinic, _key) = clinics::create(c, &code, &name, scopes)?;
            // The key made with it is never shown: withdraw it at once.
            for k in clinics::list_keys(c, clinic.id)? {
                clinics::revoke_key(c, &k.id)?;
            }
            // Another node of the city may have made one at the same moment:
            // the first row in the table wins, and the clinic just made is
            // rolled back (an error, not an answer), then the row re-read.
            if fstore::peer(c, issuer)?.and_then(|p| p.clinic_id).is_some() {
                return Err(StoreError::Conflict(crate::store::Conflict::Unique));
            }
            fstore::set_peer_clinic(c, issuer, clinic.id)?;
            Ok(clinic)
        });
        match made {
            Ok(clinic) => return Ok(clinic),
            Err(StoreError::Conflict(_)) => {
                if let Some(id) = fstore::peer(&mut *ctx.conn()?, issuer)?.and_then(|p| p.clinic_id)
                {
                    return clinics::get(&mut *ctx.conn()?, id);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Other(format!(
        "no free stand-in clinic code for peer {issuer}"
    )))
}

/// The stand-in the previous release made for `peer` (before
/// `federation_peers.clinic_id`): the clinic of code exactly `fed-<issuer>`,
/// named `… (federation <issuer>)` as that release named it, with no usable
/// API key, and no peer's stand-in already. A clinic of that code that is
/// anything else (a real clinic from before the prefix was reserved) is
/// never taken.
fn previous_release_stand_in(
    conn: &mut crate::store::DbConnection,
    peer: &Peer,
) -> Result<Option<Clinic>, StoreError> {
    let code = ClinicCode::stand_in(&peer.issuer, 0);
    let Some(clinic) = clinics::find_by_code(conn, &code)? else {
        return Ok(None);
    };
    let named = clinic
        .name
        .ends_with(&format!(" (federation {})", peer.issuer));
    let keys_revoked = clinics::list_keys(conn, clinic.id)?
        .iter()
        .all(|k| k.revoked_at.is_some());
    let taken = fstore::peers(conn)?
        .iter()
        .any(|p| p.clinic_id == Some(clinic.id));
    Ok((named && keys_revoked && !taken).then_some(clinic))
}

/// Sets what this node discloses to the peer city `issuer` (in force on
/// every node of the city at its next refresh tick); logged.
pub fn set_disclosure(
    ctx: &AppContext,
    actor: &super::registry::Actor,
    issuer: &IssuerCode,
    disclosure: Disclosure,
) -> Result<(), StoreError> {
    ctx.with_tx(|c| {
        fstore::set_peer_disclosure(c, issuer.as_str(), disclosure)?;
        crate::store::access_log::append(
            c,
            &ctx.master.chain_key(),
            &[super::registry::entry(
                actor,
                "federation.peer.disclosure",
                None,
                None,
                Some(format!("{issuer} disclosure={disclosure}")),
            )],
        )
        .map(|_| ())
    })?;
    if let Ok(mut conn) = ctx.conn() {
        ctx.federation.reload_policies(&mut conn);
    }
    Ok(())
}

/// Every peer city this node has a policy or a stand-in for.
pub fn peers(ctx: &AppContext) -> Result<Vec<fstore::PeerRow>, StoreError> {
    fstore::peers(&mut *ctx.conn()?)
}

/// The home node's resolution for a peer: the same checks as for its own
/// clinics (signature, key, card state, replay once across the federation),
/// logged under `<peer code>-<clinic code>` at the peer's stand-in clinic,
/// answered with what a clinic without `pii` sees.
pub async fn resolve_for_peer(
    ctx: &AppContext,
    peer: Peer,
    nonce: Nonce,
    body: &[u8],
) -> Result<ResolveAnswer, FederationError> {
    let req: ResolveRequest = serde_json::from_slice(body)
        .map_err(|e| FederationError::BadRequest(format!("not a resolve request: {e}")))?;
    let cached = ctx
        .federation
        .inner
        .peer_clinics
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(peer.issuer.as_str())
        .cloned();
    let mut clinic = match cached {
        Some(c) => c,
        None => {
            let ctx2 = ctx.clone();
            let peer2 = peer.clone();
            blocking(move || peer_clinic(&ctx2, &peer2)).await?
        }
    };
    // The access log names the foreign node and its clinic.
    if let Ok(code) = ClinicCode::parse(&format!("{}-{}", peer.issuer, req.clinic.code)) {
        clinic.code = code;
    }
    let clinic = Arc::new(clinic);
    let used = Use {
        channel: req
            .channel
            .as_deref()
            .map(str::parse::<Channel>)
            .transpose()
            .map_err(|_| FederationError::BadRequest("unknown channel".into()))?,
        step: req
            .step
            .as_deref()
            .map(str::parse::<Step>)
            .transpose()
            .map_err(|_| FederationError::BadRequest("unknown step".into()))?,
    };
    let outcome = verification::verify_local_with(ctx, &clinic, &req.token, used, Some(nonce))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(crate::store::Conflict::RequestReplayed) => {
                FederationError::Replayed
            }
            e => FederationError::Store(e),
        })?;
    Ok(match outcome {
        Outcome::Valid { claims, resolution } => ResolveAnswer {
            valid: true,
            reason: None,
            card_id: Some(claims.card_id),
            resident: Some(PeerResident::of(
                &resolution.resident,
                req.pii && ctx.federation.disclosure_for(&peer.issuer) == Disclosure::Pii,
            )),
        },
        Outcome::Invalid { reason, .. } => ResolveAnswer {
            valid: false,
            reason: Some(reason),
            card_id: None,
            resident: None,
        },
        // verify_local never routes abroad.
        Outcome::Foreign { .. } => ResolveAnswer {
            valid: false,
            reason: Some(Reason::IssuerUnknown),
            card_id: None,
            resident: None,
        },
    })
}

/// One change of the home node's feed, as peers read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerChange {
    pub card_id: Uuid,
    pub status: CardStatus,
    pub at: DateTime<Utc>,
}

/// `GET /federation/v1/revocations`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerFeed {
    pub revoked: Vec<PeerChange>,
    pub next: String,
}

/// This node's own card changes after `since`, for a peer.
pub fn own_changes(ctx: &AppContext, since: i64, limit: i64) -> Result<PeerFeed, StoreError> {
    let (changes, next) = crate::store::cards::changes_since(&mut *ctx.conn()?, since, limit)?;
    Ok(PeerFeed {
        revoked: changes
            .into_iter()
            .map(|c| PeerChange {
                card_id: c.card_id.as_uuid(),
                status: c.status,
                at: c.at.and_utc(),
            })
            .collect(),
        next: next.to_string(),
    })
}

/// Reads every home node's feed for the foreign cards this node has seen,
/// from where it stopped, and records their changes.
pub fn poll_revocations(ctx: &AppContext) {
    let Some(list) = ctx.federation.current() else {
        return;
    };
    let issuers = match ctx.conn().and_then(|mut c| fstore::issuers_seen(&mut c)) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "federation revocations: no database");
            return;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return,
    };
    for code in issuers {
        let Some(issuer) = list.issuer(&code) else {
            continue;
        };
        if let Err(e) = rt.block_on(poll_one(ctx, issuer)) {
            tracing::warn!(issuer = %code, error = %e, "federation revocations: home node feed unread");
        }
    }
}

async fn poll_one(ctx: &AppContext, issuer: &Issuer) -> Result<(), String> {
    let code = issuer.code.as_str();
    let mut cursor = fstore::cursor(&mut *ctx.conn().map_err(|e| e.to_string())?, code)
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "0".into());
    // A client of this runtime's own: the shared one belongs to the server's.
    for _ in 0..100 {
        let query = format!("since={cursor}");
        let body = call_with(ctx, issuer, REVOCATIONS_PATH, &query).await?;
        let feed: PeerFeed = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let mut conn = ctx.conn().map_err(|e| e.to_string())?;
        for c in &feed.revoked {
            fstore::record_foreign_change(
                &mut conn,
                CardId::from(c.card_id),
                code,
                c.status,
                c.at.naive_utc(),
            )
            .map_err(|e| e.to_string())?;
        }
        let done = feed.next == cursor || feed.revoked.is_empty();
        fstore::set_cursor(&mut conn, code, &feed.next).map_err(|e| e.to_string())?;
        cursor = feed.next;
        if done {
            break;
        }
    }
    Ok(())
}

/// A signed GET with a client made for the calling runtime.
async fn call_with(
    ctx: &AppContext,
    issuer: &Issuer,
    route: &str,
    query: &str,
) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(ctx.federation.inner.timeout.max(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    call(ctx, &client, issuer, "GET", route, query, Vec::new())
        .await
        .map_err(|e| e.to_string())
}
