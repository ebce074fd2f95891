-- FHIR (issue 16). A clinic's own merge of two of its numbers (PIXm ITI-104
-- with active false and link replaced-by): the number that replaces this one.
ALTER TABLE links ADD COLUMN replaced_by TEXT;
-- PDQm demographic search: names are stored in clear (only the ID number and
-- the phone are sealed), so a family-name prefix is found by index. SQLite's
-- LIKE uses an index only when the index is NOCASE.
CREATE INDEX residents_name_prefix ON residents (name COLLATE NOCASE);
CREATE INDEX residents_birth_date ON residents (birth_date);
