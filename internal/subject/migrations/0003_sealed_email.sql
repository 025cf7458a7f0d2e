-- Every personal value at rest is sealed with its subject's key: the
-- address moves to email_sealed, and lookups by address use email_index, a
-- keyed blind index (an HMAC of the normalised address under a key derived
-- from the master key). Destroying the subject's keys leaves only
-- ciphertext and a digest in every copy of the database. The plaintext
-- column stays, always empty once existing rows are re-sealed at start-up,
-- until a later release drops it.
ALTER TABLE subjects ADD COLUMN email_sealed BYTEA;
ALTER TABLE subjects ADD COLUMN email_index BYTEA;
CREATE UNIQUE INDEX subjects_email_index ON subjects (email_index);
