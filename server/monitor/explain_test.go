package monitor

import (
	"testing"

	"github.com/lethehq/lethe/server/store/storetest"
)

// Every statement of the package (found in its source by storetest) finds
// its rows through an index: no full scan of visits, pages, custom data,
// tickets, API keys or custom keys, which grow with traffic.
func TestExplain_EveryStatementUsesIndexes(t *testing.T) {
	t.Parallel()
	// Scratch and durable tables in one database, so that each statement
	// finds its tables.
	db := storetest.Migrated(t, migrations, map[string]string{"monitor": "migrations/scratch", "monitor-durable": "migrations/durable"})
	// The WHERE clauses the callers of visitors, held, eachPage and
	// eachDatum pass (store.go, privacy.go).
	wheres := []string{`v.id = ?`, `v.account_id = ? AND v.left_at IS NULL`, `v.account_id = ? AND v.id IN (SELECT value FROM json_each(?))`}
	inst := func(head, tail string) []string {
		var out []string
		for _, w := range wheres {
			out = append(out, head+w+tail)
		}
		return out
	}
	storetest.Check(t, db, ".", storetest.Options{Dynamic: map[string][]string{
		"inv_answered_at FROM monitor_visits v WHERE": inst(`SELECT `+visitCols+` FROM monitor_visits v WHERE `, ` ORDER BY first_seen, id`),
		"coalesce(left_at, 0) FROM monitor_visits v":  inst(`SELECT `+visitCols+`, coalesce(left_at, 0) FROM monitor_visits v WHERE `, ` ORDER BY first_seen, id`),
		"FROM monitor_pages p":                        inst("SELECT p.visit_id, p.url, p.title, p.referrer, p.viewed_at FROM monitor_pages p JOIN monitor_visits v ON v.id = p.visit_id WHERE ", " ORDER BY p.visit_id, p.seq"),
		"FROM monitor_custom_data d\n\t\tJOIN":        inst("SELECT d.visit_id, d.verified, d.key, d.value FROM monitor_custom_data d JOIN monitor_visits v ON v.id = d.visit_id WHERE ", " ORDER BY d.visit_id, d.key, d.verified"),
	}})
}
