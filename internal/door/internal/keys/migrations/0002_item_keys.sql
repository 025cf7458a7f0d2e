-- One data key per erasable item (a comment, a photo, an attachment),
-- wrapped by the subject's data key of the item's category: destroying the
-- item's key shreds that item alone (in every copy), destroying the
-- category key shreds all of the subject's items of that category.
CREATE TABLE item_keys (
	subject_id TEXT NOT NULL,
	category TEXT NOT NULL,
	item TEXT NOT NULL,
	wrapped BYTEA,
	created_at TIMESTAMP NOT NULL,
	destroyed_at TIMESTAMP,
	PRIMARY KEY (subject_id, category, item)
);
