-- What members post: comments and posts, each sealed under a key of its
-- own (an item key wrapped by the author's key for the item's category),
-- so erasing one item shreds every copy of it. The thread is the site's
-- own page the item belongs to; the parent is the item it answers, and
-- stays as a bare id when that item is erased. A comment left with an
-- email address alone waits (pending) until the link mailed to it is
-- followed, and carries the name its author gave (sealed with the text).
CREATE TABLE content_items (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('comment', 'post')),
	site TEXT NOT NULL,
	thread TEXT NOT NULL,
	parent_id TEXT NOT NULL DEFAULT '',
	body_sealed BYTEA,
	author_name_sealed BYTEA,
	visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
	status TEXT NOT NULL DEFAULT 'visible' CHECK (status IN ('pending', 'visible', 'hidden', 'removed')),
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL,
	edited_at TIMESTAMP
);
CREATE INDEX content_items_subject ON content_items (subject_id);
CREATE INDEX content_items_thread ON content_items (site, thread, created_at);

-- Photos and videos attached to an item, and a member's profile picture
-- (kind picture, no item). The file itself is in blob storage under blob
-- (and its thumbnail under thumb), sealed as a stream under the file's own
-- item key; its metadata was stripped before sealing.
CREATE TABLE content_files (
	id TEXT PRIMARY KEY,
	item_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('photo', 'video', 'picture')),
	name_sealed BYTEA,
	mime TEXT NOT NULL,
	size BIGINT NOT NULL,
	width INTEGER NOT NULL DEFAULT 0,
	height INTEGER NOT NULL DEFAULT 0,
	blob TEXT NOT NULL,
	thumb TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX content_files_item ON content_files (item_id);
CREATE INDEX content_files_subject ON content_files (subject_id);

-- Reports from anyone: which item and why (a fixed reason). Nothing of
-- the reporter is kept.
CREATE TABLE content_reports (
	id TEXT PRIMARY KEY,
	item_id TEXT NOT NULL,
	reason TEXT NOT NULL CHECK (reason IN ('spam', 'abuse', 'illegal', 'privacy', 'other')),
	created_at TIMESTAMP NOT NULL,
	resolved_at TIMESTAMP
);
CREATE INDEX content_reports_item ON content_reports (item_id);

-- Moderation decisions, each told to the author: the action, a fixed
-- reason and the moderator's note, sealed under the item's key.
CREATE TABLE content_actions (
	id TEXT PRIMARY KEY,
	item_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	staff_id TEXT NOT NULL,
	action TEXT NOT NULL CHECK (action IN ('hide', 'restore', 'remove')),
	reason TEXT NOT NULL CHECK (reason IN ('spam', 'abuse', 'illegal', 'privacy', 'other')),
	note_sealed BYTEA,
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX content_actions_subject ON content_actions (subject_id);
CREATE INDEX content_actions_item ON content_actions (item_id);

-- A member's choice of who sees what they post when they do not say.
CREATE TABLE content_settings (
	subject_id TEXT PRIMARY KEY,
	default_visibility TEXT NOT NULL CHECK (default_visibility IN ('public', 'private')),
	updated_at TIMESTAMP NOT NULL
);
