package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
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
// each table it would scan in full (FullScans), with the whole plan. With
// no args every parameter is bound to NULL (the plan does not depend on
// values without ANALYZE statistics, which Lethe never gathers).
func CheckIndexed(ctx context.Context, db *DB, query string, allowed []string, args ...any) error {
	if len(args) == 0 {
		args = make([]any, paramCount(query))
	}
	plan, err := QueryPlan(ctx, db.R, query, args...)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	if scans := FullScans(plan, allowed...); len(scans) > 0 {
		return fmt.Errorf("full scan of %s:\n\t%s\nquery: %s", strings.Join(scans, ", "), strings.Join(plan, "\n\t"), query)
	}
	return nil
}

// paramCount is how many positional parameters query takes: its bare "?"
// plus its highest "?NNN", outside quoted text.
func paramCount(query string) int {
	bare, numbered := 0, 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			if j == i+1 {
				bare++
			} else if n, err := strconv.Atoi(query[i+1 : j]); err == nil {
				numbered = max(numbered, n)
			}
			i = j - 1
		}
	}
	return bare + numbered
}

// UnindexedForeignKeys lists the foreign keys ("table.column → parent") of
// db whose column leads no index: deleting or changing a parent row would
// scan the child table for each row (SQLite checks foreign keys with no
// plan to show in EXPLAIN).
func UnindexedForeignKeys(ctx context.Context, db *DB) ([]string, error) {
	tables, err := Column[string](ctx, db.R, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tables {
		rows, err := db.R.QueryContext(ctx, `SELECT "from", "table" FROM pragma_foreign_key_list(?) WHERE seq = 0`, t)
		if err != nil {
			return nil, err
		}
		type fk struct{ from, parent string }
		var fks []fk
		for rows.Next() {
			var f fk
			if err := rows.Scan(&f.from, &f.parent); err != nil {
				rows.Close()
				return nil, err
			}
			fks = append(fks, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(fks) == 0 {
			continue
		}
		// The first column of each index of t (the primary key of a
		// WITHOUT ROWID table included).
		leading, err := Column[string](ctx, db.R, `SELECT ii.name FROM pragma_index_list(?1) il, pragma_index_info(il.name) ii WHERE ii.seqno = 0`, t)
		if err != nil {
			return nil, err
		}
		for _, f := range fks {
			if !slices.Contains(leading, f.from) {
				out = append(out, t+"."+f.from+" → "+f.parent)
			}
		}
	}
	return out, nil
}
