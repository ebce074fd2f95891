DROP TABLE kiosk_sessions;
DROP TABLE login_failures;
CREATE TABLE login_failures (
    username TEXT PRIMARY KEY NOT NULL,
    count    BIGINT NOT NULL,
    last_at  TIMESTAMP NOT NULL
);
ALTER TABLE admins DROP COLUMN disabled_at;
