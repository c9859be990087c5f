package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// QueryPlan returns the detail lines of SQLite's EXPLAIN QUERY PLAN for
// query with args (e.g. "SEARCH c USING INDEX chats_visitor (visitor_id=?)"),
// in the order SQLite reports them.
func QueryPlan(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		out = append(out, detail)
	}
	return out, rows.Err()
}

// FullScans returns the tables (or their aliases) a plan reads in full —
// its "SCAN x" lines, a scan of a covering index included — except those
// named in allowed (tables known to stay tiny or bounded) and SQLite's own
// constant rows and table-valued functions.
func FullScans(plan []string, allowed ...string) []string {
	var out []string
	for _, line := range plan {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "SCAN ")
		if !ok {
			continue
		}
		if rest == "CONSTANT ROW" || strings.Contains(rest, "VIRTUAL TABLE") {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		if slices.Contains(allowed, name) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// CheckIndexed runs EXPLAIN QUERY PLAN on query and returns an error naming
// each table it would scan in full (FullScans), with the whole plan.
func CheckIndexed(ctx context.Context, db *DB, query string, allowed []string, args ...any) error {
	plan, err := QueryPlan(ctx, db.R, query, args...)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	if scans := FullScans(plan, allowed...); len(scans) > 0 {
		return fmt.Errorf("full scan of %s:\n\t%s\nquery: %s", strings.Join(scans, ", "), strings.Join(plan, "\n\t"), query)
	}
	return nil
}
