-- Each signing key has one algorithm (issue 17). Keys made before this
-- migration are all Ed25519, which the default records.
ALTER TABLE signing_keys
    ADD COLUMN alg TEXT NOT NULL DEFAULT 'ed25519' CHECK (alg IN ('ed25519', 'es256', 'sm2'));
