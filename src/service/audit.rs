//! The access-log writer. Every verification must be in the log before its
//! answer leaves, but one transaction per verification would serialize the
//! whole service on the chain head. So work queues here and is taken in
//! batches (group commit): each waiter gets its answer when the batch holding
//! its entry has committed.
//!
//! The same batch also settles verifications (see
//! [`super::verification`]): one read for all the batch's cards, then the
//! replay set for its dynamic tokens and the log append together (on
//! PostgreSQL one statement, see [`Head::spend_and_append_if_current`]). Two stages on
//! threads of their own: a reader takes a batch (on PostgreSQL it also reads
//! the batch's cards, on its own connection) while the appender commits the
//! batch before, so a batch's round trips overlap the previous one's commit
//! instead of adding to it, and the batch that waits for the appender keeps
//! filling.

use std::sync::{mpsc as sync_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::crypto::{ChainKey, MasterKey};
use crate::store::access_log::{self, Head};
use crate::store::federation as fed;
use crate::store::{self, Conflict, DbConnection, DbPool, PooledConn, StoreError};

use super::verification::{self, Judged, Outcome, Pending};

pub use crate::store::access_log::NewLogEntry as LogEntry;

/// Largest batch one transaction takes; bounds latency under a flood.
const MAX_BATCH: usize = 1024;
/// Jobs waiting beyond this make callers wait (back-pressure, not memory growth).
const QUEUE: usize = 16 * 1024;

/// How long a busy batch waits at most for more work before it commits.
const LINGER: Duration = Duration::from_micros(1000);
/// The batch stops waiting after a step in which no work arrived.
const LINGER_STEP: Duration = Duration::from_micros(100);

/// Waits for work and takes a batch of it; `None` once every sender is gone.
fn next_batch(rx: &mut mpsc::Receiver<Job>) -> Option<Vec<Job>> {
    let mut batch = vec![rx.blocking_recv()?];
    drain(rx, &mut batch);
    // Others were waiting too: the service is busy, so let the batch fill a
    // moment longer, in short steps while work keeps arriving. A commit's
    // cost hardly depends on its size, so this trades a little latency for
    // much less CPU per verification under load (the idea of PostgreSQL's
    // commit_delay/commit_siblings). It stops at the first quiet step: when
    // every client is already waiting on this batch, waiting longer only
    // leaves the cores idle.
    let deadline = Instant::now() + LINGER;
    while batch.len() > 1 && batch.len() < MAX_BATCH {
        let before = batch.len();
        std::thread::sleep(LINGER_STEP);
        drain(rx, &mut batch);
        if batch.len() == before || Instant::now() >= deadline {
            break;
        }
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
    /// An entry whose content is known; with a peer's request nonce, spent
    /// in the same transaction (the home node's refusal of a peer's token).
    Log(
        LogEntry,
        Option<Nonce>,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    /// A signed token whose outcome the database decides; its entry follows.
    Verify(Pending, oneshot::Sender<Result<Outcome, StoreError>>),
    /// A foreign card its home node judged valid, at the visiting node: the
    /// card recorded and the clinic's own number read in the transaction
    /// that logs the verification.
    Foreign(
        LogEntry,
        ForeignSeen,
        oneshot::Sender<Result<Option<String>, StoreError>>,
    ),
}

/// A node-to-node request's nonce (federation), spent in the transaction
/// that writes what the request did, so that a replayed request changes
/// nothing and a spent nonce always has its log row.
#[derive(Debug, Clone)]
pub struct Nonce {
    /// `<keyid>:<nonce>`, the key of `federation_nonces`.
    pub key: String,
    /// When the row may be purged: the request is stale by then.
    pub expires_at: chrono::NaiveDateTime,
}

/// A foreign card seen valid at this node (see [`AuditWriter::record_foreign`]).
#[derive(Debug, Clone)]
pub struct ForeignSeen {
    pub card: crate::domain::CardId,
    pub issuer: String,
    /// The home node's resident id.
    pub resident_id: String,
    /// The asking clinic, whose number for the resident is read.
    pub clinic: crate::domain::ClinicId,
}

/// Handle to the writer threads. Cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Job>,
    /// The checkpoint thread stops once every handle is gone.
    _alive: Arc<()>,
}

/// How often the SQLite write-ahead log is copied to the database file: often
/// enough that it stays a few hundred pages, so each copy is short.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// What the threads need besides the jobs.
struct Writer {
    pool: DbPool,
    master: MasterKey,
    /// The access log's chain key, derived once.
    chain: ChainKey,
    clock_skew_secs: i64,
}

/// A batch on its way to the appender, with its cards read if the reader
/// reads ahead.
type Judging = (Vec<Job>, Option<Vec<Result<Judged, StoreError>>>);

impl AuditWriter {
    /// Starts the reader thread and `appenders` appender threads on `pool`
    /// (which should hold `appenders + 1` connections). `master` opens the
    /// residents that verifications resolve; `clock_skew_secs` is the
    /// verification leeway.
    ///
    /// One appender is best on one node: it keeps the chain head it wrote
    /// last, so its append needs no lock round trip. More appenders take
    /// turns on the head's row lock (each append then costs a lock, a
    /// transaction and a head that the others moved).
    ///
    /// `read_ahead`: the reader reads the cards on its own connection (for
    /// PostgreSQL, where the read is round trips). Without it the appender
    /// reads them on its connection, as SQLite wants: a SQLite connection
    /// drops its whole page cache whenever another connection has written,
    /// so a separate reader would re-read every page it needs each batch.
    /// Without it a thread also checkpoints SQLite's write-ahead log every
    /// [`CHECKPOINT_EVERY`] on its own connection (the pool should hold one
    /// more): the writer's connections do not (see `store::connect_writer`).
    pub fn start(
        pool: DbPool,
        master: MasterKey,
        clock_skew_secs: i64,
        appenders: usize,
        read_ahead: bool,
    ) -> AuditWriter {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        // Rendezvous: the reader hands a batch over only when an appender
        // is free, and meanwhile the next batch keeps filling in the queue.
        let (hand, take) = sync_mpsc::sync_channel::<Judging>(0);
        let take = Arc::new(Mutex::new(take));
        let writer = Arc::new(Writer {
            pool,
            chain: master.chain_key(),
            master,
            clock_skew_secs,
        });
        let reader = writer.clone();
        std::thread::Builder::new()
            .name("access-log-read".into())
            .spawn(move || {
                let mut conn = None;
                while let Some(batch) = next_batch(&mut rx) {
                    if !read_ahead {
                        if hand.send((batch, None)).is_err() {
                            break;
                        }
                        continue;
                    }
                    match reader.judge(&mut conn, &batch) {
                        Ok(judged) => {
                            let judged = Some(judged);
                            if hand.send((batch, judged)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            // Tested again at the next check-out.
                            conn = None;
                            fail(batch, &e);
                        }
                    }
                }
            })
            .expect("spawning a thread at start-up");
        let alive = Arc::new(());
        if !read_ahead {
            let (pool, alive) = (writer.pool.clone(), Arc::downgrade(&alive));
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || {
                    let mut conn: Option<PooledConn> = None;
                    while alive.upgrade().is_some() {
                        std::thread::sleep(CHECKPOINT_EVERY);
                        let done = match &mut conn {
                            Some(c) => store::checkpoint(c),
                            None => pool
                                .get()
                                .map_err(StoreError::from)
                                .and_then(|c| store::checkpoint(conn.insert(c))),
                        };
                        if let Err(e) = done {
                            tracing::warn!(error = %e, "checkpoint failed");
                            conn = None;
                        }
                    }
                })
                .expect("spawning a thread at start-up");
        }
        for i in 0..appenders.max(1) {
            let (take, writer) = (take.clone(), writer.clone());
            std::thread::Builder::new()
                .name(format!("access-log-{i}"))
                .spawn(move || {
                    let mut kept = Kept::default();
                    loop {
                        let next = take
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .recv();
                        let Ok((batch, judged)) = next else { break };
                        writer.run(&mut kept, batch, judged);
                    }
                })
                .expect("spawning a thread at start-up");
        }
        AuditWriter { tx, _alive: alive }
    }

    /// Appends `entry` and returns once it is committed.
    pub async fn record(&self, entry: LogEntry) -> Result<(), StoreError> {
        self.record_with(entry, None).await
    }

    /// [`Self::record`], spending a peer's request `nonce` in the same
    /// transaction: `Conflict::RequestReplayed` (and nothing written) if it
    /// was spent before.
    pub async fn record_with(
        &self,
        entry: LogEntry,
        nonce: Option<Nonce>,
    ) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.send(Job::Log(entry, nonce, done)).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Records a foreign card its home node judged valid (`foreign_cards`)
    /// and logs `entry`, in one transaction; returns the clinic's own number
    /// for the resident, if it linked one.
    pub async fn record_foreign(
        &self,
        entry: LogEntry,
        seen: ForeignSeen,
    ) -> Result<Option<String>, StoreError> {
        let (done, answer) = oneshot::channel();
        self.send(Job::Foreign(entry, seen, done)).await?;
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

/// What an appender keeps between batches: its connection (checked out
/// once, so no check-out test per batch; dropped after an error, so the next
/// check-out tests it) and the chain head its last append left, so the next
/// append needs no separate lock round trip while no other writer came
/// between.
#[derive(Default)]
struct Kept {
    conn: Option<PooledConn>,
    head: Option<Head>,
}

impl Writer {
    /// The read stage: the cards of the batch's verifications, judged.
    fn judge(
        &self,
        conn: &mut Option<PooledConn>,
        batch: &[Job],
    ) -> Result<Vec<Result<Judged, StoreError>>, StoreError> {
        let pending: Vec<&Pending> = batch
            .iter()
            .filter_map(|job| match job {
                Job::Verify(p, _) => Some(p),
                Job::Log(..) | Job::Foreign(..) => None,
            })
            .collect();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let conn: &mut DbConnection = match conn {
            Some(conn) => conn,
            None => conn.insert(self.pool.get()?),
        };
        verification::judge(conn, &self.master, &pending)
    }

    /// The append stage: commit a batch (judging it first if the reader did
    /// not), then answer every waiter. A job whose request nonce was spent
    /// before is answered `RequestReplayed` and the rest committed again
    /// without it (the refused attempt rolled back).
    fn run(
        &self,
        kept: &mut Kept,
        mut batch: Vec<Job>,
        judged: Option<Vec<Result<Judged, StoreError>>>,
    ) {
        let mut judged = match judged {
            Some(judged) => Ok(judged),
            None => self.judge(&mut kept.conn, &batch),
        };
        let result = loop {
            let j = match judged {
                Ok(j) => j,
                Err(e) => break Err(e),
            };
            match self.commit(kept, &batch, j) {
                Ok(Commit::Done(outcomes, links)) => break Ok((outcomes, links)),
                Ok(Commit::Replayed(replayed, mut j)) => {
                    // The attempt rolled back; its head is not the stored one's successor.
                    kept.head = None;
                    // Every replayed job dropped at once (last first, so the
                    // indices before stay put): one rollback per batch.
                    for &i in replayed.iter().rev() {
                        let verifies_before = batch[..i]
                            .iter()
                            .filter(|job| matches!(job, Job::Verify(..)))
                            .count();
                        let job = batch.remove(i);
                        if matches!(job, Job::Verify(..)) {
                            drop(j.remove(verifies_before));
                        }
                        answer_replayed(job);
                    }
                    judged = Ok(j);
                }
                Err(e) => break Err(e),
            }
        };
        if result.is_err() {
            *kept = Kept::default();
        }
        match result {
            Ok((outcomes, links)) => {
                let mut outcomes = outcomes.into_iter();
                let mut links = links.into_iter();
                for job in batch {
                    match job {
                        Job::Log(_, _, done) => {
                            let _ = done.send(Ok(()));
                        }
                        Job::Verify(_, done) => {
                            let outcome = outcomes.next().unwrap_or_else(|| {
                                Err(StoreError::Other("verification outcome missing".into()))
                            });
                            let _ = done.send(outcome);
                        }
                        Job::Foreign(_, _, done) => {
                            let _ = done.send(links.next().ok_or_else(|| {
                                StoreError::Other("foreign card link missing".into())
                            }));
                        }
                    }
                }
            }
            Err(e) => fail(batch, &e),
        }
    }

    /// Spends the batch's request nonces and dynamic tokens, records its
    /// foreign cards and appends every entry in arrival order after the
    /// chain head, atomically ([`access_log::commit_batch`]). Returns the
    /// verifications' outcomes and the foreign cards' links in arrival
    /// order, or every job whose nonce was spent before (nothing written:
    /// all the batch's nonces are tried in one pass, then one rollback).
    fn commit(
        &self,
        kept: &mut Kept,
        batch: &[Job],
        judged: Vec<Result<Judged, StoreError>>,
    ) -> Result<Commit, StoreError> {
        let conn: &mut DbConnection = match &mut kept.conn {
            Some(conn) => conn,
            None => kept.conn.insert(self.pool.get()?),
        };
        let spends = verification::spends(&judged, self.clock_skew_secs);
        let has_side = batch.iter().any(|job| {
            matches!(
                job,
                Job::Log(_, Some(_), _)
                    | Job::Foreign(..)
                    | Job::Verify(Pending { nonce: Some(_), .. }, _)
            )
        });
        let mut links = Vec::new();
        let mut replayed: Vec<usize> = Vec::new();
        let mut side = |c: &mut DbConnection| -> Result<(), StoreError> {
            links.clear();
            replayed.clear();
            for (i, job) in batch.iter().enumerate() {
                let nonce = match job {
                    Job::Log(_, nonce, _) => nonce.as_ref(),
                    Job::Verify(p, _) => p.nonce.as_ref(),
                    Job::Foreign(_, seen, _) => {
                        fed::saw_foreign_card(c, seen.card, &seen.issuer, &seen.resident_id)?;
                        links.push(fed::foreign_link(
                            c,
                            seen.clinic,
                            &seen.issuer,
                            &seen.resident_id,
                        )?);
                        None
                    }
                };
                if let Some(n) = nonce {
                    // A spent nonce is a row not inserted (no error), so
                    // the pass goes on and finds every replay of the batch.
                    if !fed::spend_nonce(c, &n.key, n.expires_at)? {
                        replayed.push(i);
                    }
                }
            }
            if replayed.is_empty() {
                Ok(())
            } else {
                Err(StoreError::Conflict(Conflict::RequestReplayed))
            }
        };
        let done = access_log::commit_batch(
            conn,
            &self.chain,
            kept.head.take(),
            &spends,
            has_side.then_some(&mut side as &mut access_log::SideWork),
            |first_use| entries(batch, &judged, first_use),
        );
        let done = match done {
            Err(StoreError::Conflict(Conflict::RequestReplayed)) if !replayed.is_empty() => {
                return Ok(Commit::Replayed(replayed, judged))
            }
            done => done?,
        };
        kept.head = Some(done.head);
        Ok(Commit::Done(
            verification::settle_as(judged, done.first_use),
            links,
        ))
    }
}

/// What one commit attempt did.
enum Commit {
    /// Committed: the verifications' outcomes and the foreign cards' links.
    Done(Vec<Result<Outcome, StoreError>>, Vec<Option<String>>),
    /// Rolled back: these jobs' request nonces (ascending indices) were
    /// spent before; the judged cards are handed back for the next attempt.
    Replayed(Vec<usize>, Vec<Result<Judged, StoreError>>),
}

fn answer_replayed(job: Job) {
    let replayed = || StoreError::Conflict(Conflict::RequestReplayed);
    match job {
        Job::Log(_, _, done) => drop(done.send(Err(replayed()))),
        Job::Verify(_, done) => drop(done.send(Err(replayed()))),
        Job::Foreign(_, _, done) => drop(done.send(Err(replayed()))),
    }
}

/// The batch's log entries in arrival order, for the replay set's answers
/// `first_use` (one per token of [`verification::spends`], in order). A
/// verification that failed on its own row has no outcome to log; its
/// caller gets the error.
fn entries(
    batch: &[Job],
    judged: &[Result<Judged, StoreError>],
    first_use: &[bool],
) -> Vec<LogEntry> {
    let mut judged = judged.iter();
    let mut first_use = first_use.iter().copied();
    let mut entries = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Log(entry, ..) | Job::Foreign(entry, ..) => entries.push(entry.clone()),
            Job::Verify(p, _) => {
                if let Some(Ok(j)) = judged.next() {
                    let first = match j {
                        Judged::NeedsReplayCheck { .. } => first_use.next().unwrap_or(false),
                        Judged::Decided(_) => false,
                    };
                    entries.push(verification::judged_log_entry(&p.clinic, j, first, p.used));
                }
            }
        }
    }
    entries
}

/// Answers every waiter of a batch that failed.
fn fail(batch: Vec<Job>, e: &StoreError) {
    tracing::error!(error = %e, jobs = batch.len(), "access log batch failed");
    for job in batch {
        // A waiter that gave up (client gone) needs no answer.
        match job {
            Job::Log(_, _, done) => drop(done.send(Err(clone_err(e)))),
            Job::Verify(_, done) => drop(done.send(Err(clone_err(e)))),
            Job::Foreign(_, _, done) => drop(done.send(Err(clone_err(e)))),
        }
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Other(other.to_string()),
    }
}
