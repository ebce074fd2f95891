-- The access log's chain becomes keyed (HMAC-SHA-256 under a key derived
-- from the master key). 1 = the old plain SHA-256 chain, re-keyed once by
-- the service at start-up or `healthcard migrate` (it needs the master key,
-- so it is not SQL); 2 = keyed. An empty log has nothing to re-key.
ALTER TABLE access_log_head ADD COLUMN chain_version INTEGER NOT NULL DEFAULT 1;
UPDATE access_log_head SET chain_version = 2 WHERE seq = 0;

-- Append-only: rows may change only while an old chain is being re-keyed;
-- DELETE and TRUNCATE never.
CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (SELECT chain_version FROM access_log_head WHERE id = 1) < 2 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '%: append-only, % refused', TG_TABLE_NAME, TG_OP;
END
$$;

CREATE TRIGGER access_log_no_change BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only();

-- The head: never deleted, and a keyed chain cannot be marked unkeyed
-- again (that would reopen UPDATE). Appends do not set chain_version, so
-- the UPDATE OF trigger does not fire on them.
CREATE FUNCTION access_log_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log_head: % refused', TG_OP;
END
$$;

CREATE TRIGGER access_log_head_no_downgrade BEFORE UPDATE OF chain_version ON access_log_head
    FOR EACH ROW WHEN (NEW.chain_version < OLD.chain_version)
    EXECUTE FUNCTION access_log_head_guard();
CREATE TRIGGER access_log_head_no_delete BEFORE DELETE ON access_log_head
    FOR EACH ROW EXECUTE FUNCTION access_log_head_guard();
CREATE TRIGGER access_log_head_no_truncate BEFORE TRUNCATE ON access_log_head
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_head_guard();
