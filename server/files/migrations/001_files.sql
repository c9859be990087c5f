-- Files of open chats (scratch.db). Every row dies with its chat: the key
-- first (cryptographic erase), then the ciphertext beside the database,
-- then these rows.

-- One AES-256 key per chat that has files; it exists only here.
CREATE TABLE file_keys (
	chat_id    TEXT PRIMARY KEY,
	key        BLOB NOT NULL,
	created_at INTEGER NOT NULL
);

-- Uploads in progress. size is the declared (exact) size; content_type is
-- set when the chunk at offset 0 arrives and its type is allowed.
CREATE TABLE file_uploads (
	id            TEXT PRIMARY KEY,
	chat_id       TEXT NOT NULL,
	account_id    TEXT NOT NULL,
	uploader_kind INTEGER NOT NULL,
	uploader_id   TEXT NOT NULL,
	uploader_name TEXT NOT NULL,
	name          TEXT NOT NULL,
	size          INTEGER NOT NULL,
	content_type  TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	touched_at    INTEGER NOT NULL
);
CREATE INDEX file_uploads_chat ON file_uploads (chat_id, size);
CREATE INDEX file_uploads_touched ON file_uploads (touched_at);

-- The chunks of an upload that arrived (index = offset / chunk size).
CREATE TABLE file_chunks (
	upload_id TEXT NOT NULL REFERENCES file_uploads (id) ON DELETE CASCADE,
	idx       INTEGER NOT NULL,
	PRIMARY KEY (upload_id, idx)
) WITHOUT ROWID;

-- Finished files. The id is the upload's, so the ciphertext (bound to it)
-- stays where it is.
CREATE TABLE files (
	id            TEXT PRIMARY KEY,
	chat_id       TEXT NOT NULL,
	account_id    TEXT NOT NULL,
	uploader_kind INTEGER NOT NULL,
	uploader_id   TEXT NOT NULL,
	uploader_name TEXT NOT NULL,
	name          TEXT NOT NULL,
	size          INTEGER NOT NULL,
	content_type  TEXT NOT NULL,
	sha256        TEXT NOT NULL,
	created_at    INTEGER NOT NULL
);
CREATE INDEX files_chat ON files (chat_id, size);
