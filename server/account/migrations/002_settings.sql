-- Per-account privacy and mail settings. No visitor data.
CREATE TABLE account_settings (
	account_id TEXT PRIMARY KEY REFERENCES accounts(id),
	transcripts_enabled INTEGER NOT NULL DEFAULT 0,
	-- JSON array of e-mail addresses for transcripts and offline messages
	recipients TEXT NOT NULL DEFAULT '[]',
	hide_visitor_ip INTEGER NOT NULL DEFAULT 0,
	-- 1 opportunistic, 2 mandatory
	mail_tls_policy INTEGER NOT NULL DEFAULT 1,
	idle_timeout_seconds INTEGER NOT NULL DEFAULT 600
);
