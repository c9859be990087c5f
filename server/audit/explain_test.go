package audit

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/lethehq/lethe/server/store"
	"github.com/lethehq/lethe/server/store/storetest"
)

// Every statement of the package (found in its source by storetest, so
// one added later is checked too) finds its rows through an index: no full
// scan of a table that grows with traffic.
func TestExplain_EveryStatementUsesIndexes(t *testing.T) {
	t.Parallel()
	db, err := store.Open(filepath.Join(t.TempDir(), "explain.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background(), "audit", sub); err != nil {
		t.Fatal(err)
	}
	storetest.Check(t, db, ".", storetest.Options{Scans: map[string]string{
		"SELECT DISTINCT account_id FROM audit_log": "the retention janitor, once an hour (JanitorInterval), not on a request path; it reads the covering index only",
	}})
}
