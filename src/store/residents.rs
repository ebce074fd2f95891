//! Residents and their identity documents. Every document number is stored
//! only sealed (AES-GCM under the master key) and as a keyed blind index for
//! exact look-up (the `documents` table's key, so a number is one resident's);
//! the phone only sealed. The residents' old `national_id_*` columns are read
//! by nothing: they are NULL for new residents and dropped by a later
//! migration (docs/storage.md, expand and contract).

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{documents, residents};
use super::{corrupt, now, on_unique, parse_id, Conflict, DbConnection, StoreError};
use crate::crypto::MasterKey;
use crate::domain::{
    Document, DocumentType, MobileNumber, NationalId, PersonName, ResidentId, Sex,
};

/// AEAD purpose of the phone number.
pub(crate) const PHONE_PURPOSE: &[u8] = b"phone";

/// A resident, decrypted, with their documents (oldest first). `Debug` shows
/// only the id and the masked numbers: a stray `{:?}` in a log line must not
/// leak a name or a phone number.
#[derive(Clone, PartialEq, Eq)]
pub struct Resident {
    pub id: ResidentId,
    pub name: String,
    pub documents: Vec<Document>,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub phone: Option<String>,
    pub created_at: NaiveDateTime,
}

impl Resident {
    /// The citizen number (ID card or household register), the short form
    /// `national_id` of API.md, where the resident has one.
    pub fn national_id(&self) -> Option<&NationalId> {
        self.documents.iter().find_map(Document::national_id)
    }

    /// The document answers name the resident by: the first registered.
    pub fn primary_document(&self) -> Option<&Document> {
        self.documents.first()
    }
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident")
            .field("id", &self.id)
            .field("documents", &self.documents)
            .finish_non_exhaustive()
    }
}

/// What registration needs: sex and birth date already reconciled with the
/// document (`Document::demographics`).
#[derive(Debug, Clone)]
pub struct NewResident {
    pub name: PersonName,
    pub document: Option<Document>,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub phone: Option<MobileNumber>,
}

impl NewResident {
    /// A resident registered by ID number: sex and birth date from it.
    pub fn with_national_id(
        name: PersonName,
        national_id: NationalId,
        phone: Option<MobileNumber>,
    ) -> Self {
        NewResident {
            name,
            sex: national_id.sex(),
            birth_date: national_id.birth_date(),
            document: Some(Document::ResidentIdCard(national_id)),
            phone,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = residents, treat_none_as_default_value = false)]
pub(crate) struct ResidentRow {
    pub id: String,
    pub name: String,
    pub national_id_enc: Option<Vec<u8>>,
    pub national_id_index: Option<Vec<u8>>,
    pub sex: String,
    pub birth_date: NaiveDate,
    pub phone_enc: Option<Vec<u8>>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = documents, treat_none_as_default_value = false)]
pub(crate) struct DocumentRow {
    pub number_index: Vec<u8>,
    pub resident_id: String,
    pub doc_type: String,
    pub country: Option<String>,
    pub number_enc: Vec<u8>,
    pub created_at: NaiveDateTime,
}

/// The blind index of a national ID number (the same as its document's).
pub fn national_id_index(key: &MasterKey, id: &NationalId) -> Vec<u8> {
    document_index(key, &Document::ResidentIdCard(id.clone()))
}

/// The blind index of a document: keyed, over what names the person.
pub fn document_index(key: &MasterKey, doc: &Document) -> Vec<u8> {
    key.blind_index(doc.purpose(), doc.index_input().as_bytes())
        .to_vec()
}

impl DocumentRow {
    pub(crate) fn seal(key: &MasterKey, resident: &str, doc: &Document, at: NaiveDateTime) -> Self {
        DocumentRow {
            number_index: document_index(key, doc),
            resident_id: resident.to_owned(),
            doc_type: doc.kind().as_str().to_owned(),
            country: doc.country().map(|c| c.as_str().to_owned()),
            number_enc: key.seal(doc.purpose(), doc.number().as_bytes()),
            created_at: at,
        }
    }

    fn open(&self, key: &MasterKey) -> Result<Document, StoreError> {
        let kind = DocumentType::parse(&self.doc_type).map_err(corrupt("document type"))?;
        let number = key.open(kind.purpose(), &self.number_enc)?;
        let number = std::str::from_utf8(&number).map_err(corrupt("document number"))?;
        Document::parse_stored(kind, number, self.country.as_deref())
            .map_err(corrupt("document number"))
    }
}

impl ResidentRow {
    /// Seals a new resident: pure crypto, no database, so bulk imports can
    /// do it outside their transactions. Its document, if any, is
    /// [`DocumentRow::seal`]ed apart.
    pub(crate) fn seal(key: &MasterKey, new: &NewResident, at: NaiveDateTime) -> Self {
        ResidentRow {
            id: ResidentId::new().to_string(),
            name: new.name.as_str().to_owned(),
            national_id_enc: None,
            national_id_index: None,
            sex: new.sex.as_str().to_owned(),
            birth_date: new.birth_date,
            phone_enc: new
                .phone
                .as_ref()
                .map(|p| key.seal(PHONE_PURPOSE, p.as_str().as_bytes())),
            created_at: at,
        }
    }

    /// The resident without documents: [`with_documents`] adds them.
    pub(crate) fn open(self, key: &MasterKey) -> Result<Resident, StoreError> {
        let phone = match self.phone_enc {
            Some(enc) => {
                Some(String::from_utf8(key.open(PHONE_PURPOSE, &enc)?).map_err(corrupt("phone"))?)
            }
            None => None,
        };
        Ok(Resident {
            id: parse_id(&self.id)?,
            name: self.name,
            sex: self.sex.parse().map_err(corrupt("sex"))?,
            birth_date: self.birth_date,
            documents: Vec::new(),
            phone,
            created_at: self.created_at,
        })
    }
}

/// Fills in the residents' documents, one statement for all of them.
pub(crate) fn with_documents(
    conn: &mut DbConnection,
    key: &MasterKey,
    mut found: Vec<Resident>,
) -> Result<Vec<Resident>, StoreError> {
    if found.is_empty() {
        return Ok(found);
    }
    let ids: Vec<String> = found.iter().map(|r| r.id.to_string()).collect();
    let mut of: HashMap<String, Vec<Document>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<DocumentRow> = documents::table
            .filter(documents::resident_id.eq_any(chunk))
            .order((documents::created_at.asc(), documents::doc_type.asc()))
            .select(DocumentRow::as_select())
            .load(conn)?;
        for row in rows {
            let doc = row.open(key)?;
            of.entry(row.resident_id).or_default().push(doc);
        }
    }
    for r in &mut found {
        r.documents = of.remove(&r.id.to_string()).unwrap_or_default();
    }
    Ok(found)
}

fn one(conn: &mut DbConnection, key: &MasterKey, r: Resident) -> Result<Resident, StoreError> {
    Ok(with_documents(conn, key, vec![r])?.remove(0))
}

/// Registers a resident with their document, if any, in one transaction (a
/// savepoint inside the caller's): `Conflict(taken)` if the number is
/// already registered (the blind index is the key), and nothing is written.
pub fn create(
    conn: &mut DbConnection,
    key: &MasterKey,
    new: &NewResident,
    taken: Conflict,
) -> Result<Resident, StoreError> {
    let at = now();
    let row = ResidentRow::seal(key, new, at);
    conn.transaction(|conn| {
        diesel::insert_into(residents::table)
            .values(&row)
            .execute(conn)?;
        if let Some(doc) = &new.document {
            add_document_row(conn, key, &row.id, doc, at, taken)?;
        }
        Ok::<_, StoreError>(())
    })?;
    let mut r = row.open(key)?;
    r.documents = new.document.iter().cloned().collect();
    Ok(r)
}

fn add_document_row(
    conn: &mut DbConnection,
    key: &MasterKey,
    resident: &str,
    doc: &Document,
    at: NaiveDateTime,
    taken: Conflict,
) -> Result<(), StoreError> {
    diesel::insert_into(documents::table)
        .values(&DocumentRow::seal(key, resident, doc, at))
        .execute(conn)
        .map_err(on_unique(taken))?;
    Ok(())
}

/// Adds a document to a resident (`NotFound` if there is none,
/// `Conflict(Conflict::DocumentRegistered)` if the number is anyone's already).
pub fn add_document(
    conn: &mut DbConnection,
    key: &MasterKey,
    resident: ResidentId,
    doc: &Document,
) -> Result<Resident, StoreError> {
    let r = get(conn, key, resident)?;
    add_document_row(
        conn,
        key,
        &resident.to_string(),
        doc,
        now(),
        Conflict::DocumentRegistered,
    )?;
    let mut r = r;
    r.documents.push(doc.clone());
    Ok(r)
}

/// Finds the resident holding a document, through the blind index.
pub fn find_by_document(
    conn: &mut DbConnection,
    key: &MasterKey,
    doc: &Document,
) -> Result<Option<Resident>, StoreError> {
    let found = documents::table
        .inner_join(residents::table)
        .filter(documents::number_index.eq(document_index(key, doc)))
        .select(ResidentRow::as_select())
        .first(conn)
        .optional()?;
    match found {
        Some(r) => Ok(Some(one(conn, key, r.open(key)?)?)),
        None => Ok(None),
    }
}

/// Finds a resident by national ID number through the blind index.
pub fn find_by_national_id(
    conn: &mut DbConnection,
    key: &MasterKey,
    national_id: &NationalId,
) -> Result<Option<Resident>, StoreError> {
    find_by_document(conn, key, &Document::ResidentIdCard(national_id.clone()))
}

/// A resident by id; `NotFound` if there is none.
pub fn get(
    conn: &mut DbConnection,
    key: &MasterKey,
    id: ResidentId,
) -> Result<Resident, StoreError> {
    let r = residents::table
        .find(id.to_string())
        .select(ResidentRow::as_select())
        .first(conn)?
        .open(key)?;
    one(conn, key, r)
}

/// How many residents are registered (for metrics).
pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(residents::table.count().get_result(conn)?)
}

/// Residents whose name starts with `name_prefix` (case-sensitive), of the
/// given sex and birth date when given, at most `limit`, by name. The
/// prefix narrows by index (see the FHIR migration); callers match the
/// family and given names exactly on what comes back.
pub fn search_by_name_prefix(
    conn: &mut DbConnection,
    key: &MasterKey,
    name_prefix: &str,
    sex: Option<Sex>,
    birth_date: Option<NaiveDate>,
    limit: i64,
) -> Result<Vec<Resident>, StoreError> {
    let mut pattern = String::with_capacity(name_prefix.len() + 2);
    for c in name_prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    let mut q = residents::table
        .filter(residents::name.like(pattern).escape('\\'))
        .into_boxed();
    if let Some(sex) = sex {
        q = q.filter(residents::sex.eq(sex.as_str()));
    }
    if let Some(d) = birth_date {
        q = q.filter(residents::birth_date.eq(d));
    }
    q.order((residents::name.asc(), residents::id.asc()))
        .limit(limit)
        .select(ResidentRow::as_select())
        .load(conn)?
        .into_iter()
        .filter(|r| r.name.starts_with(name_prefix))
        .map(|r| r.open(key))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|found| with_documents(conn, key, found))
}
