package audit

import (
	"testing"

	"github.com/lethehq/lethe/server/store/storetest"
)

// Every statement of the package (found in its source by storetest, so
// one added later is checked too) finds its rows through an index: no full
// scan of a table that grows with traffic.
func TestExplain_EveryStatementUsesIndexes(t *testing.T) {
	t.Parallel()
	db := storetest.Migrated(t, migrations, map[string]string{"audit": "migrations"})
	storetest.Check(t, db, ".", storetest.Options{Scans: map[string]string{
		"SELECT DISTINCT account_id FROM audit_log": "the retention janitor, once an hour (JanitorInterval), not on a request path; it reads the covering index only",
	}})
}
