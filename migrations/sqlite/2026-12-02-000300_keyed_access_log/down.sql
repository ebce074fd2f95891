DROP TRIGGER access_log_head_no_delete;
DROP TRIGGER access_log_head_no_downgrade;
DROP TRIGGER access_log_no_delete;
DROP TRIGGER access_log_no_update;
ALTER TABLE access_log_head DROP COLUMN chain_version;
