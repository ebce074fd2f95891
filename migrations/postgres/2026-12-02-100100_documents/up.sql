-- Identity documents (issue 14), the expand step of docs/storage.md: no
-- rewrite of residents (DROP NOT NULL only changes the catalogue), one new
-- table, a backfill that copies the sealed number and its index byte for
-- byte (same purpose: nothing is decrypted), and a trigger so that a node of
-- the previous release, still writing the old columns during a rolling
-- upgrade, gets its resident's document too. The contract step (a later
-- release) drops the trigger and the national_id_* columns.
CREATE TABLE documents (
    number_index BYTEA PRIMARY KEY NOT NULL,
    resident_id  TEXT NOT NULL REFERENCES residents (id),
    doc_type     TEXT NOT NULL CHECK (doc_type IN ('resident_id_card', 'household_register',
                     'passport', 'hk_macao_permit', 'taiwan_permit', 'birth_certificate',
                     'hmt_residence_permit', 'foreign_permanent_residence')),
    country      TEXT CHECK ((country IS NULL) = (doc_type <> 'passport')),
    number_enc   BYTEA NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX documents_resident_id ON documents (resident_id, created_at);

CREATE FUNCTION residents_legacy_document() RETURNS trigger AS $$
BEGIN
    INSERT INTO documents (number_index, resident_id, doc_type, country, number_enc, created_at)
        VALUES (NEW.national_id_index, NEW.id, 'resident_id_card', NULL, NEW.national_id_enc, NEW.created_at);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER residents_legacy_document AFTER INSERT ON residents
    FOR EACH ROW WHEN (NEW.national_id_index IS NOT NULL)
    EXECUTE FUNCTION residents_legacy_document();

INSERT INTO documents (number_index, resident_id, doc_type, country, number_enc, created_at)
    SELECT national_id_index, id, 'resident_id_card', NULL, national_id_enc, created_at
    FROM residents WHERE national_id_index IS NOT NULL;

-- Last: ALTER TABLE takes an exclusive lock until commit, so it comes after
-- the backfill (during which the trigger's lock holds writers, not readers).
ALTER TABLE residents ALTER COLUMN national_id_enc DROP NOT NULL,
                      ALTER COLUMN national_id_index DROP NOT NULL;
