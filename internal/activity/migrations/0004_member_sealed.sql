-- A member's linked events are their personal data: each value is sealed
-- with the member's key for its category (internal/door), so destroying
-- the keys at erasure leaves only ciphertext in freed pages, the WAL, dead
-- tuples and backups. The plaintext columns stay, always '' once existing
-- rows are re-sealed at start-up (activity.Reseal), until a later release
-- drops them.
ALTER TABLE activity_member_events ADD COLUMN page_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN query_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN referrer_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN search_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN link_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN asset_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN name_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN props_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN country_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN region_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN city_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN browser_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN os_sealed BYTEA;
ALTER TABLE activity_member_events ADD COLUMN screen_sealed BYTEA;
