-- The custom data keys (never values) that arrived for an account, for the
-- data inventory ("custom data keys received in the last 24 hours"). Keys
-- are named by the integrator's page or back end, not by visitors; a row is
-- written at most once an hour per account and key and pruned two days after
-- the key was last seen.
CREATE TABLE monitor_custom_keys (
	account_id TEXT NOT NULL,
	key TEXT NOT NULL,
	last_seen INTEGER NOT NULL,           -- unix ms, at most an hour stale
	PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
CREATE INDEX monitor_custom_keys_seen_idx ON monitor_custom_keys(last_seen);
