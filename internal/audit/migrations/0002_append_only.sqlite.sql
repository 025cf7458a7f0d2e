-- Refuse updates and deletes of audit entries: a guard against mistakes
-- and casual edits (whoever can drop a trigger can still tamper; the hash
-- chain is what detects that).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
