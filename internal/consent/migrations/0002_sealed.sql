-- Every personal value of the ledger is sealed with the subject's key for
-- the category of field consent: the purpose, the list scope, where the
-- choice was made, the browser family, the network and the signed
-- receipt. The purpose and the scope are found by a keyed blind index (an
-- HMAC under a key derived from the master key), never by their text.
-- State and method hold only values code writes, checked, and stay in
-- plaintext. The plaintext columns stay, always empty once existing rows
-- are re-sealed at start-up, until a later release drops them. An erasure
-- keeps the ledger as proof, and so keeps the key that opens it.
ALTER TABLE consent_records ADD COLUMN purpose_sealed BYTEA;
ALTER TABLE consent_records ADD COLUMN purpose_index BYTEA;
ALTER TABLE consent_records ADD COLUMN scope_sealed BYTEA;
ALTER TABLE consent_records ADD COLUMN scope_index BYTEA;
ALTER TABLE consent_records ADD COLUMN collection_point_sealed BYTEA;
ALTER TABLE consent_records ADD COLUMN ua_family_sealed BYTEA;
ALTER TABLE consent_records ADD COLUMN network_sealed BYTEA;
ALTER TABLE consent_records ADD COLUMN receipt_sealed BYTEA;

DROP INDEX consent_records_subject;
CREATE INDEX consent_records_purpose ON consent_records (subject_id, purpose_index, created_at);
