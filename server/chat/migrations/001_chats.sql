-- Open chats and everything visitors said in them. Lives in scratch.db
-- (secure_delete on); every row of a chat is deleted when it is destroyed.
CREATE TABLE visitors (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL,
	-- SHA-256 of the bearer token; the token itself is never stored.
	token_hash BLOB NOT NULL UNIQUE,
	name TEXT NOT NULL,
	email TEXT NOT NULL DEFAULT '',
	-- Empty when the account hides IP and host (P5).
	ip TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	-- Where the visitor asked a transcript copy to go.
	transcript_email TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);

CREATE TABLE chats (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL,
	visitor_id TEXT NOT NULL REFERENCES visitors(id),
	-- 1 waiting, 2 active, 3 closed (destruction pending)
	state INTEGER NOT NULL,
	operator_id TEXT NOT NULL DEFAULT '',
	operator_name TEXT NOT NULL DEFAULT '',
	last_seq INTEGER NOT NULL DEFAULT 0,
	started_at INTEGER NOT NULL,
	closed_at INTEGER NOT NULL DEFAULT 0,
	-- Which consent version the visitor accepted, in which locale, when.
	consent_version INTEGER NOT NULL DEFAULT 0,
	consent_locale TEXT NOT NULL DEFAULT '',
	consent_at INTEGER NOT NULL DEFAULT 0,
	-- When the visitor was last seen (idle timeout).
	visitor_seen_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chats_account_state ON chats(account_id, state);
CREATE INDEX chats_state ON chats(state);

-- Stored chat events (lethe.chat.v1.ChatEvent, protobuf-encoded), one per
-- per-chat sequence number.
CREATE TABLE events (
	chat_id TEXT NOT NULL REFERENCES chats(id),
	seq INTEGER NOT NULL,
	body BLOB NOT NULL,
	PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
