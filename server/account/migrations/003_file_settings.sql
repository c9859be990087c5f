-- Per-account settings of files in chats (lethe.files.v1). 0 means the
-- server's limit; file_categories is a JSON array of FileCategory numbers,
-- empty meaning the default set.
ALTER TABLE account_settings ADD COLUMN files_disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_settings ADD COLUMN max_file_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_settings ADD COLUMN max_chat_file_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_settings ADD COLUMN file_categories TEXT NOT NULL DEFAULT '[]';
