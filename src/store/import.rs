//! Bulk import of legacy per-hospital cards from CSV
//! (`local_patient_id,name,national_id,phone`, then optionally
//! `document_type,country,sex,birth_date`: the number stays in the
//! `national_id` column, named for history).
//!
//! Idempotent by construction: a resident is found by blind index before one
//! is made, a card is issued only to a resident who has none, and a link only
//! where the clinic's number is not linked yet. Each batch is one transaction,
//! so a run that stops half way leaves whole batches, and running again
//! finishes the job: the end state is the one a single clean run gives.
//!
//! Speed (see docs/performance.md):
//! - Two threads, pipelined: one reads and parses the CSV and does the
//!   per-row crypto (sealing, blind index, holder secret) for batch n+1 while
//!   the caller's thread writes batch n. The database's write lock is held
//!   only for database work.
//! - Each transaction holds [`DEFAULT_BATCH`] rows by default, written as
//!   statements of at most [`CHUNK`] rows: each transaction dirties pages of
//!   the random-key indexes (blind index, holder hash) and writes them to the
//!   WAL once, so fewer, larger transactions write fewer pages per row. On
//!   the machine of docs/performance.md a 5,000-row transaction holds
//!   SQLite's write lock for ~0.25 s (median, up to 1,000,000 residents;
//!   10,000 rows: ~0.65 s, and no faster overall).
//! - Residents and cards made here get UUIDv7 ids (time-ordered), so the
//!   primary keys and the `resident_id` indexes grow at their right edge.
//! - Inside a transaction: one `IN (…)` look-up per chunk for residents and
//!   for links; cards are looked up only for residents who existed before.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::mpsc;
use std::time::Instant;

use diesel::prelude::*;

use super::access_log::{self, ActorKind, NewLogEntry};
use super::cards::NewCardRow;
use super::links::LinkRow;
use super::residents::{DocumentRow, NewResident, ResidentRow};
use super::schema::{access_log_head, cards, documents, links, resident_merges, residents};
use super::{backend, now, Backend, DbConnection, StoreError};
use crate::crypto::{ChainKey, MasterKey, SecretKind, SecretToken};
use crate::domain::{
    CardId, CardStatus, ClinicId, Document, DocumentType, DomainError, LocalPatientId,
    MobileNumber, PersonName, ResidentId, Sex,
};

/// The header the file must start with.
pub const HEADER: [&str; 4] = ["local_patient_id", "name", "national_id", "phone"];
/// Optional columns after [`HEADER`], in this order (a file may stop after any).
pub const OPTIONAL: [&str; 4] = ["document_type", "country", "sex", "birth_date"];
/// Rows per INSERT statement and per `IN (…)` look-up: keeps every statement
/// under SQLite's limit of 32766 bound parameters (8 per resident row).
pub const CHUNK: usize = 2000;
/// Rows per transaction unless the caller asks otherwise.
pub const DEFAULT_BATCH: usize = 5_000;
/// Largest transaction: a larger one would hold SQLite's write lock (and a
/// server sharing the file waiting on it) for seconds.
pub const MAX_BATCH: usize = 50_000;

/// What an import did. `rows` counts data rows read (good and bad).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub residents_created: u64,
    pub cards_issued: u64,
    pub links_created: u64,
    /// Good rows that needed nothing (already imported).
    pub unchanged: u64,
    pub bad: Vec<BadRow>,
}

/// Why an import stopped. Bad rows do not stop it (they are reported); these
/// do: the file's fault (`Header`, `Read`) or the database's (`Store`).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The first line is not the expected header (or cannot be read as CSV).
    #[error(
        "the CSV header must be {} (then optionally {}, in this order)",
        HEADER.join(","),
        OPTIONAL.join(",")
    )]
    Header,
    /// The file could not be read part way through.
    #[error("reading the CSV: {0}")]
    Read(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A refused row: its line in the file (1 is the header) and why. The reason
/// never holds the row's ID number or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// A parsed row with its crypto done.
struct Prepared {
    line: u64,
    local: LocalPatientId,
    /// Used only if no resident has this blind index yet.
    sealed: ResidentRow,
    /// Its document; `doc.number_index` finds the resident.
    doc: DocumentRow,
    /// Used only if the resident gets a card from this row.
    card_id: String,
    holder_hash: Vec<u8>,
}

/// Good rows for one transaction, and how many data rows (good and bad) had
/// been read when it was cut.
struct Batch {
    rows: Vec<Prepared>,
    read: u64,
}

/// What the reading thread found besides the good rows.
#[derive(Default)]
struct Parsed {
    rows: u64,
    bad: Vec<BadRow>,
}

/// Ids of rows made by the import: UUIDv7, so that consecutive inserts land
/// at the right edge of the primary-key and `resident_id` B-trees instead of
/// on a random page each. A v7 id shows its creation time to the
/// millisecond; for these ids that is the import's time, which says no more
/// than a card's issue time, which every token of the card carries anyway.
/// `Uuid::now_v7` is monotonic within the process.
fn time_ordered_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Imports `reader` for `clinic`, `batch_size` rows per transaction (clamped
/// to 1..=[`MAX_BATCH`]), calling `progress` with the number of data rows read
/// so far after each batch. Cards made here get a holder credential whose
/// clear text is discarded: the holder gets a usable one at the next reissue.
/// Fails only on I/O, a wrong header or a database error; bad rows are reported.
pub fn import_legacy(
    conn: &mut DbConnection,
    key: &MasterKey,
    clinic: ClinicId,
    by: (ActorKind, &str),
    reader: impl Read + Send,
    batch_size: usize,
    progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    // SQLite, for the import's connection only (reset afterwards: the
    // connection goes back to a pool):
    // - a large page cache: every row inserts into two B-trees keyed by
    //   random values (blind index, holder hash), so with the default 2 MB
    //   cache nearly every touched page is a pread() and the import slows as
    //   the file grows;
    // - temp_store in memory: each multi-row INSERT keeps a statement
    //   journal, which was otherwise a temporary file (10 % of the profile);
    // - no automatic checkpoint: `write_batches` runs the same PASSIVE
    //   checkpoint itself after every commit, so the WAL stays as small as
    //   before and a server sharing the file never has to checkpoint the
    //   import's pages.
    // `synchronous` stays as the pool set it (NORMAL in WAL mode, as for the
    // server): a power cut may lose the last commits, never consistency, and
    // running the import again completes it.
    let sqlite = backend(conn) == Backend::Sqlite;
    if sqlite {
        diesel::connection::SimpleConnection::batch_execute(
            conn,
            "PRAGMA cache_size = -524288; PRAGMA temp_store = MEMORY; \
             PRAGMA wal_autocheckpoint = 0;",
        )
        .map_err(StoreError::from)?;
    }
    let result = import_rows(conn, key, clinic, by, reader, batch_size, progress);
    if sqlite {
        let _ = diesel::connection::SimpleConnection::batch_execute(
            conn,
            "PRAGMA cache_size = -2000; PRAGMA temp_store = DEFAULT; \
             PRAGMA wal_autocheckpoint = 1000; PRAGMA shrink_memory;",
        );
    }
    result
}

fn import_rows(
    conn: &mut DbConnection,
    key: &MasterKey,
    clinic: ClinicId,
    by: (ActorKind, &str),
    reader: impl Read + Send,
    batch_size: usize,
    progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let batch_size = batch_size.clamp(1, MAX_BATCH);
    // The clinic must exist; this also gives a clear NotFound up front.
    super::clinics::get(conn, clinic)?;
    let at = now();
    let mut report = ImportReport::default();
    let (written, parsed) = std::thread::scope(|s| {
        // One batch waiting while the next is prepared: enough to keep both
        // threads busy, and memory bounded.
        let (tx, rx) = mpsc::sync_channel::<Batch>(1);
        let reading = std::thread::Builder::new()
            .name("import-read".into())
            .spawn_scoped(s, move || read_rows(key, reader, batch_size, at, tx))
            .map_err(|e| StoreError::Other(format!("starting the import's reader: {e}")));
        let reading = match reading {
            Ok(handle) => handle,
            Err(e) => return (Err(e), Ok(Parsed::default())),
        };
        // `rx` is moved in and dropped when writing stops, so a reader still
        // sending (after a database error) gets an error instead of blocking.
        let chain = key.chain_key();
        let written = write_batches(conn, &chain, by, clinic, rx, &mut report, progress);
        let parsed = match reading.join() {
            Ok(parsed) => parsed,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (written, parsed)
    });
    written?;
    let parsed = parsed?;
    report.rows = parsed.rows;
    report.bad.extend(parsed.bad);
    report.bad.sort_by_key(|b| b.line);
    Ok(report)
}

/// The writing side: one transaction per batch, on the caller's thread.
fn write_batches(
    conn: &mut DbConnection,
    chain: &ChainKey,
    by: (ActorKind, &str),
    clinic: ClinicId,
    rx: mpsc::Receiver<Batch>,
    report: &mut ImportReport,
    mut progress: impl FnMut(u64),
) -> Result<(), StoreError> {
    let clinic_text = clinic.to_string();
    let mut read = 0;
    for batch in rx {
        let started = Instant::now();
        import_batch(conn, chain, by, clinic, &clinic_text, &batch.rows, report)?;
        let written = started.elapsed();
        // What SQLite's automatic checkpoint would do after this commit, here
        // so that its time is measured apart from the transaction's.
        super::checkpoint(conn)?;
        tracing::debug!(
            rows = batch.rows.len(),
            transaction_ms = written.as_millis() as u64,
            checkpoint_ms = (started.elapsed() - written).as_millis() as u64,
            "import batch committed"
        );
        read = batch.read;
        progress(read);
    }
    progress(read);
    Ok(())
}

/// The reading side: parses, refuses bad rows, does the crypto, and sends
/// batches of `batch_size` good rows. Stops early (without error) if the
/// writing side has stopped.
fn read_rows(
    key: &MasterKey,
    reader: impl Read,
    batch_size: usize,
    at: chrono::NaiveDateTime,
    tx: mpsc::SyncSender<Batch>,
) -> Result<Parsed, ImportError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header = csv.headers().map_err(|_| ImportError::Header)?;
    let names: Vec<&str> = header.iter().collect();
    let columns = names.len();
    let expected: Vec<&str> = HEADER.iter().chain(OPTIONAL.iter()).copied().collect();
    if columns < HEADER.len() || columns > expected.len() || names != expected[..columns] {
        return Err(ImportError::Header);
    }
    let mut parsed = Parsed::default();
    let mut record = csv::StringRecord::new();
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        let more = match csv.read_record(&mut record) {
            Ok(more) => more,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(ImportError::Read(e.to_string()));
            }
            Err(e) => {
                parsed.rows += 1;
                let line = e.position().map_or(0, |p| p.line());
                parsed.bad.push(BadRow {
                    line,
                    reason: "not valid CSV or not UTF-8".into(),
                });
                continue;
            }
        };
        if more {
            parsed.rows += 1;
            let line = record.position().map_or(0, |p| p.line());
            match parse_row(&record, columns) {
                Ok(new) => batch.push(prepare(key, line, new, at)),
                Err(reason) => parsed.bad.push(BadRow { line, reason }),
            }
        }
        if batch.len() >= batch_size || (!more && !batch.is_empty()) {
            let full = Batch {
                rows: std::mem::replace(&mut batch, Vec::with_capacity(batch_size)),
                read: parsed.rows,
            };
            if tx.send(full).is_err() {
                // The writer stopped on an error of its own, which it reports.
                break;
            }
        }
        if !more {
            break;
        }
    }
    Ok(parsed)
}

fn parse_row(
    r: &csv::StringRecord,
    columns: usize,
) -> Result<(LocalPatientId, NewResident), String> {
    if r.len() != columns {
        return Err(format!("expected {columns} fields, found {}", r.len()));
    }
    let why = |e: DomainError| e.to_string();
    let field = |i: usize| r.get(i).map(str::trim).filter(|t| !t.is_empty());
    let local = LocalPatientId::parse(&r[0]).map_err(why)?;
    let name = PersonName::parse(&r[1]).map_err(why)?;
    let kind = match field(4) {
        None => DocumentType::ResidentIdCard,
        Some(t) => DocumentType::parse(t).map_err(why)?,
    };
    let document = Document::parse(kind, &r[2], field(5)).map_err(|e| e.to_string())?;
    let sex = field(6).map(str::parse::<Sex>).transpose().map_err(why)?;
    let birth = field(7)
        .map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| "invalid birth_date: not a date YYYY-MM-DD".to_string())?;
    let (sex, birth_date) = document
        .demographics(sex, birth)
        .map_err(|e| e.to_string())?;
    let phone = match r[3].trim() {
        "" => None,
        p => Some(MobileNumber::parse(p).map_err(why)?),
    };
    Ok((
        local,
        NewResident {
            name,
            document: Some(document),
            sex,
            birth_date,
            phone,
        },
    ))
}

fn prepare(
    key: &MasterKey,
    line: u64,
    (local, new): (LocalPatientId, NewResident),
    at: chrono::NaiveDateTime,
) -> Prepared {
    let mut sealed = ResidentRow::seal(key, &new, at);
    sealed.id = ResidentId::from_uuid(time_ordered_id()).to_string();
    let doc = DocumentRow::seal(
        key,
        &sealed.id,
        new.document
            .as_ref()
            .expect("parse_row gives every row a document"),
        at,
    );
    // The holder secret is dropped here: imported cards have no usable
    // holder credential until reissued.
    let holder_hash = SecretToken::generate(SecretKind::Holder).hash().0.to_vec();
    Prepared {
        line,
        local,
        sealed,
        doc,
        card_id: CardId::from_uuid(time_ordered_id()).to_string(),
        holder_hash,
    }
}

fn import_batch(
    conn: &mut DbConnection,
    chain: &ChainKey,
    by: (ActorKind, &str),
    clinic: ClinicId,
    clinic_text: &str,
    batch: &[Prepared],
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let sqlite = backend(conn) == Backend::Sqlite;
    let (first_line, last_line) = (
        batch.first().map_or(0, |p| p.line),
        batch.last().map_or(0, |p| p.line),
    );
    let mut delta = ImportReport::default();
    conn.transaction(|conn| {
        if sqlite {
            // Take SQLite's write lock before reading: a deferred transaction
            // that reads first can deadlock on its upgrade to a writer.
            diesel::update(access_log_head::table.find(1))
                .set(access_log_head::seq.eq(access_log_head::seq))
                .execute(conn)?;
        }
        // 1. Residents already registered, by blind index.
        let mut found: Vec<(Vec<u8>, String, String)> = Vec::new();
        for chunk in batch.chunks(CHUNK) {
            let indexes: Vec<&[u8]> = chunk
                .iter()
                .map(|p| p.doc.number_index.as_slice())
                .collect();
            found.extend(
                documents::table
                    .inner_join(residents::table)
                    .filter(documents::number_index.eq_any(&indexes))
                    .select((documents::number_index, residents::id, residents::name))
                    .load::<(Vec<u8>, String, String)>(conn)?,
            );
        }
        // Each row's resident, whether this batch creates it, and its name.
        let mut resident_of: HashMap<&[u8], (&str, bool, &str)> = found
            .iter()
            .map(|(index, id, name)| (index.as_slice(), (id.as_str(), false, name.as_str())))
            .collect();
        let mut new_residents: Vec<&ResidentRow> = Vec::new();
        let mut new_documents: Vec<&DocumentRow> = Vec::new();
        for p in batch {
            if let Entry::Vacant(v) = resident_of.entry(&p.doc.number_index) {
                v.insert((&p.sealed.id, true, &p.sealed.name));
                new_residents.push(&p.sealed);
                new_documents.push(&p.doc);
            }
        }
        // A number is linked to a resident only under that resident's name:
        // a row with another name is someone else's claim to the number
        // (or a typo), so it is a bad row, and it changes nothing.
        let (batch, misnamed): (Vec<&Prepared>, Vec<&Prepared>) = batch
            .iter()
            .partition(|p| resident_of[p.doc.number_index.as_slice()].2 == p.sealed.name);
        for p in misnamed {
            delta.bad.push(BadRow {
                line: p.line,
                reason: "name does not match the resident registered with this national_id".into(),
            });
        }
        // A record merged into another takes nothing more (API-2.md's merge):
        // its rows are bad rows, naming the real record as the way on.
        let mut merged: HashSet<String> = HashSet::new();
        let known: Vec<&str> = found.iter().map(|(_, id, _)| id.as_str()).collect();
        for chunk in known.chunks(CHUNK) {
            merged.extend(
                resident_merges::table
                    .filter(resident_merges::source_id.eq_any(chunk))
                    .select(resident_merges::source_id)
                    .load::<String>(conn)?,
            );
        }
        let (batch, of_merged): (Vec<&Prepared>, Vec<&Prepared>) = batch
            .into_iter()
            .partition(|p| !merged.contains(resident_of[p.doc.number_index.as_slice()].0));
        for p in of_merged {
            delta.bad.push(BadRow {
                line: p.line,
                reason: "the resident registered with this national_id was merged into another record; link that record".into(),
            });
        }
        for chunk in new_residents.chunks(CHUNK) {
            let rows: Vec<ResidentRow> = chunk.iter().map(|r| (*r).clone()).collect();
            super::insert_rows!(conn, residents::table, &rows)?;
        }
        for chunk in new_documents.chunks(CHUNK) {
            let rows: Vec<DocumentRow> = chunk.iter().map(|r| (*r).clone()).collect();
            super::insert_rows!(conn, documents::table, &rows)?;
        }
        delta.residents_created = new_residents.len() as u64;

        // 2. Cards: only for residents who never had one (an import must not
        // undo a revocation). A resident created just now has none.
        let mut with_cards: HashSet<String> = HashSet::new();
        let existing: Vec<&str> = found.iter().map(|(_, id, _)| id.as_str()).collect();
        for chunk in existing.chunks(CHUNK) {
            with_cards.extend(
                cards::table
                    .filter(cards::resident_id.eq_any(chunk))
                    .select(cards::resident_id)
                    .distinct()
                    .load::<String>(conn)?,
            );
        }
        let at = now();
        let mut carded: HashSet<&str> = HashSet::new();
        let mut new_cards: Vec<NewCardRow> = Vec::new();
        for p in &batch {
            let (resident, _, _) = resident_of[p.doc.number_index.as_slice()];
            if !with_cards.contains(resident) && carded.insert(resident) {
                new_cards.push(NewCardRow {
                    id: p.card_id.clone(),
                    resident_id: resident.to_owned(),
                    status: CardStatus::Active.as_str(),
                    issued_at: at,
                    status_changed_at: at,
                    holder_hash: p.holder_hash.clone(),
                });
            }
        }
        for chunk in new_cards.chunks(CHUNK) {
            super::insert_rows!(conn, cards::table, chunk)?;
        }
        delta.cards_issued = new_cards.len() as u64;

        // 3. Links of this clinic's numbers.
        let mut linked: HashMap<String, String> = HashMap::new();
        for chunk in batch.chunks(CHUNK) {
            let locals: Vec<&str> = chunk.iter().map(|p| p.local.as_str()).collect();
            linked.extend(
                links::table
                    .filter(links::clinic_id.eq(clinic_text))
                    .filter(links::local_patient_id.eq_any(&locals))
                    .select((links::local_patient_id, links::resident_id))
                    .load::<(String, String)>(conn)?,
            );
        }
        let mut new_links = Vec::new();
        for p in batch {
            let (resident, created, _) = resident_of[p.doc.number_index.as_slice()];
            let changed_resident = created || carded.contains(resident);
            match linked.get(p.local.as_str()) {
                Some(other) if other != resident => delta.bad.push(BadRow {
                    line: p.line,
                    reason: "local_patient_id is already linked to another resident".into(),
                }),
                Some(_) => {
                    if !changed_resident {
                        delta.unchanged += 1;
                    }
                }
                None => {
                    linked.insert(p.local.as_str().to_owned(), resident.to_owned());
                    new_links.push(LinkRow {
                        clinic_id: clinic_text.to_owned(),
                        local_patient_id: p.local.as_str().to_owned(),
                        resident_id: resident.to_owned(),
                        created_at: at,
                    });
                }
            }
        }
        for chunk in new_links.chunks(CHUNK) {
            super::insert_rows!(conn, links::table, chunk)?;
        }
        delta.links_created = new_links.len() as u64;

        // 4. One log entry per batch that changed anything.
        if delta.residents_created + delta.cards_issued + delta.links_created > 0 {
            let mut entry = NewLogEntry::new(by.0, by.1, "import");
            entry.clinic_id = Some(clinic);
            entry.outcome = Some("ok".into());
            entry.detail = Some(format!(
                "lines {first_line}-{last_line}: {} residents, {} cards, {} links created",
                delta.residents_created, delta.cards_issued, delta.links_created
            ));
            access_log::append(conn, chain, &[entry])?;
        }
        Ok::<_, StoreError>(())
    })?;
    report.residents_created += delta.residents_created;
    report.cards_issued += delta.cards_issued;
    report.links_created += delta.links_created;
    report.unchanged += delta.unchanged;
    report.bad.append(&mut delta.bad);
    Ok(())
}
