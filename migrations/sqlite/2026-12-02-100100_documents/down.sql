-- Back to NOT NULL columns: only possible while every resident has a citizen
-- number (a resident registered with another document, or none, makes this
-- fail on the NOT NULL constraint, and nothing is changed).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE residents_old (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    national_id_enc   BLOB NOT NULL,
    national_id_index BLOB NOT NULL,
    sex               TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    birth_date        DATE NOT NULL,
    phone_enc         BLOB,
    created_at        TIMESTAMP NOT NULL
);
INSERT INTO residents_old (id, name, national_id_enc, national_id_index, sex, birth_date, phone_enc, created_at)
    SELECT r.id, r.name,
           COALESCE(r.national_id_enc, (SELECT d.number_enc FROM documents d WHERE d.resident_id = r.id
               AND d.doc_type IN ('resident_id_card', 'household_register') ORDER BY d.created_at LIMIT 1)),
           COALESCE(r.national_id_index, (SELECT d.number_index FROM documents d WHERE d.resident_id = r.id
               AND d.doc_type IN ('resident_id_card', 'household_register') ORDER BY d.created_at LIMIT 1)),
           r.sex, r.birth_date, r.phone_enc, r.created_at
    FROM residents r;
DROP TABLE documents;
DROP TABLE residents;
ALTER TABLE residents_old RENAME TO residents;
CREATE UNIQUE INDEX residents_national_id_index_key ON residents (national_id_index);
CREATE INDEX residents_name_prefix ON residents (name COLLATE NOCASE);
CREATE INDEX residents_birth_date ON residents (birth_date);
COMMIT;
PRAGMA foreign_keys = ON;
