package files

import (
	"testing"

	"github.com/lethehq/lethe/server/store/storetest"
)

// Every statement of the package (found in its source by storetest, so
// one added later is checked too) finds its rows through an index: no full
// scan of a table that grows with traffic.
func TestExplain_EveryStatementUsesIndexes(t *testing.T) {
	t.Parallel()
	db := storetest.Migrated(t, migrations, map[string]string{"files": "migrations"})
	storetest.Check(t, db, ".", storetest.Options{Scans: map[string]string{
		// Files live only while their chat is open (they die at its
		// close), so these tables hold the files of open chats only.
		"SELECT chat_id FROM file_keys UNION": "the sweep lists the chats holding files: at start-up and per janitor tick, bounded by the open chats with files",
		"(SELECT coalesce(sum(size), 0) FROM files) + (SELECT coalesce(sum(size), 0) FROM file_uploads)": "the server-wide quota check of an upload reads the sizes of the files of open chats (bounded by the total quota); a running total would make it O(1)",
	}})
}
