-- Federation (issue 18): this city's node key, the nonces of node-to-node
-- requests, and what a visiting node keeps about foreign cards. Only new
-- tables: nodes of the previous release never touch them (expand only).

-- The key this city's nodes sign federation requests with (Ed25519, its
-- private half sealed under the master key like the signing keys). Shared
-- by every node of the city; the oldest row is the one in use.
CREATE TABLE node_keys (
    kid            TEXT PRIMARY KEY NOT NULL,
    public_key     BYTEA NOT NULL,
    sealed_private BYTEA NOT NULL,
    created_at     TIMESTAMP NOT NULL
);

-- Nonces of signed node-to-node requests, kept until the request could no
-- longer be accepted anyway (its created time plus the allowed age).
CREATE TABLE federation_nonces (
    nonce      TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX federation_nonces_expires_at ON federation_nonces (expires_at);

-- Foreign cards this node has verified for its clinics: which issuer and
-- which of its residents, and the last status the home node reported.
CREATE TABLE foreign_cards (
    card_id     TEXT PRIMARY KEY NOT NULL,
    issuer      TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    seen_at     TIMESTAMP NOT NULL
);
CREATE INDEX foreign_cards_issuer ON foreign_cards (issuer);

-- Status changes of foreign cards, numbered by the same counter as
-- card_events, so that /api/v1/revocations has one cursor for both.
CREATE TABLE foreign_card_events (
    seq     BIGINT PRIMARY KEY NOT NULL,
    card_id TEXT NOT NULL,
    issuer  TEXT NOT NULL,
    status  TEXT NOT NULL,
    at      TIMESTAMP NOT NULL
);

-- How far this node has read each home node's revocation feed.
CREATE TABLE federation_cursors (
    issuer TEXT PRIMARY KEY NOT NULL,
    cursor TEXT NOT NULL
);

-- A clinic's own number for a foreign resident, kept at the visiting node,
-- keyed by issuer and the home node's resident id.
CREATE TABLE foreign_links (
    clinic_id        TEXT NOT NULL REFERENCES clinics (id),
    local_patient_id TEXT NOT NULL,
    issuer           TEXT NOT NULL,
    resident_id      TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (clinic_id, local_patient_id)
);
CREATE UNIQUE INDEX foreign_links_resident ON foreign_links (clinic_id, issuer, resident_id);
