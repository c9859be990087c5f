-- Consent texts (every version kept, so what a visitor accepted is known)
-- and acceptance counts. Lives in lethe.db: no visitor data, counts only.
CREATE TABLE consent_texts (
	account_id TEXT NOT NULL,
	form INTEGER NOT NULL,
	locale TEXT NOT NULL,
	version INTEGER NOT NULL,
	text TEXT NOT NULL,
	required INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (account_id, form, locale, version)
);

CREATE TABLE consent_counts (
	account_id TEXT NOT NULL,
	form INTEGER NOT NULL,
	locale TEXT NOT NULL,
	version INTEGER NOT NULL,
	accepted INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (account_id, form, locale, version)
);
