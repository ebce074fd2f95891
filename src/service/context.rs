use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::store::{self, DbConnection, DbPool, PooledConn, StoreError};

use super::audit::AuditWriter;
use super::keys::KeyStore;

/// What a running node holds: settings, the database pool, the master key,
/// the signing keys and the access-log writer. Cheap to clone.
#[derive(Clone)]
pub struct AppContext {
    pub settings: Arc<Settings>,
    pub pool: DbPool,
    /// Hands [`AppContext::conn`]'s connections out first come, first served.
    gate: Arc<FairGate>,
    pub master: MasterKey,
    pub keys: KeyStore,
    pub audit: AuditWriter,
    pub counters: super::verification::Counters,
    /// The trust list and this city's node key (issue 18).
    pub federation: super::federation::Federation,
    /// The date the family rules go by (a minor's 18th birthday).
    pub clock: Clock,
}

/// The registry's notion of now for rules that go by the calendar. Real
/// time, unless a test moved it: tokens and sessions keep real time, only
/// [`Clock`]'s readers (the guardianship rules) see the move. Clones share
/// the setting, so a test moves every part of the running app at once.
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> chrono::NaiveDateTime {
        let off = self.offset_secs.load(std::sync::atomic::Ordering::Relaxed);
        store::now() + chrono::Duration::seconds(off)
    }

    pub fn today(&self) -> chrono::NaiveDate {
        self.now().date()
    }

    /// Tests only: moves this clock so that `today()` is `day` (same time
    /// of day). There is no setting for it: a running node never moves.
    #[doc(hidden)]
    pub fn move_to(&self, day: chrono::NaiveDate) {
        let delta = (day - chrono::Utc::now().date_naive()).num_seconds();
        self.offset_secs
            .store(delta, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What happened on start-up, so `serve` can tell a newcomer what to do next.
#[derive(Debug, Default)]
pub struct StartupReport {
    pub created_master_key: bool,
    pub created_signing_key: bool,
    pub admins: i64,
    pub clinics: i64,
    /// The access log's old plain SHA-256 chain was re-keyed now.
    pub rekeyed: Option<store::access_log::Rekeyed>,
}

impl AppContext {
    /// Opens what an installation already has (the commands other than
    /// `serve` and `migrate`): refuses, naming the folder and `--data-dir`,
    /// where [`AppContext::open`] would create a data folder, a database
    /// file or a master key, so that a command run in the wrong directory
    /// does not quietly start a second installation.
    pub fn open_existing(settings: Settings) -> anyhow::Result<(AppContext, StartupReport)> {
        let dir = &settings.data_dir;
        let sqlite = store::Backend::from_url(&settings.database_url) == store::Backend::Sqlite;
        let hint = "give the folder of an existing installation with --data-dir (or HEALTHCARD_DATA_DIR); \
                    only `healthcard serve` and `healthcard migrate` create a new one";
        let needs_dir = sqlite || settings.master_key_from_file();
        if needs_dir && !dir.is_dir() {
            anyhow::bail!("no data folder {}: {hint}", dir.display());
        }
        if settings.master_key_from_file() {
            let key = crate::config::master_key_file(dir);
            if !key.exists() {
                anyhow::bail!(
                    "no master key in the data folder {} ({} is missing): {hint}",
                    dir.display(),
                    key.display()
                );
            }
        }
        if sqlite {
            let url = &settings.database_url;
            let file = std::path::Path::new(url.strip_prefix("sqlite://").unwrap_or(url));
            if !file.exists() {
                anyhow::bail!(
                    "no database {} for the data folder {}: {hint}",
                    file.display(),
                    dir.display()
                );
            }
        }
        Self::open(settings)
    }

    /// Opens the database (migrating it and upgrading the access-log chain),
    /// the master key and the signing keys, creating what a first start needs.
    pub fn open(settings: Settings) -> anyhow::Result<(AppContext, StartupReport)> {
        let mut report = StartupReport::default();
        if !settings.data_dir.exists() {
            std::fs::create_dir_all(&settings.data_dir)?;
            // The SQLite file holds names and the access log: owner only.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    &settings.data_dir,
                    std::fs::Permissions::from_mode(0o700),
                )?;
            }
        }
        let (mut master, created) = settings.master_key()?;
        report.created_master_key = created;
        let pool = store::connect(
            &settings.database_url,
            settings.db_pool_size,
            Duration::from_secs(settings.db_timeout_secs),
        )?;
        {
            let mut conn = pool.get().map_err(StoreError::from)?;
            store::migrate(&mut conn)?;
            let fresh = store::signing_keys::list(&mut conn)?.is_empty();
            let suite = super::suite::settle(&settings.data_dir, settings.crypto_suite, fresh)?;
            master = master.in_suite(suite);
            let first_alg = super::keys::default_alg(&master);
            report.created_signing_key =
                super::keys::ensure_active_key(&mut conn, &master, first_alg)?;
            if let Some(rekeyed) = store::access_log::upgrade_chain(&mut conn, &master.chain_key())?
            {
                tracing::warn!(
                    rows = rekeyed.rows,
                    old_chain = %rekeyed.old_chain,
                    "access log re-keyed from plain SHA-256 to HMAC-SHA-256"
                );
                report.rekeyed = Some(rekeyed);
            }
            report.admins = store::admins::count(&mut conn)?;
            report.clinics = store::clinics::list(&mut conn)?.len() as i64;
        }
        let keys = KeyStore::load(&pool, &master, &settings.issuer)?;
        let federation = super::federation::Federation::open(&settings, &pool, &master)?;
        let backend = store::Backend::from_url(&settings.database_url);
        let writers = match backend {
            store::Backend::Sqlite => 1,
            store::Backend::Postgres => settings.log_writers,
        };
        // One connection per appender, and one for the reader stage
        // (PostgreSQL) or the checkpoint thread (SQLite).
        let writer_pool = store::connect_writer(
            &settings.database_url,
            writers + 1,
            Duration::from_secs(settings.db_timeout_secs),
        )?;
        let audit = AuditWriter::start(
            writer_pool,
            master.clone(),
            settings.clock_skew_secs,
            writers as usize,
            backend == store::Backend::Postgres,
        );
        Ok((
            AppContext {
                gate: Arc::new(FairGate::new(settings.db_pool_size)),
                settings: Arc::new(settings),
                pool,
                master,
                keys,
                audit,
                counters: Default::default(),
                federation,
                clock: Clock::default(),
            },
            report,
        ))
    }

    /// A pooled connection, or `Unavailable` when the database does not
    /// answer in time. Callers get connections in the order they asked.
    pub fn conn(&self) -> Result<GatedConn, StoreError> {
        let timeout = Duration::from_secs(self.settings.db_timeout_secs);
        let pass = self.gate.enter(timeout)?;
        let conn = self.pool.get().map_err(StoreError::from)?;
        Ok(GatedConn { conn, _pass: pass })
    }

    /// Today by [`AppContext::clock`].
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock.today()
    }

    /// Runs `f` with a connection inside a database transaction.
    pub fn with_tx<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        use diesel::Connection;
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            crate::store::access_log::take_write_lock(c)?;
            f(c)
        })
    }
}

/// A connection from [`AppContext::conn`]; its place in the gate is given
/// back with it.
pub struct GatedConn {
    conn: PooledConn,
    _pass: GatePass,
}

impl std::ops::Deref for GatedConn {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for GatedConn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// First come, first served admission to the pool, `permits` at a time.
/// r2d2 wakes an arbitrary waiter when a connection comes back and lets a
/// newcomer take it first, so under contention some requests waited seconds
/// while later ones went ahead (docs/performance.md has the figures). Here
/// waiters queue and the front one goes first. It is entered from blocking
/// threads, where `tokio::sync::Semaphore` (also FIFO) would need a
/// `block_on` per connection; this is the synchronous equivalent.
struct FairGate {
    state: Mutex<Queue>,
    turn: Condvar,
}

struct Queue {
    free: u32,
    next_ticket: u64,
    waiting: std::collections::VecDeque<u64>,
}

/// A place admitted by the gate; dropping it lets the next waiter in.
struct GatePass(Arc<FairGate>);

impl FairGate {
    fn new(permits: u32) -> FairGate {
        FairGate {
            state: Mutex::new(Queue {
                free: permits.max(1),
                next_ticket: 0,
                waiting: Default::default(),
            }),
            turn: Condvar::new(),
        }
    }

    fn enter(self: &Arc<Self>, timeout: Duration) -> Result<GatePass, StoreError> {
        let deadline = Instant::now() + timeout;
        let mut q = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push_back(ticket);
        loop {
            if q.free > 0 && q.waiting.front() == Some(&ticket) {
                q.waiting.pop_front();
                q.free -= 1;
                // The next in line may find a place free too.
                self.turn.notify_all();
                return Ok(GatePass(self.clone()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                q.waiting.retain(|t| *t != ticket);
                self.turn.notify_all();
                return Err(StoreError::Unavailable(
                    "no database connection in time".into(),
                ));
            }
            q = self
                .turn
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        let mut q = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        q.free += 1;
        self.0.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until `n` tickets are queued at the gate.
    fn queued(gate: &FairGate, n: usize) {
        while gate.state.lock().unwrap().waiting.len() < n {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn gate_admits_waiters_in_arrival_order() {
        let gate = Arc::new(FairGate::new(1));
        let held = gate.enter(Duration::from_secs(5)).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..4 {
            let (g, o) = (gate.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let _pass = g.enter(Duration::from_secs(5)).unwrap();
                o.lock().unwrap().push(i);
                std::thread::sleep(Duration::from_millis(2));
            }));
            queued(&gate, i + 1);
        }
        drop(held);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    }

    #[test]
    fn a_waiter_that_gives_up_holds_no_one_back() {
        let gate = Arc::new(FairGate::new(1));
        let held = gate.enter(Duration::from_secs(5)).unwrap();
        let early = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.enter(Duration::from_millis(30)).map(|_| ()))
        };
        queued(&gate, 1);
        let late = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.enter(Duration::from_secs(5)).map(|_| ()))
        };
        queued(&gate, 2);
        assert!(matches!(
            early.join().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        drop(held);
        assert!(late.join().unwrap().is_ok());
        // The place is free again.
        let _again = gate.enter(Duration::from_millis(100)).unwrap();
    }
}
