-- The audit trail (P13): ids, action names, setting names, counts, receipt
-- ids and network prefixes only; never what anyone wrote.
CREATE TABLE audit_log (
	seq INTEGER PRIMARY KEY,
	account_id TEXT NOT NULL,
	-- unix milliseconds
	at INTEGER NOT NULL,
	actor_kind TEXT NOT NULL,
	actor_id TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL,
	target_id TEXT NOT NULL DEFAULT '',
	-- JSON array of setting names
	fields TEXT NOT NULL DEFAULT '[]',
	count INTEGER NOT NULL DEFAULT 0,
	receipt_id TEXT NOT NULL DEFAULT '',
	network TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	-- The unix hour of a counted entry (Count), 0 for any other: one row per
	-- account, action and hour.
	hour INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX audit_log_account ON audit_log(account_id, seq);
CREATE UNIQUE INDEX audit_log_hourly ON audit_log(account_id, action, hour) WHERE hour > 0;
CREATE INDEX audit_log_actor ON audit_log(account_id, actor_id, seq);
CREATE INDEX audit_log_target ON audit_log(account_id, target_id, seq);
CREATE INDEX audit_log_at ON audit_log(account_id, at);
