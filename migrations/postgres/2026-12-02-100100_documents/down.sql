-- Fails (and changes nothing) once a resident has no citizen number.
DROP TRIGGER residents_legacy_document ON residents;
DROP FUNCTION residents_legacy_document();
UPDATE residents r SET
    national_id_enc = d.number_enc,
    national_id_index = d.number_index
    FROM documents d
    WHERE d.resident_id = r.id AND r.national_id_index IS NULL
      AND d.doc_type IN ('resident_id_card', 'household_register');
ALTER TABLE residents ALTER COLUMN national_id_enc SET NOT NULL,
                      ALTER COLUMN national_id_index SET NOT NULL;
DROP TABLE documents;
