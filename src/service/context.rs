use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::store::{self, DbConnection, DbPool, StoreError};

use super::audit::AuditWriter;
use super::keys::KeyStore;

/// A connection checked out of the pool.
pub type PooledConn = diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<DbConnection>>;

/// What a running node holds: settings, the database pool, the master key,
/// the signing keys and the access-log writer. Cheap to clone.
#[derive(Clone)]
pub struct AppContext {
    pub settings: Arc<Settings>,
    pub pool: DbPool,
    pub master: MasterKey,
    pub keys: KeyStore,
    pub audit: AuditWriter,
}

/// What happened on start-up, so `serve` can tell a newcomer what to do next.
#[derive(Debug, Default)]
pub struct StartupReport {
    pub created_master_key: bool,
    pub created_signing_key: bool,
    pub admins: i64,
    pub clinics: i64,
}

impl AppContext {
    /// Opens the database (migrating it), the master key and the signing keys,
    /// creating what a first start needs.
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
        let (master, created) = settings.master_key()?;
        report.created_master_key = created;
        let pool = store::connect(
            &settings.database_url,
            settings.db_pool_size,
            Duration::from_secs(settings.db_timeout_secs),
        )?;
        {
            let mut conn = pool.get().map_err(StoreError::from)?;
            store::migrate(&mut conn)?;
            report.created_signing_key = super::keys::ensure_active_key(&mut conn, &master)?;
            report.admins = store::admins::count(&mut conn)?;
            report.clinics = store::clinics::list(&mut conn)?.len() as i64;
        }
        let keys = KeyStore::load(&pool, &master, &settings.issuer)?;
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
                settings: Arc::new(settings),
                pool,
                master,
                keys,
                audit,
            },
            report,
        ))
    }

    /// A pooled connection, or `Unavailable` when the database does not answer in time.
    pub fn conn(&self) -> Result<PooledConn, StoreError> {
        self.pool.get().map_err(StoreError::from)
    }

    /// Runs `f` with a connection inside a database transaction.
    pub fn with_tx<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        use diesel::Connection;
        let mut conn = self.conn()?;
        conn.transaction(|c| f(c))
    }
}
