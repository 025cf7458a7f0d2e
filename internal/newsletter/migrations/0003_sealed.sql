-- Free text about a person is sealed with their key: the page a
-- subscription form was on, and the link a tracked click followed. The
-- plaintext columns stay, always empty once existing rows are re-sealed at
-- start-up (Service.Reseal), until a later release drops them.
ALTER TABLE newsletter_subscriptions ADD COLUMN source_page_sealed BYTEA;
ALTER TABLE newsletter_events ADD COLUMN url_sealed BYTEA;
