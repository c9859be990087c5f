-- Account API keys in lethe.db: only the SHA-256 of a key is stored.
CREATE TABLE monitor_api_keys (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL,
	name TEXT NOT NULL,
	prefix TEXT NOT NULL,
	hash BLOB NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,          -- unix ms
	last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX monitor_api_keys_account_idx ON monitor_api_keys(account_id);
