-- The janitor expires unanswered invitations with
-- "WHERE inv_state = ? AND inv_sent_at < ?": through this index it reads the
-- pending invitations only, not every visit (explain_test.go). Numbered 009
-- to stay clear of migrations being added in parallel.
CREATE INDEX monitor_visits_inv_pending_idx ON monitor_visits(inv_state, inv_sent_at);
