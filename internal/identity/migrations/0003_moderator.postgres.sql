-- A staff role for moderators of what members post.
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check CHECK (role IN ('', 'admin', 'privacy', 'support', 'analyst', 'moderator'));
