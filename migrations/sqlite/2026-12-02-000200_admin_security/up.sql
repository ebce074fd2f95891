-- Administrators can be disabled (their sessions stop at once: the session
-- look-up joins on this column); sign-in failures are counted per source
-- address and username, per source and per username (docs/operations.md,
-- "Sign-in throttling"); kiosks hold a server-side session instead of the
-- clinic's API key.

ALTER TABLE admins ADD COLUMN disabled_at TIMESTAMP;

-- Replaces login_failures (per username only), which stays for nodes of the
-- previous version during a rolling upgrade (expand, then contract: a later
-- migration drops it); housekeeping purges its old rows meanwhile.
-- Three kinds of row: (source, username) for a pair, (source, '*')
-- for a source across usernames, ('*', username) for a username across
-- sources. '*' is neither an address nor a valid username.
CREATE TABLE login_throttle (
    source   TEXT NOT NULL,
    username TEXT NOT NULL,
    count    BIGINT NOT NULL,
    last_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (source, username)
);
CREATE INDEX login_throttle_username ON login_throttle (username);
CREATE INDEX login_throttle_last_at ON login_throttle (last_at);
CREATE INDEX login_failures_last_at ON login_failures (last_at);

CREATE TABLE kiosk_sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    clinic_id  TEXT NOT NULL REFERENCES clinics (id),
    api_key_id TEXT NOT NULL REFERENCES api_keys (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX kiosk_sessions_api_key_id ON kiosk_sessions (api_key_id);
CREATE INDEX kiosk_sessions_expires_at ON kiosk_sessions (expires_at);
