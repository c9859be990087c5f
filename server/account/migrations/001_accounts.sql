-- Accounts (tenants) and their operators. Durable; never visitor data.
CREATE TABLE accounts (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	-- JSON array of website origins where the widget may be embedded;
	-- "self" means the Lethe server's own origin (the demo page).
	allowed_origins TEXT NOT NULL DEFAULT '[]',
	created_at INTEGER NOT NULL
);

CREATE TABLE operators (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts(id),
	email TEXT NOT NULL COLLATE NOCASE UNIQUE,
	name TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	role INTEGER NOT NULL,
	disabled INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);
CREATE INDEX operators_account ON operators(account_id);
