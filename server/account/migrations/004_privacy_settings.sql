-- Global Privacy Control and the audit trail's retention (lethe.privacy.v1).
-- gpc_ignored_reason is the admin's explanation, shown in the data
-- inventory ('' while GPC is honoured); audit_retention_days 0 means 90.
ALTER TABLE account_settings ADD COLUMN gpc_ignored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_settings ADD COLUMN gpc_ignored_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE account_settings ADD COLUMN audit_retention_days INTEGER NOT NULL DEFAULT 0;
