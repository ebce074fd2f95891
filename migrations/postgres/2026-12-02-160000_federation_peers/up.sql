-- Federation (issue 18): what this (home) node knows about each peer city,
-- by issuer code: the disclosure policy its operator set for it
-- (`healthcard federation peer set`) and the peer's stand-in clinic, the
-- local clinics row its resolutions are judged, logged and counted under.
-- The stand-in is found by this column, never by its code, so no clinic
-- that happens to be called `fed-...` can be taken for a peer. A new table
-- only (expand): nodes of the previous release never read it.
CREATE TABLE federation_peers (
    issuer     TEXT PRIMARY KEY NOT NULL,
    disclosure TEXT NOT NULL,
    clinic_id  TEXT REFERENCES clinics (id),
    updated_at TIMESTAMP NOT NULL
);
