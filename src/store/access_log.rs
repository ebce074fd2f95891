//! The access log: append-only and hash-chained. Each row's hash is
//! HMAC-SHA-256(prev_hash || canonical encoding of the row) under the chain
//! key ([`ChainKey`], derived from the master key), and a one-row head holds
//! the last seq and hash, so an edited row, a deleted row and a cut-off tail
//! are all detected by [`verify_chain`], even by someone who can write the
//! database but has not the master key (they cannot recompute the chain). An
//! anchor kept elsewhere ([`verify_chain_to`]) covers the rest. Triggers
//! refuse UPDATE and DELETE of rows once the chain is keyed; a chain of the
//! old plain SHA-256 format is re-keyed once by [`upgrade_chain`].
//!
//! Appends are serialized by updating the head row first: on PostgreSQL the
//! UPDATE row-locks it until commit (across nodes); on SQLite a transaction
//! that starts with a write takes the write lock at once, avoiding the
//! read-then-upgrade deadlock. A batch of N rows costs one head lock and one
//! multi-row INSERT, which is what lets the HTTP layer group-commit.

use chrono::{NaiveDateTime, SubsecRound};
use diesel::prelude::*;

use super::schema::{access_log, access_log_head};
use super::{card_use, corrupt, parse_id, Conflict, DbConnection, StoreError};
use crate::crypto::{sha256, ChainKey};
use crate::domain::{CardId, Channel, ClinicId, Credential, NationalId, ResidentId, Step};

/// Rows per INSERT statement: 15 bound values each, well under SQLite's and
/// PostgreSQL's limits on parameters per statement.
const INSERT_CHUNK: usize = 1000;
/// Rows read per query while verifying the chain.
const VERIFY_PAGE: i64 = 1000;
/// Longest `detail` kept; longer text is cut.
const DETAIL_MAX_CHARS: usize = 256;
const GENESIS: [u8; 32] = [0; 32];
/// `access_log_head.chain_version` of a keyed chain; 1 is the old plain
/// SHA-256 chain, which [`upgrade_chain`] re-keys.
const KEYED_CHAIN: i32 = 2;

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    Admin,
    Clinic,
    Holder,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Admin => "admin",
            ActorKind::Clinic => "clinic",
            ActorKind::Holder => "holder",
            ActorKind::System => "system",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            ActorKind::Admin,
            ActorKind::Clinic,
            ActorKind::Holder,
            ActorKind::System,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A row to append. `actor` is an id or a username, never a secret; `detail`
/// is short free text that must not hold ID numbers, names, credentials or
/// keys (text that looks like an ID number or a secret is replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogEntry {
    pub at: NaiveDateTime,
    pub actor_kind: ActorKind,
    pub actor: String,
    /// e.g. `verify`, `card.issue`, `card.revoke`, `link.create`, `clinic.create`, `key.rotate`, `import`.
    pub action: String,
    pub card_id: Option<CardId>,
    pub resident_id: Option<ResidentId>,
    pub clinic_id: Option<ClinicId>,
    pub channel: Option<Channel>,
    /// The step of care of a card use (verification, identification).
    pub step: Option<Step>,
    /// What a resolution was asked with (`verify`: a token; `identify`: a
    /// document); `None` on every other entry.
    pub credential: Option<Credential>,
    /// e.g. `valid` or a reason code.
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

impl NewLogEntry {
    /// An entry stamped now, with every optional field empty.
    pub fn new(actor_kind: ActorKind, actor: impl Into<String>, action: impl Into<String>) -> Self {
        NewLogEntry {
            at: super::now(),
            actor_kind,
            actor: actor.into(),
            action: action.into(),
            card_id: None,
            resident_id: None,
            clinic_id: None,
            channel: None,
            step: None,
            credential: None,
            outcome: None,
            detail: None,
        }
    }
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub action: String,
    pub card_id: Option<CardId>,
    pub resident_id: Option<ResidentId>,
    pub clinic_id: Option<ClinicId>,
    pub channel: Option<Channel>,
    pub step: Option<Step>,
    /// As written; NULL on the resolutions of nodes before the column (all
    /// by token): [`LogEntry::credential_shown`] says so.
    pub credential: Option<Credential>,
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

impl LogEntry {
    /// The credential of a resolution entry (`verify`, `identify`), also for
    /// rows written before the column existed (a `verify` was always by
    /// token); `None` for entries that are not resolutions.
    pub fn credential_shown(&self) -> Option<Credential> {
        self.credential.or(match self.action.as_str() {
            "verify" => Some(Credential::Token),
            "identify" => Some(Credential::Document),
            _ => None,
        })
    }
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub rows_checked: u64,
    /// The first row where the chain breaks, and why; `None` if it is whole.
    /// A cut-off tail is reported at the head's seq.
    pub first_bad: Option<(i64, String)>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_log, treat_none_as_default_value = false)]
struct Row {
    seq: i64,
    at: NaiveDateTime,
    actor_kind: String,
    actor: String,
    action: String,
    card_id: Option<String>,
    resident_id: Option<String>,
    clinic_id: Option<String>,
    channel: Option<String>,
    outcome: Option<String>,
    detail: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    step: Option<String>,
    credential: Option<String>,
}

impl Row {
    /// The chained MAC of this row's content after `prev_hash`: one MAC per
    /// row, over the same canonical encoding as before, with its own label.
    fn compute_hash(&self, key: &ChainKey) -> [u8; 32] {
        key.mac(&self.prev_hash, &self.encode(b"healthcard access log v2"))
    }

    /// The old (chain version 1) plain SHA-256 hash, only to check a chain
    /// before [`upgrade_chain`] re-keys it.
    fn compute_plain_hash(&self) -> [u8; 32] {
        let mut buf = b"healthcard access log v1".to_vec();
        buf.extend_from_slice(&self.prev_hash);
        buf.extend_from_slice(&self.encode(b""));
        sha256(&buf)
    }

    /// `label`, seq, then every field length-prefixed with optional fields
    /// carrying a presence byte, so no two different rows encode the same.
    fn encode(&self, label: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(label);
        buf.extend_from_slice(&self.seq.to_be_bytes());
        let mut field = |v: Option<&str>| match v {
            None => buf.push(0),
            Some(s) => {
                buf.push(1);
                buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
                buf.extend_from_slice(s.as_bytes());
            }
        };
        field(Some(&self.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()));
        field(Some(&self.actor_kind));
        field(Some(&self.actor));
        field(Some(&self.action));
        field(self.card_id.as_deref());
        field(self.resident_id.as_deref());
        field(self.clinic_id.as_deref());
        field(self.channel.as_deref());
        field(self.outcome.as_deref());
        field(self.detail.as_deref());
        // Added later: hashed only when present, so rows written before the
        // column existed keep their hashes (the encoding stays unambiguous:
        // every field before it is length-prefixed).
        // The credential, added later still, the same way: when it is
        // present the step's presence byte goes first (absent or not), so a
        // row with a credential never encodes like one with only a step.
        match (self.step.as_deref(), self.credential.as_deref()) {
            (step, Some(credential)) => {
                field(step);
                field(Some(credential));
            }
            (Some(step), None) => field(Some(step)),
            (None, None) => {}
        }
        buf
    }

    /// The daily card-use counts these rows add (see [`card_use`]).
    fn card_use(rows: &[Row]) -> card_use::Increments {
        card_use::Increments::of(rows.iter().filter_map(|r| {
            card_use::Key::of(
                r.at,
                &r.action,
                r.clinic_id.as_deref(),
                r.channel.as_deref(),
                r.step.as_deref(),
                r.outcome.as_deref(),
            )
        }))
    }

    fn into_entry(self) -> Result<LogEntry, StoreError> {
        Ok(LogEntry {
            seq: self.seq,
            at: self.at,
            actor_kind: ActorKind::parse(&self.actor_kind)
                .ok_or(())
                .map_err(corrupt("actor kind"))?,
            actor: self.actor,
            action: self.action,
            card_id: self.card_id.as_deref().map(parse_id).transpose()?,
            resident_id: self.resident_id.as_deref().map(parse_id).transpose()?,
            clinic_id: self.clinic_id.as_deref().map(parse_id).transpose()?,
            channel: self
                .channel
                .as_deref()
                .map(|c| c.parse().map_err(corrupt("channel")))
                .transpose()?,
            step: self
                .step
                .as_deref()
                .map(|c| c.parse().map_err(corrupt("step")))
                .transpose()?,
            credential: self
                .credential
                .as_deref()
                .map(|c| c.parse().map_err(corrupt("credential")))
                .transpose()?,
            outcome: self.outcome,
            detail: self.detail,
        })
    }
}

/// Keeps `detail` short and free of anything that looks like an ID number or
/// one of our secrets: the log is read by many and kept for years.
fn scrub_detail(detail: &str) -> String {
    let looks_secret = ["hck_", "hch_", "hcs_"].iter().any(|p| detail.contains(p));
    let looks_like_id = detail
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w.len() == 18 && NationalId::parse(w).is_ok());
    if looks_secret || looks_like_id {
        return "[redacted]".to_owned();
    }
    detail.chars().take(DETAIL_MAX_CHARS).collect()
}

/// Appends a batch in order, in one transaction, and returns the seqs given.
pub fn append(
    conn: &mut DbConnection,
    key: &ChainKey,
    entries: &[NewLogEntry],
) -> Result<Vec<i64>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        let head = lock_head(conn, key)?;
        let first = head.seq + 1;
        let last = head.append(conn, entries)?.seq;
        Ok((first..=last).collect())
    })
}

/// The chain head: the last seq and its hash. Returned by [`lock_head`] (and
/// then locked until the caller's transaction ends) or by an append (the head
/// after it, which a writer may keep for [`Head::append_if_current`]).
/// It carries the chain key its rows are chained with.
#[derive(Debug, Clone)]
pub struct Head {
    seq: i64,
    hash: Vec<u8>,
    key: ChainKey,
}

impl PartialEq for Head {
    fn eq(&self, other: &Head) -> bool {
        self.seq == other.seq && self.hash == other.hash
    }
}

/// What [`commit_batch`] did: for each token, in order, whether this was its
/// first use; the chain head after the batch, for the writer to keep.
#[derive(Debug)]
pub struct Committed {
    pub first_use: Vec<bool>,
    pub head: Head,
    /// PostgreSQL's one-statement path wrote it (no transaction).
    pub one_statement: bool,
}

/// Writes a batch needs beside the replay set and the log rows (the
/// federation's request nonces and foreign cards), run inside the batch's
/// transaction (on PostgreSQL right after the head's lock, on SQLite after
/// the log rows, once the transaction holds the write lock); an `Err`
/// rolls the whole batch back.
pub type SideWork<'a> = dyn FnMut(&mut DbConnection) -> Result<(), StoreError> + 'a;

/// The access-log writer's commit of one batch, atomically: `side` (if
/// any), spends the dynamic
/// `tokens` through the replay set and appends the log entries that
/// `entries(first_use)` gives for the answers, after the chain head. `kept`
/// is the head the writer's last commit returned, if it kept one: while no
/// other writer came between, the append needs no lock round trip. Tokens
/// are spent only under the head (what the one-statement path's check relies
/// on, see [`Head::spend_and_append_if_current`]).
pub fn commit_batch(
    conn: &mut DbConnection,
    chain: &ChainKey,
    kept: Option<Head>,
    tokens: &[([u8; 16], NaiveDateTime)],
    side: Option<&mut SideWork<'_>>,
    entries: impl Fn(&[bool]) -> Vec<NewLogEntry>,
) -> Result<Committed, StoreError> {
    match conn {
        DbConnection::Postgresql(_) => commit_batch_pg(conn, chain, kept, tokens, side, entries),
        DbConnection::Sqlite(_) => commit_batch_sqlite(conn, chain, kept, tokens, side, entries),
    }
}

/// PostgreSQL: with a kept head, first the one statement that assumes every
/// token is a first use; if it wrote nothing (the head moved, a token was
/// spent, or the replay key's backstop rolled it back), a transaction that
/// locks the head first, so no two writers wait for each other in opposite
/// orders. A batch with `side` work always takes the transaction.
fn commit_batch_pg(
    conn: &mut DbConnection,
    chain: &ChainKey,
    kept: Option<Head>,
    tokens: &[([u8; 16], NaiveDateTime)],
    mut side: Option<&mut SideWork<'_>>,
    entries: impl Fn(&[bool]) -> Vec<NewLogEntry>,
) -> Result<Committed, StoreError> {
    let distinct = {
        let mut ids: Vec<_> = tokens.iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids.windows(2).all(|w| w[0] != w[1])
    };
    if let (Some(known), true, None, DbConnection::Postgresql(pg)) =
        (&kept, distinct, &side, &mut *conn)
    {
        let first_use = vec![true; tokens.len()];
        match known.spend_and_append_if_current(pg, &entries(&first_use), tokens) {
            Ok(Some(head)) => {
                return Ok(Committed {
                    first_use,
                    head,
                    one_statement: true,
                })
            }
            Ok(None) | Err(StoreError::Conflict(Conflict::Unique)) => {}
            Err(e) => return Err(e),
        }
    }
    conn.transaction(|c| {
        let locked = lock_head(c, chain)?;
        if let Some(side) = side.as_mut() {
            side(c)?;
        }
        let first_use = super::replay::accept_many(c, tokens)?;
        let head = locked.append(c, &entries(&first_use))?;
        Ok(Committed {
            first_use,
            head,
            one_statement: false,
        })
    })
}

/// SQLite: one transaction, which holds the database's only write lock; a
/// kept head saves the head's lock statement.
fn commit_batch_sqlite(
    conn: &mut DbConnection,
    chain: &ChainKey,
    kept: Option<Head>,
    tokens: &[([u8; 16], NaiveDateTime)],
    mut side: Option<&mut SideWork<'_>>,
    entries: impl Fn(&[bool]) -> Vec<NewLogEntry>,
) -> Result<Committed, StoreError> {
    conn.transaction(|c| {
        let first_use = super::replay::accept_many(c, tokens)?;
        let entries = entries(&first_use);
        let head = match kept.map(|k| k.append_if_current(c, &entries)).transpose()? {
            Some(Some(head)) => head,
            _ => lock_head(c, chain)?.append(c, &entries)?,
        };
        // After the first write, not before: a deferred SQLite transaction
        // that reads first and then writes fails at once ("database is
        // locked", no busy wait) when another connection wrote in between.
        if let Some(side) = side.as_mut() {
            side(c)?;
        }
        Ok(Committed {
            first_use,
            head,
            one_statement: false,
        })
    })
}

/// On SQLite, takes the database's write lock now, as the first statement of
/// a transaction that reads and then writes: a deferred transaction that has
/// read cannot wait for the lock later (SQLite answers "database is locked"
/// at once when another connection committed since the read), while a first
/// write waits its busy timeout like any writer. PostgreSQL needs nothing.
pub fn take_write_lock(conn: &mut DbConnection) -> Result<(), StoreError> {
    if let DbConnection::Sqlite(_) = conn {
        diesel::update(access_log_head::table.find(1))
            .set(access_log_head::seq.eq(access_log_head::seq))
            .execute(conn)?;
    }
    Ok(())
}

/// Locks the chain head for the rest of the caller's transaction. Call it
/// first in the transaction (see the module comment): other writes of the
/// same transaction then run under the lock, and [`Head::append`] adds the
/// entries once their content is known.
pub fn lock_head(conn: &mut DbConnection, key: &ChainKey) -> Result<Head, StoreError> {
    // The lock: a no-op write to the head.
    let (seq, hash): (i64, Vec<u8>) = diesel::update(access_log_head::table.find(1))
        .set(access_log_head::seq.eq(access_log_head::seq))
        .returning((access_log_head::seq, access_log_head::hash))
        .get_result(conn)?;
    Ok(Head {
        seq,
        hash,
        key: key.clone(),
    })
}

impl Head {
    /// The last seq in the chain.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// Appends `entries` in order after this head, inside the transaction
    /// that locked it with [`lock_head`], and returns the new head.
    pub fn append(
        self,
        conn: &mut DbConnection,
        entries: &[NewLogEntry],
    ) -> Result<Head, StoreError> {
        self.append_if_current(conn, entries)?
            .ok_or_else(|| StoreError::Other("access log head moved while locked".into()))
    }

    /// Appends `entries` after this head only if the stored head is still
    /// this one, and returns the new head; `None` (nothing written) if
    /// another writer appended since. The head row is compared and updated
    /// in the statement that writes, so a writer that kept the head of its
    /// last append needs no separate lock round trip: on PostgreSQL the
    /// compare, the head update and the rows are one statement (atomic even
    /// outside a transaction); on SQLite they are two, so call it inside a
    /// transaction there.
    pub fn append_if_current(
        &self,
        conn: &mut DbConnection,
        entries: &[NewLogEntry],
    ) -> Result<Option<Head>, StoreError> {
        if entries.is_empty() {
            return Ok(Some(self.clone()));
        }
        let rows = self.chain(entries);
        let Some(next) = self.after(&rows) else {
            return Ok(Some(self.clone()));
        };
        let written = match conn {
            DbConnection::Postgresql(c) => insert_unnest(c, self, &next, &rows)? == rows.len(),
            DbConnection::Sqlite(_) => {
                let moved = diesel::update(
                    access_log_head::table
                        .find(1)
                        .filter(access_log_head::seq.eq(self.seq))
                        .filter(access_log_head::hash.eq(&self.hash)),
                )
                .set((
                    access_log_head::seq.eq(next.seq),
                    access_log_head::hash.eq(&next.hash),
                ))
                .execute(conn)?;
                if moved == 1 {
                    for chunk in rows.chunks(INSERT_CHUNK) {
                        super::insert_rows!(conn, access_log::table, chunk)?;
                    }
                    card_use::add(conn, &Row::card_use(&rows))?;
                }
                moved == 1
            }
        };
        Ok(written.then_some(next))
    }

    /// PostgreSQL only: like [`Head::append_if_current`], and spends `tokens`
    /// (dynamic token ids, distinct, with the time their replay rows may be
    /// purged) in the same statement, all or nothing, atomic without a
    /// transaction. `None`, with nothing written, if another writer moved
    /// the head or any of the tokens is already spent. [`commit_batch`]
    /// tries it first, so a batch of dynamic tokens costs one round trip
    /// instead of four (BEGIN, replay insert, append, COMMIT).
    ///
    /// It relies on the writer's rule that tokens are spent only under the
    /// head, by this statement or in a transaction that took
    /// [`lock_head`] first and appends after: a committed spend has moved
    /// the head, so the check that no token is spent cannot miss one (a spend
    /// that commits while this statement waits for the head has moved it,
    /// and the head's compare fails). The replay key stays as a backstop: a
    /// spend the check did miss fails the statement with `Conflict` and it
    /// is rolled back whole.
    pub fn spend_and_append_if_current(
        &self,
        conn: &mut diesel::PgConnection,
        entries: &[NewLogEntry],
        tokens: &[([u8; 16], NaiveDateTime)],
    ) -> Result<Option<Head>, StoreError> {
        let rows = self.chain(entries);
        let Some(next) = self.after(&rows) else {
            return Ok(tokens.is_empty().then(|| self.clone()));
        };
        let written = if tokens.is_empty() {
            insert_unnest(conn, self, &next, &rows)?
        } else {
            let (ids, expires) = super::replay::sorted_columns(tokens);
            let statement = pg::SpendAndAppendRows {
                rows: pg::AppendRows::new(self, &next, &rows),
                ids,
                expires,
            };
            statement.execute(conn)?
        };
        Ok((written == rows.len()).then_some(next))
    }

    /// The head once `rows` are appended: their last seq and hash.
    fn after(&self, rows: &[Row]) -> Option<Head> {
        rows.last().map(|r| Head {
            seq: r.seq,
            hash: r.hash.clone(),
            key: self.key.clone(),
        })
    }

    /// The rows for `entries` after this head, each hash chained to the one before.
    fn chain(&self, entries: &[NewLogEntry]) -> Vec<Row> {
        let mut prev = self.hash.clone();
        let mut rows = Vec::with_capacity(entries.len());
        for (seq, e) in (self.seq + 1..).zip(entries) {
            let mut row = Row {
                seq,
                at: e.at.trunc_subsecs(6),
                actor_kind: e.actor_kind.as_str().to_owned(),
                actor: e.actor.clone(),
                action: e.action.clone(),
                card_id: e.card_id.map(|c| c.to_string()),
                resident_id: e.resident_id.map(|c| c.to_string()),
                clinic_id: e.clinic_id.map(|c| c.to_string()),
                channel: e.channel.map(|c| c.as_str().to_owned()),
                outcome: e.outcome.clone(),
                detail: e.detail.as_deref().map(scrub_detail),
                prev_hash: prev,
                hash: Vec::new(),
                step: e.step.map(|s| s.as_str().to_owned()),
                credential: e.credential.map(|c| c.as_str().to_owned()),
            };
            row.hash = row.compute_hash(&self.key).to_vec();
            prev = row.hash.clone();
            rows.push(row);
        }
        rows
    }
}

/// PostgreSQL: the head compared and moved from `from` to `to`, and the rows
/// inserted as one array per column (`unnest`), in one statement. Its text
/// does not depend on the number of rows and it has a static query id, so
/// diesel prepares it once per connection (a multi-row `VALUES` list, or a
/// `sql_query`, is parsed and planned anew for every batch: most of
/// PostgreSQL's own CPU per verification batch). The rows go in only if the
/// head matched; returns how many went in.
fn insert_unnest(
    c: &mut diesel::PgConnection,
    from: &Head,
    to: &Head,
    rows: &[Row],
) -> Result<usize, StoreError> {
    Ok(pg::AppendRows::new(from, to, rows).execute(c)?)
}

mod pg {
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, QueryFragment, QueryId};
    use diesel::sql_types::{Array, BigInt, Binary, Date, Nullable, Text, Timestamp};
    use diesel::{PgConnection, QueryResult, RunQueryDsl};

    use super::{card_use, Head, Row};

    /// `WITH head AS (UPDATE … WHERE seq = from) INSERT … SELECT * FROM
    /// unnest(…) WHERE EXISTS (SELECT 1 FROM head)`. If another writer holds
    /// the head, the UPDATE waits for it and then re-checks its WHERE against
    /// the committed row: no match, no rows.
    pub(super) struct AppendRows<'a> {
        from: &'a Head,
        to: &'a Head,
        seq: Vec<i64>,
        at: Vec<chrono::NaiveDateTime>,
        texts: [Vec<String>; 3],
        optional: [Vec<Option<String>>; 8],
        hashes: [Vec<Vec<u8>>; 2],
        uses: card_use::Columns,
    }

    impl<'a> AppendRows<'a> {
        pub(super) fn new(from: &'a Head, to: &'a Head, rows: &[Row]) -> Self {
            fn col<T: Clone>(rows: &[Row], f: impl Fn(&Row) -> &T) -> Vec<T> {
                rows.iter().map(|r| f(r).clone()).collect()
            }
            AppendRows {
                from,
                to,
                seq: col(rows, |r| &r.seq),
                at: col(rows, |r| &r.at),
                texts: [
                    col(rows, |r| &r.actor_kind),
                    col(rows, |r| &r.actor),
                    col(rows, |r| &r.action),
                ],
                optional: [
                    col(rows, |r| &r.card_id),
                    col(rows, |r| &r.resident_id),
                    col(rows, |r| &r.clinic_id),
                    col(rows, |r| &r.channel),
                    col(rows, |r| &r.outcome),
                    col(rows, |r| &r.detail),
                    col(rows, |r| &r.step),
                    col(rows, |r| &r.credential),
                ],
                hashes: [col(rows, |r| &r.prev_hash), col(rows, |r| &r.hash)],
                uses: Row::card_use(rows).columns(),
            }
        }
    }

    /// The statement's cache key: one text whatever the rows.
    pub(super) struct AppendRowsId;

    impl QueryId for AppendRows<'_> {
        type QueryId = AppendRowsId;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl AppendRows<'_> {
        /// `UPDATE access_log_head … WHERE … seq = from AND hash = from`,
        /// without its closing `RETURNING`, so a caller can add conditions.
        fn walk_head<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("UPDATE access_log_head SET seq = ");
            out.push_bind_param::<BigInt, _>(&self.to.seq)?;
            out.push_sql(", hash = ");
            out.push_bind_param::<Binary, _>(&self.to.hash)?;
            out.push_sql(" WHERE id = 1 AND seq = ");
            out.push_bind_param::<BigInt, _>(&self.from.seq)?;
            out.push_sql(" AND hash = ");
            out.push_bind_param::<Binary, _>(&self.from.hash)?;
            Ok(())
        }

        /// `, used AS (…)`: the rows' daily card-use counts added to
        /// `card_use_daily`, only if the CTE `head` returned a row. Keys are
        /// distinct and sorted (see [`card_use::Increments`]), so one upsert
        /// touches each row once and two writers lock them in one order.
        fn walk_uses<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            let u = &self.uses;
            out.push_sql(
                ", used AS (INSERT INTO card_use_daily \
                 (day, clinic_id, channel, step, outcome, uses) SELECT * FROM unnest(",
            );
            out.push_bind_param::<Array<Date>, _>(&u.days)?;
            for col in [&u.clinics, &u.channels, &u.steps, &u.outcomes] {
                out.push_sql(", ");
                out.push_bind_param::<Array<Text>, _>(col)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Array<BigInt>, _>(&u.uses)?;
            out.push_sql(
                ") WHERE EXISTS (SELECT 1 FROM head) \
                 ON CONFLICT (day, clinic_id, channel, step, outcome) \
                 DO UPDATE SET uses = card_use_daily.uses + EXCLUDED.uses)",
            );
            Ok(())
        }

        /// The rows' `INSERT`, only if the CTE `head` returned a row.
        fn walk_rows<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            self.walk_uses(out)?;
            out.push_sql(
                " INSERT INTO access_log (seq, at, actor_kind, actor, action, \
                 card_id, resident_id, clinic_id, channel, outcome, detail, step, \
                 credential, prev_hash, hash) SELECT * FROM unnest(",
            );
            out.push_bind_param::<Array<BigInt>, _>(&self.seq)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Timestamp>, _>(&self.at)?;
            for col in &self.texts {
                out.push_sql(", ");
                out.push_bind_param::<Array<Text>, _>(col)?;
            }
            for col in &self.optional {
                out.push_sql(", ");
                out.push_bind_param::<Array<Nullable<Text>>, _>(col)?;
            }
            for col in &self.hashes {
                out.push_sql(", ");
                out.push_bind_param::<Array<Binary>, _>(col)?;
            }
            out.push_sql(") WHERE EXISTS (SELECT 1 FROM head)");
            Ok(())
        }
    }

    impl QueryFragment<Pg> for AppendRows<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("WITH head AS (");
            self.walk_head(&mut out)?;
            out.push_sql(" RETURNING 1)");
            self.walk_rows(&mut out)
        }
    }

    /// [`AppendRows`] that also spends dynamic tokens: the head moves only if
    /// none of them is in the replay set yet, and the replay rows and the
    /// log rows go in only if it moved. Ids sorted, so two statements that
    /// share ids take their key locks in the same order.
    pub(super) struct SpendAndAppendRows<'a> {
        pub(super) rows: AppendRows<'a>,
        pub(super) ids: Vec<Vec<u8>>,
        pub(super) expires: Vec<chrono::NaiveDateTime>,
    }

    /// The statement's cache key.
    pub(super) struct SpendAndAppendRowsId;

    impl QueryId for SpendAndAppendRows<'_> {
        type QueryId = SpendAndAppendRowsId;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl QueryFragment<Pg> for SpendAndAppendRows<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("WITH head AS (");
            self.rows.walk_head(&mut out)?;
            out.push_sql(" AND NOT EXISTS (SELECT 1 FROM replay WHERE token_id = ANY(");
            out.push_bind_param::<Array<Binary>, _>(&self.ids)?;
            out.push_sql(
                ")) RETURNING 1), spent AS (INSERT INTO replay (token_id, expires_at) \
                 SELECT * FROM unnest(",
            );
            out.push_bind_param::<Array<Binary>, _>(&self.ids)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Timestamp>, _>(&self.expires)?;
            out.push_sql(") WHERE EXISTS (SELECT 1 FROM head) ORDER BY 1)");
            self.rows.walk_rows(&mut out)
        }
    }

    impl RunQueryDsl<PgConnection> for SpendAndAppendRows<'_> {}

    impl RunQueryDsl<PgConnection> for AppendRows<'_> {}
}

fn newest(
    conn: &mut DbConnection,
    query: access_log::BoxedQuery<'_, super::MultiBackend>,
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    query
        .order(access_log::seq.desc())
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Row::into_entry)
        .collect()
}

/// The newest `limit` entries about a card, newest first.
pub fn for_card(
    conn: &mut DbConnection,
    card: CardId,
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    let q = access_log::table
        .filter(access_log::card_id.eq(card.to_string()))
        .into_boxed();
    newest(conn, q, limit)
}

/// The newest `limit` entries about a resident (the holder's "who looked me
/// up" page), newest first.
pub fn for_resident(
    conn: &mut DbConnection,
    resident: ResidentId,
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    let q = access_log::table
        .filter(access_log::resident_id.eq(resident.to_string()))
        .into_boxed();
    newest(conn, q, limit)
}

/// The newest `limit` entries about any of `residents` (a resident and the
/// records merged into them), newest first.
pub fn for_residents(
    conn: &mut DbConnection,
    residents: &[ResidentId],
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    let ids: Vec<String> = residents.iter().map(ToString::to_string).collect();
    let q = access_log::table
        .filter(access_log::resident_id.eq_any(ids))
        .into_boxed();
    newest(conn, q, limit)
}

/// Whether `clinic` verified `card` with a valid outcome at or after
/// `since`: the scan a link needs. Served by the `(card_id, seq)` index (a
/// card's rows are few); see docs/storage.md.
pub fn verified_since(
    conn: &mut DbConnection,
    clinic: ClinicId,
    card: CardId,
    since: NaiveDateTime,
) -> Result<bool, StoreError> {
    let found: Option<i64> = access_log::table
        .filter(access_log::card_id.eq(card.to_string()))
        .filter(access_log::clinic_id.eq(clinic.to_string()))
        .filter(access_log::action.eq("verify"))
        .filter(access_log::outcome.eq("valid"))
        .filter(access_log::at.ge(since))
        .select(access_log::seq)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// The chain head as stored now: its seq and hash (what an anchor signs).
pub fn current_head(conn: &mut DbConnection) -> Result<(i64, [u8; 32]), StoreError> {
    let (seq, hash): (i64, Vec<u8>) = access_log_head::table
        .find(1)
        .select((access_log_head::seq, access_log_head::hash))
        .first(conn)?;
    let hash = hash
        .try_into()
        .map_err(|_| StoreError::Other("corrupt access log head".into()))?;
    Ok((seq, hash))
}

/// Walks the whole chain in pages of [`VERIFY_PAGE`] rows (never all rows in
/// memory) and reports the first break: a row whose content no longer matches
/// its MAC (edited), a seq gap or a `prev_hash` that is not the previous
/// row's hash (deleted), or a last row that is not the head (cut-off tail).
///
/// Without the chain key nobody can make a changed chain pass. Someone who
/// has the key and can write the database can; an anchor kept off the
/// machine ([`verify_chain_to`]) catches that for every row up to it.
pub fn verify_chain(conn: &mut DbConnection, key: &ChainKey) -> Result<ChainReport, StoreError> {
    verify_chain_to(conn, key, None)
}

/// [`verify_chain`], and also that the row at `anchor`'s seq has the
/// anchor's hash: since each MAC covers the one before, that proves every
/// row up to it is the one the anchor saw. A mismatch, or a chain that ends
/// before the anchor, is reported at the anchor's seq.
pub fn verify_chain_to(
    conn: &mut DbConnection,
    key: &ChainKey,
    anchor: Option<(i64, [u8; 32])>,
) -> Result<ChainReport, StoreError> {
    let (head_seq, head_hash, version): (i64, Vec<u8>, i32) = access_log_head::table
        .find(1)
        .select((
            access_log_head::seq,
            access_log_head::hash,
            access_log_head::chain_version,
        ))
        .first(conn)?;
    let mut checked = 0u64;
    let mut last_seq = 0i64;
    let mut last_hash = GENESIS.to_vec();
    let bad = |seq: i64, why: &str, checked: u64| ChainReport {
        rows_checked: checked,
        first_bad: Some((seq, why.to_owned())),
    };
    if version < KEYED_CHAIN {
        return Ok(bad(
            1,
            "the chain is still in the old unkeyed format (run `healthcard migrate`)",
            0,
        ));
    }
    const REWRITTEN: &str = "differs from the anchor: a row at or before it was rewritten";
    if let Some((0, hash)) = anchor {
        if hash != GENESIS {
            return Ok(bad(0, REWRITTEN, 0));
        }
    }
    loop {
        let page: Vec<Row> = access_log::table
            .filter(access_log::seq.gt(last_seq))
            .order(access_log::seq.asc())
            .limit(VERIFY_PAGE)
            .select(Row::as_select())
            .load(conn)?;
        if page.is_empty() {
            break;
        }
        for row in page {
            checked += 1;
            if row.seq != last_seq + 1 {
                return Ok(bad(last_seq + 1, "missing row (seq gap)", checked));
            }
            if row.prev_hash != last_hash {
                return Ok(bad(
                    row.seq,
                    "prev_hash does not match the previous row",
                    checked,
                ));
            }
            if row.compute_hash(key).as_slice() != row.hash.as_slice() {
                return Ok(bad(
                    row.seq,
                    "content does not match its MAC (edited)",
                    checked,
                ));
            }
            if let Some((seq, hash)) = anchor {
                if row.seq == seq && row.hash.as_slice() != hash.as_slice() {
                    return Ok(bad(seq, REWRITTEN, checked));
                }
            }
            last_seq = row.seq;
            last_hash = row.hash;
        }
    }
    if let Some((seq, _)) = anchor {
        if last_seq < seq {
            return Ok(bad(
                seq,
                "missing: the anchor names a row the log no longer has",
                checked,
            ));
        }
    }
    if last_seq != head_seq || last_hash != head_hash {
        let why = if last_seq < head_seq {
            "rows missing at the end (head is further)"
        } else {
            "last row does not match the head"
        };
        return Ok(bad(head_seq.max(last_seq), why, checked));
    }
    Ok(ChainReport {
        rows_checked: checked,
        first_bad: None,
    })
}

/// What [`upgrade_chain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    /// Old rows re-keyed (the re-key row itself not counted).
    pub rows: u64,
    /// The re-key row's seq.
    pub seq: i64,
    /// What the check of the old chain found: `intact`, or where it broke.
    pub old_chain: String,
}

/// Re-keys a chain of the old plain SHA-256 format (chain version 1) with
/// `key`, once: under the head's lock it checks the old chain, recomputes
/// every row's `prev_hash` and MAC from the first row on, moves the head,
/// marks the chain keyed and appends a `log.rekey` row that says how many
/// rows were re-keyed and what the old chain's check found (a break found
/// then stays on record, since re-keying would otherwise hide it). All in
/// one transaction; `None` if the chain is already keyed, so it is safe to
/// call on every start and by every node. It needs the master key, so it is
/// Rust, not a SQL migration; the triggers allow the rows' UPDATE only while
/// the chain is unkeyed.
pub fn upgrade_chain(
    conn: &mut DbConnection,
    key: &ChainKey,
) -> Result<Option<Rekeyed>, StoreError> {
    let version: i32 = access_log_head::table
        .find(1)
        .select(access_log_head::chain_version)
        .first(conn)?;
    if version >= KEYED_CHAIN {
        return Ok(None);
    }
    conn.transaction(|conn| {
        let (head_seq, head_hash, version): (i64, Vec<u8>, i32) =
            diesel::update(access_log_head::table.find(1))
                .set(access_log_head::seq.eq(access_log_head::seq))
                .returning((
                    access_log_head::seq,
                    access_log_head::hash,
                    access_log_head::chain_version,
                ))
                .get_result(conn)?;
        if version >= KEYED_CHAIN {
            // Another node did it first.
            return Ok(None);
        }
        let mut broken: Option<(i64, &str)> = None;
        let (mut last_seq, mut old_prev, mut new_prev) = (0i64, GENESIS.to_vec(), GENESIS.to_vec());
        let mut rows = 0u64;
        loop {
            let page: Vec<Row> = access_log::table
                .filter(access_log::seq.gt(last_seq))
                .order(access_log::seq.asc())
                .limit(VERIFY_PAGE)
                .select(Row::as_select())
                .load(conn)?;
            if page.is_empty() {
                break;
            }
            for mut row in page {
                if broken.is_none() {
                    if row.seq != last_seq + 1 {
                        broken = Some((last_seq + 1, "missing row (seq gap)"));
                    } else if row.prev_hash != old_prev {
                        broken = Some((row.seq, "prev_hash does not match the previous row"));
                    } else if row.compute_plain_hash().as_slice() != row.hash.as_slice() {
                        broken = Some((row.seq, "content does not match its hash (edited)"));
                    }
                }
                old_prev = std::mem::take(&mut row.hash);
                row.prev_hash = new_prev;
                row.hash = row.compute_hash(key).to_vec();
                diesel::update(access_log::table.find(row.seq))
                    .set((
                        access_log::prev_hash.eq(&row.prev_hash),
                        access_log::hash.eq(&row.hash),
                    ))
                    .execute(conn)?;
                new_prev = row.hash;
                last_seq = row.seq;
                rows += 1;
            }
        }
        if broken.is_none() && (last_seq != head_seq || old_prev != head_hash) {
            broken = Some((head_seq.max(last_seq), "last row does not match the head"));
        }
        let old_chain = match broken {
            None => "intact".to_owned(),
            Some((seq, why)) => format!("broken at seq {seq}: {why}"),
        };
        diesel::update(access_log_head::table.find(1))
            .set((
                access_log_head::seq.eq(last_seq),
                access_log_head::hash.eq(&new_prev),
                access_log_head::chain_version.eq(KEYED_CHAIN),
            ))
            .execute(conn)?;
        let head = Head {
            seq: last_seq,
            hash: new_prev,
            key: key.clone(),
        };
        let mut entry = NewLogEntry::new(ActorKind::System, "migrate", "log.rekey");
        entry.outcome = Some(
            if broken.is_none() {
                "ok"
            } else {
                "old_chain_broken"
            }
            .into(),
        );
        entry.detail = Some(format!(
            "re-keyed {rows} rows from plain SHA-256 to HMAC-SHA-256; old chain {old_chain}"
        ));
        let head = head.append(conn, &[entry])?;
        Ok(Some(Rekeyed {
            rows,
            seq: head.seq,
            old_chain,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: Option<&str>, credential: Option<&str>) -> Row {
        Row {
            seq: 7,
            at: chrono::DateTime::from_timestamp(1_800_000_000, 0)
                .unwrap()
                .naive_utc(),
            actor_kind: "clinic".into(),
            actor: "C1".into(),
            action: "verify".into(),
            card_id: None,
            resident_id: None,
            clinic_id: None,
            channel: None,
            outcome: Some("valid".into()),
            detail: None,
            prev_hash: vec![0; 32],
            hash: Vec::new(),
            step: step.map(str::to_owned),
            credential: credential.map(str::to_owned),
        }
    }

    /// Rows written before `step` and `credential` existed encode as they
    /// did (their MACs still check), and no two of the four shapes encode
    /// alike, even when a step's text equals a credential's.
    #[test]
    fn step_and_credential_encode_only_when_present_and_never_alike() {
        let old = row(None, None).encode(b"l");
        let mut expected = b"l".to_vec();
        expected.extend_from_slice(&7i64.to_be_bytes());
        let mut f = |v: Option<&str>| match v {
            None => expected.push(0),
            Some(s) => {
                expected.push(1);
                expected.extend_from_slice(&(s.len() as u32).to_be_bytes());
                expected.extend_from_slice(s.as_bytes());
            }
        };
        for v in [
            Some("2027-01-15T08:00:00.000000"),
            Some("clinic"),
            Some("C1"),
            Some("verify"),
            None,
            None,
            None,
            None,
            Some("valid"),
            None,
        ] {
            f(v);
        }
        assert_eq!(
            old, expected,
            "the encoding of rows without the new columns"
        );
        let shapes = [
            row(None, None),
            row(Some("token"), None),
            row(None, Some("token")),
            row(Some("token"), Some("token")),
            row(Some("payment"), Some("document")),
        ];
        for (i, a) in shapes.iter().enumerate() {
            for b in &shapes[i + 1..] {
                assert_ne!(a.encode(b"l"), b.encode(b"l"), "{a:?} vs {b:?}");
            }
        }
    }
}
