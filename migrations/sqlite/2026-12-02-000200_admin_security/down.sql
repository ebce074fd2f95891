DROP TABLE kiosk_sessions;
DROP INDEX login_failures_last_at;
DROP TABLE login_throttle;
ALTER TABLE admins DROP COLUMN disabled_at;
