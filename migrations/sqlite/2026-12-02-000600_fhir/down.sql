DROP INDEX residents_birth_date;
DROP INDEX residents_name_prefix;
ALTER TABLE links DROP COLUMN replaced_by;
