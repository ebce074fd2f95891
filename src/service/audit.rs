//! The access-log writer. Every verification must be in the log before its
//! answer leaves, but one transaction per verification would serialize the
//! whole service on the chain head. So entries queue here and one thread
//! appends them in batches (group commit): each waiter gets its answer when
//! the batch holding its entry has committed.

use tokio::sync::{mpsc, oneshot};

use crate::store::{access_log, DbPool, StoreError};

pub use crate::store::access_log::NewLogEntry as LogEntry;

/// Largest batch one transaction takes; bounds latency under a flood.
const MAX_BATCH: usize = 1024;
/// Entries waiting beyond this make callers wait (back-pressure, not memory growth).
const QUEUE: usize = 16 * 1024;

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<(LogEntry, Waiter)>,
}

impl AuditWriter {
    /// Starts the writer thread on `pool`.
    pub fn start(pool: DbPool) -> AuditWriter {
        let (tx, mut rx) = mpsc::channel::<(LogEntry, Waiter)>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(item) => batch.push(item),
                            Err(_) => break,
                        }
                    }
                    let (entries, waiters): (Vec<LogEntry>, Vec<Waiter>) =
                        batch.into_iter().unzip();
                    let result = pool
                        .get()
                        .map_err(StoreError::from)
                        .and_then(|mut conn| access_log::append(&mut conn, &entries).map(|_| ()));
                    if let Err(e) = &result {
                        tracing::error!(error = %e, rows = entries.len(), "access log append failed");
                    }
                    for w in waiters {
                        let _ = w.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(clone_err(e)),
                        });
                    }
                }
            })
            .expect("spawning a thread at start-up");
        AuditWriter { tx }
    }

    /// Appends `entry` and returns once it is committed.
    pub async fn record(&self, entry: LogEntry) -> Result<(), StoreError> {
        let (w, r) = oneshot::channel();
        self.tx
            .send((entry, w))
            .await
            .map_err(|_| StoreError::Unavailable("access log writer stopped".into()))?;
        r.await
            .map_err(|_| StoreError::Unavailable("access log writer stopped".into()))?
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Other(other.to_string()),
    }
}
