//! Bulk import of legacy per-hospital cards from CSV
//! (`local_patient_id,name,national_id,phone`).
//!
//! Idempotent by construction: a resident is found by blind index before one
//! is made, a card is issued only to a resident who has none, and a link only
//! where the clinic's number is not linked yet. Each batch is one transaction,
//! so a run that stops half way leaves whole batches, and running again
//! finishes the job: the end state is the one a single clean run gives.
//!
//! Speed: the crypto (sealing, blind indexes, holder secrets) is done before
//! the transaction; inside it each batch costs three `IN (…)` look-ups and up
//! to three multi-row INSERTs, whatever its size.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use diesel::prelude::*;

use super::access_log::{self, ActorKind, NewLogEntry};
use super::cards::NewCardRow;
use super::links::LinkRow;
use super::residents::{national_id_index, NewResident, ResidentRow};
use super::schema::{access_log_head, cards, links, residents};
use super::{backend, now, parse_id, Backend, DbConnection, StoreError};
use crate::crypto::MasterKey;
use crate::domain::{ClinicId, DomainError, LocalPatientId, MobileNumber, NationalId, PersonName};

/// The header the file must start with.
pub const HEADER: [&str; 4] = ["local_patient_id", "name", "national_id", "phone"];
/// Largest batch: keeps every multi-row INSERT under SQLite's limit of
/// 32766 bound parameters (8 per resident row).
pub const MAX_BATCH: usize = 2000;

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
    index: Vec<u8>,
    /// Used only if no resident has this index yet.
    sealed: ResidentRow,
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
    reader: impl Read,
    batch_size: usize,
    progress: impl FnMut(u64),
) -> Result<ImportReport, StoreError> {
    // SQLite: a large page cache for the import's connection. Every row
    // inserts into B-trees keyed by random values (blind index, UUIDs, holder
    // hashes), so with the default 2 MB cache nearly every touched page is a
    // pread() and the import slows as the file grows (profile: >25 % of its
    // CPU in the kernel's read copy). Reset afterwards: the connection goes
    // back to a pool.
    let sqlite = backend(conn) == Backend::Sqlite;
    if sqlite {
        diesel::connection::SimpleConnection::batch_execute(conn, "PRAGMA cache_size = -524288")?;
    }
    let result = import_rows(conn, key, clinic, reader, batch_size, progress);
    if sqlite {
        let _ = diesel::connection::SimpleConnection::batch_execute(
            conn,
            "PRAGMA cache_size = -2000; PRAGMA shrink_memory;",
        );
    }
    result
}

fn import_rows(
    conn: &mut DbConnection,
    key: &MasterKey,
    clinic: ClinicId,
    reader: impl Read,
    batch_size: usize,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, StoreError> {
    let batch_size = batch_size.clamp(1, MAX_BATCH);
    // The clinic must exist; this also gives a clear NotFound up front.
    super::clinics::get(conn, clinic)?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| StoreError::Other(format!("reading the CSV header: {e}")))?;
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(StoreError::Other(format!(
            "the CSV header must be {}",
            HEADER.join(",")
        )));
    }
    let mut report = ImportReport::default();
    let mut record = csv::StringRecord::new();
    let mut batch = Vec::with_capacity(batch_size);
    let at = now();
    loop {
        let more = match csv.read_record(&mut record) {
            Ok(more) => more,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(StoreError::Other(format!("reading the CSV: {e}")));
            }
            Err(e) => {
                report.rows += 1;
                let line = e.position().map_or(0, |p| p.line());
                report.bad.push(BadRow {
                    line,
                    reason: "not valid CSV or not UTF-8".into(),
                });
                continue;
            }
        };
        if more {
            report.rows += 1;
            let line = record.position().map_or(0, |p| p.line());
            match parse_row(&record) {
                Ok(new) => batch.push(prepare(key, line, new, at)),
                Err(reason) => report.bad.push(BadRow { line, reason }),
            }
        }
        if batch.len() >= batch_size || (!more && !batch.is_empty()) {
            import_batch(conn, clinic, std::mem::take(&mut batch), &mut report)?;
            progress(report.rows);
        }
        if !more {
            break;
        }
    }
    progress(report.rows);
    report.bad.sort_by_key(|b| b.line);
    Ok(report)
}

fn parse_row(r: &csv::StringRecord) -> Result<(LocalPatientId, NewResident), String> {
    if r.len() != HEADER.len() {
        return Err(format!(
            "expected {} fields, found {}",
            HEADER.len(),
            r.len()
        ));
    }
    let why = |e: DomainError| e.to_string();
    let local = LocalPatientId::parse(&r[0]).map_err(why)?;
    let name = PersonName::parse(&r[1]).map_err(why)?;
    let national_id = NationalId::parse(&r[2]).map_err(why)?;
    let phone = match r[3].trim() {
        "" => None,
        p => Some(MobileNumber::parse(p).map_err(why)?),
    };
    Ok((
        local,
        NewResident {
            name,
            national_id,
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
    Prepared {
        line,
        local,
        index: national_id_index(key, &new.national_id),
        sealed: ResidentRow::seal(key, &new, at),
    }
}

fn import_batch(
    conn: &mut DbConnection,
    clinic: ClinicId,
    batch: Vec<Prepared>,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let clinic_text = clinic.to_string();
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
        let indexes: Vec<&Vec<u8>> = batch.iter().map(|p| &p.index).collect();
        let mut resident_of: HashMap<Vec<u8>, String> = residents::table
            .filter(residents::national_id_index.eq_any(&indexes))
            .select((residents::national_id_index, residents::id))
            .load::<(Vec<u8>, String)>(conn)?
            .into_iter()
            .collect();
        let mut new_residents = Vec::new();
        for p in &batch {
            if !resident_of.contains_key(&p.index) {
                resident_of.insert(p.index.clone(), p.sealed.id.clone());
                new_residents.push(&p.sealed);
            }
        }
        for chunk in new_residents.chunks(MAX_BATCH) {
            let rows: Vec<ResidentRow> = chunk.iter().map(|r| (*r).clone()).collect();
            super::insert_rows!(conn, residents::table, &rows)?;
        }
        delta.residents_created = new_residents.len() as u64;
        let created: HashSet<&str> = new_residents.iter().map(|r| r.id.as_str()).collect();

        // 2. Cards: only for residents who never had one (an import must not
        // undo a revocation).
        let batch_residents: Vec<&String> = resident_of.values().collect();
        let with_cards: HashSet<String> = cards::table
            .filter(cards::resident_id.eq_any(&batch_residents))
            .select(cards::resident_id)
            .distinct()
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let at = now();
        let mut new_cards: Vec<NewCardRow> = Vec::new();
        for r in batch_residents
            .iter()
            .filter(|r| !with_cards.contains(r.as_str()))
        {
            // The holder secret is dropped here: imported cards have no
            // usable holder credential until reissued.
            let (row, _secret) = NewCardRow::fresh(parse_id(r)?, at);
            new_cards.push(row);
        }
        for chunk in new_cards.chunks(MAX_BATCH) {
            super::insert_rows!(conn, cards::table, chunk)?;
        }
        delta.cards_issued = new_cards.len() as u64;
        let carded: HashSet<&str> = new_cards.iter().map(|c| c.resident_id.as_str()).collect();

        // 3. Links of this clinic's numbers.
        let locals: Vec<&str> = batch.iter().map(|p| p.local.as_str()).collect();
        let mut linked: HashMap<String, String> = links::table
            .filter(links::clinic_id.eq(&clinic_text))
            .filter(links::local_patient_id.eq_any(&locals))
            .select((links::local_patient_id, links::resident_id))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        let mut new_links = Vec::new();
        for p in &batch {
            let resident = &resident_of[&p.index];
            let changed_resident =
                created.contains(resident.as_str()) || carded.contains(resident.as_str());
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
                    linked.insert(p.local.as_str().to_owned(), resident.clone());
                    new_links.push(LinkRow {
                        clinic_id: clinic_text.clone(),
                        local_patient_id: p.local.as_str().to_owned(),
                        resident_id: resident.clone(),
                        created_at: at,
                    });
                }
            }
        }
        for chunk in new_links.chunks(MAX_BATCH) {
            super::insert_rows!(conn, links::table, chunk)?;
        }
        delta.links_created = new_links.len() as u64;

        // 4. One log entry per batch that changed anything.
        if delta.residents_created + delta.cards_issued + delta.links_created > 0 {
            let mut entry = NewLogEntry::new(ActorKind::System, "import", "import");
            entry.clinic_id = Some(clinic);
            entry.outcome = Some("ok".into());
            entry.detail = Some(format!(
                "lines {first_line}-{last_line}: {} residents, {} cards, {} links created",
                delta.residents_created, delta.cards_issued, delta.links_created
            ));
            access_log::append(conn, &[entry])?;
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
