-- Outgoing mail (chat transcripts, offline messages). Lives in scratch.db
-- (secure_delete on) because it carries what visitors wrote; a row is deleted
-- and the WAL checkpointed as soon as the mail server accepts the message, or
-- when the maximum hold has passed.
CREATE TABLE mail_queue (
	id TEXT PRIMARY KEY,
	-- Owner's reference ("chat:<id>", "offline:<id>"), handed back in callbacks.
	ref TEXT NOT NULL,
	account_id TEXT NOT NULL,
	-- JSON array of addresses.
	recipients TEXT NOT NULL,
	subject TEXT NOT NULL,
	text_body TEXT NOT NULL,
	html_body TEXT NOT NULL,
	-- 1: never send in clear text (STARTTLS mandatory).
	require_tls INTEGER NOT NULL,
	-- Unix milliseconds.
	created_at INTEGER NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL
);
CREATE INDEX mail_queue_next ON mail_queue(next_attempt);
CREATE INDEX mail_queue_created ON mail_queue(created_at);
CREATE INDEX mail_queue_ref ON mail_queue(ref);
