-- What the subject wrote in a request (their reason, the corrections they
-- asked for) is sealed with their key for the category of field
-- support_request. The plaintext columns stay, always empty ('' and '{}')
-- once existing rows are re-sealed at start-up, until a later release
-- drops them. An account erasure clears the sealed values and destroys
-- the key, and keeps the record that the request was answered.
ALTER TABLE rights_requests ADD COLUMN reason_sealed BYTEA;
ALTER TABLE rights_requests ADD COLUMN corrections_sealed BYTEA;
