package account

import (
	"testing"

	"github.com/lethehq/lethe/server/store/storetest"
)

// Every statement of the package (found in its source by storetest, so
// one added later is checked too) finds its rows through an index: no full
// scan of a table that grows with traffic.
func TestExplain_EveryStatementUsesIndexes(t *testing.T) {
	t.Parallel()
	db := storetest.Migrated(t, migrations, map[string]string{"account": "migrations"})
	storetest.Check(t, db, ".", storetest.Options{Scans: map[string]string{
		"SELECT count(*) FROM operators": "run once at start-up (first-run setup); operators are a handful per account",
	}})
}
