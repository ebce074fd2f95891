-- Merges (issue 14): a temporary or duplicate resident merged into the real
-- one by an administrator. Irreversible: a row is never updated or deleted.
-- One row per source (its key), so a record is merged at most once, across
-- nodes, by the key alone; the target's side is read by index.
CREATE TABLE resident_merges (
    source_id TEXT PRIMARY KEY NOT NULL REFERENCES residents (id),
    into_id TEXT NOT NULL REFERENCES residents (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    CHECK (source_id <> into_id)
);
CREATE INDEX resident_merges_into ON resident_merges (into_id);
