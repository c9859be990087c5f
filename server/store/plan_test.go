package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParamCount(t *testing.T) {
	for q, want := range map[string]int{
		`SELECT 1`: 0,
		`SELECT * FROM t WHERE a = ? AND b IN (?, ?)`: 3,
		`SELECT * FROM t WHERE a = ?1 OR b = ?2`:      2,
		`SELECT '?' FROM t WHERE a = ?`:               1,
	} {
		if got := paramCount(q); got != want {
			t.Errorf("paramCount(%q) = %d, want %d", q, got, want)
		}
	}
}

// A scan of a table (or of a covering index, which reads it all too) is
// reported; searches, constant rows and allowed tables are not.
func TestCheckIndexed(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER, b INTEGER); CREATE INDEX t_a ON t(a)`); err != nil {
		t.Fatal(err)
	}
	for q, scans := range map[string][]string{
		`SELECT b FROM t WHERE id = ?`:      nil,
		`SELECT b FROM t WHERE a = ?`:       nil,
		`SELECT b FROM t WHERE b = ?`:       {"t"},
		`SELECT count(a) FROM t`:            {"t"},
		`SELECT x.b FROM t x WHERE x.b > ?`: {"x"},
	} {
		plan, err := QueryPlan(ctx, db.R, q, make([]any, paramCount(q))...)
		if err != nil {
			t.Fatal(err)
		}
		if got := FullScans(plan); !slices.Equal(got, scans) {
			t.Errorf("%s: scans %v (plan %q), want %v", q, got, plan, scans)
		}
		if err := CheckIndexed(ctx, db, q, nil); (err != nil) != (len(scans) > 0) {
			t.Errorf("%s: CheckIndexed = %v", q, err)
		}
		if err := CheckIndexed(ctx, db, q, []string{"t", "x"}); err != nil {
			t.Errorf("%s: allowed scan reported: %v", q, err)
		}
	}
}

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "t.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Statements prepared on the single write connection run inside a
// transaction that holds it; one not prepared beforehand is prepared on
// the transaction instead of waiting for the connection forever.
func TestPreparedInTxOnTheWriteConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db := openTest(t)
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	w := Prepare(db.W)
	defer w.Close()
	const ins, sel = `INSERT INTO t (id, v) VALUES (?, ?)`, `SELECT v FROM t WHERE id = ?`
	if err := w.PrepareAll(ctx, ins); err != nil {
		t.Fatal(err)
	}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		p := w.Tx(tx)
		for i := range 3 {
			if _, err := p.ExecContext(ctx, ins, i, "x"); err != nil {
				return err
			}
		}
		var v string
		return p.QueryRowContext(ctx, sel, 2).Scan(&v) // not prepared beforehand
	})
	if err != nil {
		t.Fatal(err)
	}
	r := Prepare(db.R)
	defer r.Close()
	var v string
	if err := r.QueryRowContext(ctx, sel, 1).Scan(&v); err != nil || v != "x" {
		t.Fatalf("read = %q, %v", v, err)
	}
}

func TestUnindexedForeignKeys(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE p (id TEXT PRIMARY KEY);
		CREATE TABLE c1 (p_id TEXT REFERENCES p(id), x INTEGER);
		CREATE TABLE c2 (p_id TEXT REFERENCES p(id), x INTEGER); CREATE INDEX c2_p ON c2(p_id, x);
		CREATE TABLE c3 (p_id TEXT NOT NULL REFERENCES p(id), seq INTEGER, PRIMARY KEY (p_id, seq)) WITHOUT ROWID;`); err != nil {
		t.Fatal(err)
	}
	got, err := UnindexedForeignKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c1.p_id → p"}; !slices.Equal(got, want) {
		t.Fatalf("unindexed foreign keys = %q, want %q", got, want)
	}
}
