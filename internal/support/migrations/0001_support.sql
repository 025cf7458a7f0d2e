-- Support requests: what a person asked, when, over which channel, its
-- status and the staff member it is assigned to. The title, like every
-- exchange and file of the request, is sealed under the request's own key
-- (an item key wrapped by the requester's key for the support category),
-- so erasing one request shreds every copy of it.
CREATE TABLE support_requests (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	title_sealed BYTEA,
	channel TEXT NOT NULL CHECK (channel IN ('web', 'mail', 'phone')),
	status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
	assignee TEXT NOT NULL DEFAULT '',
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	closed_at TIMESTAMP
);
CREATE INDEX support_requests_subject ON support_requests (subject_id);
CREATE INDEX support_requests_queue ON support_requests (status, updated_at, id);
-- The staff queue's default view: every request not closed, the longest
-- waiting first.
CREATE INDEX support_requests_waiting ON support_requests (updated_at, id) WHERE status <> 'closed';

-- The exchanges of a request, in both directions: what the requester
-- wrote (web, mail, or a call staff recorded) and what staff answered.
-- For mail, the sender checks a relay in front passed on (SPF, DKIM,
-- DMARC) are kept as it gave them.
CREATE TABLE support_messages (
	id TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
	channel TEXT NOT NULL CHECK (channel IN ('web', 'mail', 'phone')),
	staff_id TEXT NOT NULL DEFAULT '',
	body_sealed BYTEA,
	spf TEXT NOT NULL DEFAULT '',
	dkim TEXT NOT NULL DEFAULT '',
	dmarc TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX support_messages_request ON support_messages (request_id, created_at);
CREATE INDEX support_messages_subject ON support_messages (subject_id);

-- Files of an exchange: attachments, and recordings of calls with the time
-- the caller was told the call is recorded. The file is in blob storage,
-- sealed as a stream under the request's key; the row keeps its name
-- (sealed), type and size.
CREATE TABLE support_files (
	id TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('attachment', 'recording')),
	name_sealed BYTEA,
	mime TEXT NOT NULL,
	size BIGINT NOT NULL,
	blob TEXT NOT NULL,
	notice_given_at TIMESTAMP,
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX support_files_message ON support_files (message_id);
CREATE INDEX support_files_subject ON support_files (subject_id);

-- Mail and web requests from someone who has not yet proved their address,
-- and mail that could not be threaded (a reply address that does not
-- verify, a sender who is not the requester). Held sealed under a key of
-- its own per row, with the reason, until the sender confirms or the time
-- is up; the sender is known only by the blind index of their address.
CREATE TABLE support_quarantine (
	id TEXT PRIMARY KEY,
	reason TEXT NOT NULL,
	sender_index BYTEA,
	draft_sealed BYTEA,
	blob TEXT NOT NULL DEFAULT '',
	size BIGINT NOT NULL DEFAULT 0,
	received_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	mailed_at TIMESTAMP
);
CREATE INDEX support_quarantine_sender ON support_quarantine (sender_index);
CREATE INDEX support_quarantine_expires ON support_quarantine (expires_at);
