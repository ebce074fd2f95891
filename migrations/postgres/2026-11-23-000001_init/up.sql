-- healthcard schema, PostgreSQL flavour. Keep in step with ../../sqlite (same
-- tables, columns and indexes; only the types' spelling differs).
-- UUIDs are TEXT, times are UTC TIMESTAMP without zone, bytes are BYTEA.

CREATE TABLE residents (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    national_id_enc   BYTEA NOT NULL,
    national_id_index BYTEA NOT NULL,
    sex               TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    birth_date        DATE NOT NULL,
    phone_enc         BYTEA,
    created_at        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX residents_national_id_index_key ON residents (national_id_index);

CREATE TABLE cards (
    id                TEXT PRIMARY KEY NOT NULL,
    resident_id       TEXT NOT NULL REFERENCES residents (id),
    status            TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked', 'replaced')),
    issued_at         TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NOT NULL,
    status_reason     TEXT,
    replaced_by       TEXT REFERENCES cards (id) DEFERRABLE INITIALLY DEFERRED,
    holder_hash       BYTEA NOT NULL
);
CREATE UNIQUE INDEX cards_holder_hash_key ON cards (holder_hash);
CREATE INDEX cards_resident_id ON cards (resident_id);
-- The one-card rule: at most one live (active or suspended) card per resident.
CREATE UNIQUE INDEX cards_one_live_per_resident ON cards (resident_id)
    WHERE status IN ('active', 'suspended');

-- Named monotonic counters whose row lock serializes writers (see docs/storage.md).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('card_events', 0);

CREATE TABLE card_events (
    seq     BIGINT PRIMARY KEY NOT NULL,
    card_id TEXT NOT NULL REFERENCES cards (id),
    status  TEXT NOT NULL,
    at      TIMESTAMP NOT NULL
);

CREATE TABLE clinics (
    id         TEXT PRIMARY KEY NOT NULL,
    code       TEXT NOT NULL,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX clinics_code_key ON clinics (code);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY NOT NULL,
    clinic_id  TEXT NOT NULL REFERENCES clinics (id),
    key_hash   BYTEA NOT NULL,
    hint       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_clinic_id ON api_keys (clinic_id);

CREATE TABLE links (
    clinic_id        TEXT NOT NULL REFERENCES clinics (id),
    local_patient_id TEXT NOT NULL,
    resident_id      TEXT NOT NULL REFERENCES residents (id),
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (clinic_id, local_patient_id)
);
CREATE INDEX links_resident_clinic ON links (resident_id, clinic_id);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY NOT NULL,
    public_key     BYTEA NOT NULL,
    sealed_private BYTEA NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('active', 'retired', 'revoked')),
    created_at     TIMESTAMP NOT NULL,
    retired_at     TIMESTAMP,
    revoked_at     TIMESTAMP
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

CREATE TABLE admins (
    id           TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL,
    password_phc TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX admins_username_key ON admins (username);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY NOT NULL,
    admin_id   TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE login_failures (
    username TEXT PRIMARY KEY NOT NULL,
    count    BIGINT NOT NULL,
    last_at  TIMESTAMP NOT NULL
);

CREATE TABLE replay (
    token_id   BYTEA PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX replay_expires_at ON replay (expires_at);

CREATE TABLE access_log (
    seq         BIGINT PRIMARY KEY NOT NULL,
    at          TIMESTAMP NOT NULL,
    actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('admin', 'clinic', 'holder', 'system')),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    card_id     TEXT,
    resident_id TEXT,
    clinic_id   TEXT,
    channel     TEXT,
    outcome     TEXT,
    detail      TEXT,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL
);
CREATE INDEX access_log_card ON access_log (card_id, seq);
CREATE INDEX access_log_resident ON access_log (resident_id, seq);

-- One row: the chain head. Every append updates it first, which serializes appends.
CREATE TABLE access_log_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO access_log_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
