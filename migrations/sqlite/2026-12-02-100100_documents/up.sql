-- Identity documents (issue 14): several per resident, each number sealed and
-- indexed. Expand step of docs/storage.md: the residents' national_id_*
-- columns become optional (new residents have them NULL: their numbers live
-- in documents only) and are dropped in a later release.
--
-- SQLite's procedure for a change ALTER TABLE cannot make: foreign keys off,
-- one transaction, new table, copy, drop, rename, indexes back, check.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE residents_new (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    national_id_enc   BLOB,
    national_id_index BLOB,
    sex               TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    birth_date        DATE NOT NULL,
    phone_enc         BLOB,
    created_at        TIMESTAMP NOT NULL,
    CHECK ((national_id_enc IS NULL) = (national_id_index IS NULL))
);
INSERT INTO residents_new (id, name, national_id_enc, national_id_index, sex, birth_date, phone_enc, created_at)
    SELECT id, name, national_id_enc, national_id_index, sex, birth_date, phone_enc, created_at FROM residents;
DROP TABLE residents;
ALTER TABLE residents_new RENAME TO residents;
CREATE UNIQUE INDEX residents_national_id_index_key ON residents (national_id_index);
CREATE INDEX residents_name_prefix ON residents (name COLLATE NOCASE);
CREATE INDEX residents_birth_date ON residents (birth_date);

-- number_index: keyed blind index of the number that names the person (see
-- domain::Document::index_input); the primary key, so one number is one
-- resident's. Citizen numbers (ID card, household register, HMT residence
-- permit) are sealed and indexed under the purpose of the old columns, so
-- the backfill below copies them byte for byte, never decrypting.
CREATE TABLE documents (
    number_index BLOB PRIMARY KEY NOT NULL,
    resident_id  TEXT NOT NULL REFERENCES residents (id),
    doc_type     TEXT NOT NULL CHECK (doc_type IN ('resident_id_card', 'household_register',
                     'passport', 'hk_macao_permit', 'taiwan_permit', 'birth_certificate',
                     'hmt_residence_permit', 'foreign_permanent_residence')),
    country      TEXT CHECK ((country IS NULL) = (doc_type <> 'passport')),
    number_enc   BLOB NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX documents_resident_id ON documents (resident_id, created_at);

INSERT INTO documents (number_index, resident_id, doc_type, country, number_enc, created_at)
    SELECT national_id_index, id, 'resident_id_card', NULL, national_id_enc, created_at
    FROM residents WHERE national_id_index IS NOT NULL;

COMMIT;
PRAGMA foreign_keys = ON;
