-- Refuses to run while ES256 or SM2 keys exist would be kinder, but SQL has
-- no portable way to; dropping the column makes every key read as Ed25519,
-- so remove other keys first (their tokens then stop verifying).
ALTER TABLE signing_keys DROP COLUMN alg;
