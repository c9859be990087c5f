package mail

import (
	"testing"

	"github.com/lethehq/lethe/server/store/storetest"
)

// Every statement of the package (found in its source by storetest, so
// one added later is checked too) finds its rows through an index: no full
// scan of a table that grows with traffic.
func TestExplain_EveryStatementUsesIndexes(t *testing.T) {
	t.Parallel()
	db := storetest.Migrated(t, migrations, map[string]string{"mail": "migrations"})
	storetest.Check(t, db, ".", storetest.Options{
		Dynamic: map[string][]string{
			"FROM mail_queue WHERE ref IN (?": {
				`SELECT ` + heldCols + ` FROM mail_queue WHERE ref IN (?) ORDER BY created_at, id`,
				`SELECT ` + heldCols + ` FROM mail_queue WHERE ref IN (?, ?, ?) ORDER BY created_at, id`,
			},
		},
		Scans: map[string]string{
			"SELECT min(next_attempt), min(created_at) FROM mail_queue": "the sender's next wake-up reads the mail waiting for the relay, a queue that drains (held at most the maximum hold)",
		},
	})
}
