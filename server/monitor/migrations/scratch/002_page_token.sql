-- The loader on the host page holds a write-only page token (issue 8): only
-- its hash is stored, beside the visit token's. A visit the loader started
-- has a page token and, until the chat panel claims it, a visit token hash
-- of a token never handed out. Destroying the visit row destroys both.
ALTER TABLE monitor_visits ADD COLUMN page_hash BLOB;
CREATE UNIQUE INDEX monitor_visits_page_idx ON monitor_visits(page_hash) WHERE page_hash IS NOT NULL;
