-- Families (issue 15): who is whose guardian. A row is never deleted: an end
-- (removal by the card office, a minor's 18th birthday) is written on it, so
-- the history stays. `relation` says what the guardian is to the dependant.
-- Consent (an adult dependant's) is attested by an administrator: who, when.
CREATE TABLE guardians (
    id TEXT PRIMARY KEY NOT NULL,
    dependant_id TEXT NOT NULL REFERENCES residents (id),
    guardian_id TEXT NOT NULL REFERENCES residents (id),
    relation TEXT NOT NULL,
    consent_by TEXT,
    consent_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    end_reason TEXT,
    CHECK (dependant_id <> guardian_id)
);
-- One open guardianship per pair; the dependant's and the guardian's side
-- are each read by index.
CREATE UNIQUE INDEX guardians_open_pair ON guardians (dependant_id, guardian_id)
    WHERE ended_at IS NULL;
CREATE INDEX guardians_guardian ON guardians (guardian_id);
-- Every change of guardianship takes this counter's row lock first: the
-- rules (at most four, no cycles) read other rows and hold across nodes.
INSERT INTO counters (name, value) VALUES ('guardians', 0);
