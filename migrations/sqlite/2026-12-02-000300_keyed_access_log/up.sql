-- The access log's chain becomes keyed (HMAC-SHA-256 under a key derived
-- from the master key). 1 = the old plain SHA-256 chain, re-keyed once by
-- the service at start-up or `healthcard migrate` (it needs the master key,
-- so it is not SQL); 2 = keyed. An empty log has nothing to re-key.
ALTER TABLE access_log_head ADD COLUMN chain_version INTEGER NOT NULL DEFAULT 1;
UPDATE access_log_head SET chain_version = 2 WHERE seq = 0;

-- Append-only: rows may change only while an old chain is being re-keyed.
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
WHEN (SELECT chain_version FROM access_log_head WHERE id = 1) >= 2
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: UPDATE refused');
END;

CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused');
END;

-- A keyed chain cannot be marked unkeyed again (that would reopen UPDATE).
CREATE TRIGGER access_log_head_no_downgrade BEFORE UPDATE OF chain_version ON access_log_head
WHEN NEW.chain_version < OLD.chain_version
BEGIN
    SELECT RAISE(ABORT, 'access_log_head: the chain version cannot go back');
END;

CREATE TRIGGER access_log_head_no_delete BEFORE DELETE ON access_log_head
BEGIN
    SELECT RAISE(ABORT, 'access_log_head: DELETE refused');
END;
