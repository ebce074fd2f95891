DROP TABLE card_use_daily;
ALTER TABLE access_log DROP COLUMN step;
