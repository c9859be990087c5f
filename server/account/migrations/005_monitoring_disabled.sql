-- No monitoring before the click (issue 8): the widget loader sends nothing
-- until the visitor opens the chat.
ALTER TABLE account_settings ADD COLUMN monitoring_disabled INTEGER NOT NULL DEFAULT 0;
