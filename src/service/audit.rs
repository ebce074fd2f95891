//! The access-log writer. Every verification must be in the log before its
//! answer leaves, but one transaction per verification would serialize the
//! whole service on the chain head. So work queues here and writer threads
//! (one on SQLite) take it in batches (group commit): each waiter gets its
//! answer when the batch holding its entry has committed.
//!
//! The same batch also settles verifications (see
//! [`super::verification`]): one read for all the batch's cards, one replay
//! insert for its dynamic tokens, one log append, one commit. A verification
//! thus costs one thread hop and a share of a few statements, where doing
//! each on its own cost three hops and five round trips.

use std::sync::{Arc, Mutex};

use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::crypto::MasterKey;
use crate::store::{access_log, DbPool, StoreError};

use super::verification::{self, Outcome, Pending};

pub use crate::store::access_log::NewLogEntry as LogEntry;

/// Largest batch one transaction takes; bounds latency under a flood.
const MAX_BATCH: usize = 1024;
/// Jobs waiting beyond this make callers wait (back-pressure, not memory growth).
const QUEUE: usize = 16 * 1024;

/// How long a busy batch waits for more work before it commits.
const LINGER: std::time::Duration = std::time::Duration::from_micros(1000);

/// Waits for work and takes a batch of it; `None` once every sender is gone.
/// The receiver stays locked while the batch fills, so the threads take
/// turns and each batch is as large as the moment allows.
fn next_batch(rx: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut batch = vec![rx.blocking_recv()?];
    drain(&mut rx, &mut batch);
    // Others were waiting too: the service is busy, so let the batch fill a
    // moment longer. A commit's cost hardly depends on its size, so this
    // trades a little latency for much less CPU per verification under load
    // (the idea of PostgreSQL's commit_delay/commit_siblings).
    if batch.len() > 1 && batch.len() < MAX_BATCH {
        std::thread::sleep(LINGER);
        drain(&mut rx, &mut batch);
    }
    Some(batch)
}

fn drain(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

enum Job {
    /// An entry whose content is known.
    Log(LogEntry, oneshot::Sender<Result<(), StoreError>>),
    /// A signed token whose outcome the database decides; its entry follows.
    Verify(Pending, oneshot::Sender<Result<Outcome, StoreError>>),
}

/// Handle to the writer threads. Cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Job>,
}

/// What the threads need besides the jobs.
struct Writer {
    pool: DbPool,
    master: MasterKey,
    clock_skew_secs: i64,
}

impl AuditWriter {
    /// Starts `threads` writer threads on `pool` (which should hold as many
    /// connections). `master` opens the residents that verifications
    /// resolve; `clock_skew_secs` is the verification leeway.
    ///
    /// One thread suits SQLite (one writer at a time anyway, and a second
    /// would wait in SQLite's busy handler). On PostgreSQL a batch spends
    /// most of its time waiting for round trips, so several threads overlap
    /// one batch's reads with another's commit; the chain head's row lock
    /// still orders their appends.
    pub fn start(
        pool: DbPool,
        master: MasterKey,
        clock_skew_secs: i64,
        threads: usize,
    ) -> AuditWriter {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let writer = Arc::new(Writer {
            pool,
            master,
            clock_skew_secs,
        });
        for i in 0..threads.max(1) {
            let (rx, writer) = (rx.clone(), writer.clone());
            std::thread::Builder::new()
                .name(format!("access-log-{i}"))
                .spawn(move || {
                    while let Some(batch) = next_batch(&rx) {
                        writer.run(batch);
                    }
                })
                .expect("spawning a thread at start-up");
        }
        AuditWriter { tx }
    }

    /// Appends `entry` and returns once it is committed.
    pub async fn record(&self, entry: LogEntry) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.send(Job::Log(entry, done)).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Settles a correctly signed token (card state, replay) and logs the
    /// outcome; returns once both are committed.
    pub async fn verify(&self, pending: Pending) -> Result<Outcome, StoreError> {
        let (done, answer) = oneshot::channel();
        self.send(Job::Verify(pending, done)).await?;
        answer.await.map_err(|_| stopped())?
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.send(job).await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("access log writer stopped".into())
}

impl Writer {
    /// One batch: commit it, then answer every waiter.
    fn run(&self, batch: Vec<Job>) {
        match self.commit(&batch) {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for job in batch {
                    match job {
                        Job::Log(_, done) => {
                            let _ = done.send(Ok(()));
                        }
                        Job::Verify(_, done) => {
                            let outcome = outcomes.next().unwrap_or_else(|| {
                                Err(StoreError::Other("verification outcome missing".into()))
                            });
                            let _ = done.send(outcome);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "access log batch failed");
                for job in batch {
                    // A waiter that gave up (client gone) needs no answer.
                    match job {
                        Job::Log(_, done) => drop(done.send(Err(clone_err(&e)))),
                        Job::Verify(_, done) => drop(done.send(Err(clone_err(&e)))),
                    }
                }
            }
        }
    }

    /// Reads the batch's cards, then in one transaction: lock the chain head,
    /// spend the dynamic tokens, append every entry in arrival order. Returns
    /// the verifications' outcomes in arrival order.
    fn commit(&self, batch: &[Job]) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let pending: Vec<&Pending> = batch
            .iter()
            .filter_map(|job| match job {
                Job::Verify(p, _) => Some(p),
                Job::Log(..) => None,
            })
            .collect();
        let mut conn = self.pool.get()?;
        // The read runs before the transaction: no lock is held while it does.
        let judged = verification::judge(&mut conn, &self.master, &pending)?;
        conn.transaction(|c| {
            let head = access_log::lock_head(c)?;
            let outcomes = verification::settle(c, self.clock_skew_secs, judged)?;
            let mut settled = outcomes.iter();
            let mut entries = Vec::with_capacity(batch.len());
            for job in batch {
                match job {
                    Job::Log(entry, _) => entries.push(entry.clone()),
                    Job::Verify(p, _) => {
                        // A verification that failed on its own row has no
                        // outcome to log; its caller gets the error.
                        if let Some(Ok(outcome)) = settled.next() {
                            entries.push(verification::log_entry(&p.clinic, outcome, p.channel));
                        }
                    }
                }
            }
            head.append(c, &entries)?;
            Ok(outcomes)
        })
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Other(other.to_string()),
    }
}
