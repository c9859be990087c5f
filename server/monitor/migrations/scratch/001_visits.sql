-- Visitor monitoring in scratch.db (secure_delete on). A visit's rows live
-- while the visitor is on site and for the retention window after they leave,
-- then they are deleted and the WAL truncated (P4).
CREATE TABLE monitor_visits (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL,
	token_hash BLOB NOT NULL UNIQUE,
	-- incremented on every change operators can see (ordering of updates)
	version INTEGER NOT NULL DEFAULT 1,
	first_seen INTEGER NOT NULL,          -- unix ms
	seen_at INTEGER NOT NULL,             -- last Track/Heartbeat/stream end, unix ms
	left_at INTEGER,                      -- NULL while on site
	page_seq INTEGER NOT NULL DEFAULT 0,
	browser TEXT NOT NULL DEFAULT '',
	browser_version TEXT NOT NULL DEFAULT '',
	os TEXT NOT NULL DEFAULT '',
	device TEXT NOT NULL DEFAULT '',
	city TEXT NOT NULL DEFAULT '',
	region TEXT NOT NULL DEFAULT '',
	country TEXT NOT NULL DEFAULT '',
	country_code TEXT NOT NULL DEFAULT '',
	postal_code TEXT NOT NULL DEFAULT '',
	isp TEXT NOT NULL DEFAULT '',
	-- empty when the account hides IP and host (P5)
	ip TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	inv_id TEXT NOT NULL DEFAULT '',
	inv_operator_id TEXT NOT NULL DEFAULT '',
	inv_operator_name TEXT NOT NULL DEFAULT '',
	inv_message TEXT NOT NULL DEFAULT '',
	inv_state INTEGER NOT NULL DEFAULT 0,
	inv_sent_at INTEGER NOT NULL DEFAULT 0,
	inv_answered_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX monitor_visits_account_idx ON monitor_visits(account_id, left_at);
CREATE INDEX monitor_visits_seen_idx ON monitor_visits(left_at, seen_at);

CREATE TABLE monitor_pages (
	visit_id TEXT NOT NULL REFERENCES monitor_visits(id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,
	url TEXT NOT NULL,
	title TEXT NOT NULL,
	referrer TEXT NOT NULL,
	viewed_at INTEGER NOT NULL,
	PRIMARY KEY (visit_id, seq)
);

CREATE TABLE monitor_custom_data (
	visit_id TEXT NOT NULL REFERENCES monitor_visits(id) ON DELETE CASCADE,
	verified INTEGER NOT NULL,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (visit_id, verified, key)
);

-- Tickets minted by integrators: only the hash of the ticket is stored; the
-- data is cleared when the ticket is used or expires, and the row is deleted
-- some minutes after expiry.
CREATE TABLE monitor_tickets (
	hash BLOB PRIMARY KEY,
	account_id TEXT NOT NULL,
	key_id TEXT NOT NULL,
	data TEXT,                            -- JSON object; NULL once used or expired
	expires_at INTEGER NOT NULL,          -- unix ms
	used_at INTEGER
);
CREATE INDEX monitor_tickets_expires_idx ON monitor_tickets(expires_at);
