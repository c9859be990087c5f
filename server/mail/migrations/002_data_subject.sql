-- Whom a waiting mail is about: the hex SHA-256 of the visitor's e-mail
-- address, trimmed and lower-cased ('' when none), never the address itself,
-- so that an admin's request by e-mail address (lethe.privacy.v1) finds the
-- mail while it waits.
ALTER TABLE mail_queue ADD COLUMN data_subject TEXT NOT NULL DEFAULT '';
CREATE INDEX mail_queue_subject ON mail_queue(account_id, data_subject);
