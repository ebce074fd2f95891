DROP TRIGGER access_log_head_no_truncate ON access_log_head;
DROP TRIGGER access_log_head_no_delete ON access_log_head;
DROP TRIGGER access_log_head_no_downgrade ON access_log_head;
DROP FUNCTION access_log_head_guard();
DROP TRIGGER access_log_no_truncate ON access_log;
DROP TRIGGER access_log_no_change ON access_log;
DROP FUNCTION access_log_append_only();
ALTER TABLE access_log_head DROP COLUMN chain_version;
