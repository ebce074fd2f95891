-- Temporary cards (issue 14, 临时卡): a card issued by a clinic to a patient
-- without any document. Expand only: a new table beside cards, which running
-- nodes of the previous release never read (their verification sees an
-- ordinary active card; see docs/storage.md for why that is acceptable only
-- during a rolling upgrade). One row per temporary card.
--   issuing_clinic_id  the only clinic where the card verifies
--   valid_until        after it the card answers card_expired
--   name_known         false: the patient's name is unknown (shown as 无名氏;
--                      residents.name then holds that display text)
--   birth_year         approximate, NULL when not even that is known
--                      (residents.birth_date holds 1 January of it, or of the
--                      year of issue, as a stand-in for the NOT NULL column)
--   note_enc           the clinic's free-text note, sealed like a phone number
CREATE TABLE temporary_cards (
    card_id           TEXT PRIMARY KEY NOT NULL REFERENCES cards (id),
    resident_id       TEXT NOT NULL REFERENCES residents (id),
    issuing_clinic_id TEXT NOT NULL REFERENCES clinics (id),
    valid_until       TIMESTAMP NOT NULL,
    name_known        BOOLEAN NOT NULL,
    birth_year        INTEGER,
    note_enc          BYTEA,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX temporary_cards_valid_until ON temporary_cards (valid_until);
CREATE INDEX temporary_cards_resident ON temporary_cards (resident_id);
