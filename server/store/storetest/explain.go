// Package storetest finds the SQL statements a package's Go source runs and
// checks with EXPLAIN QUERY PLAN that none reads a growing table in full.
//
// The statements are read from the source itself (string literals, and
// concatenations of literals and string constants, folded), so a test
// covers the very strings the code runs, and a statement added later is
// checked without anyone listing it. A statement built at run time from
// variables cannot be folded: it is reported as dynamic, and the test that
// calls Check names an instance of it to explain instead.
package storetest

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lethehq/lethe/server/store"
)

// Query is one statement found in the source.
type Query struct {
	// Pos is file:line of the expression.
	Pos string
	// SQL is the folded statement; for a dynamic one, the text up to the
	// first part that could not be folded.
	SQL     string
	Dynamic bool
}

var verbs = []string{"SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH ", "REPLACE "}

func isSQL(s string) bool {
	s = strings.TrimSpace(s)
	for _, v := range verbs {
		if strings.HasPrefix(s, v) || strings.HasPrefix(s, strings.TrimSpace(v)+"\n") || strings.HasPrefix(s, strings.TrimSpace(v)+"\t") {
			return true
		}
	}
	return false
}

// Queries returns the SQL statements in the non-test Go files of dir.
func Queries(dir string) ([]Query, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var parsed []*ast.File
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, af)
	}
	// String constants of the package, by name (folded on demand).
	consts := map[string]ast.Expr{}
	for _, af := range parsed {
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						consts[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	var fold func(e ast.Expr, depth int) (string, bool)
	fold = func(e ast.Expr, depth int) (string, bool) {
		if depth > 50 {
			return "", false
		}
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind != token.STRING {
				return "", false
			}
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		case *ast.ParenExpr:
			return fold(e.X, depth+1)
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return fold(v, depth+1)
			}
		case *ast.BinaryExpr:
			if e.Op != token.ADD {
				return "", false
			}
			l, ok := fold(e.X, depth+1)
			if !ok {
				return "", false
			}
			r, ok := fold(e.Y, depth+1)
			return l + r, ok
		}
		return "", false
	}
	// prefix folds the leftmost foldable parts of a concatenation.
	var prefix func(e ast.Expr) string
	prefix = func(e ast.Expr) string {
		if s, ok := fold(e, 0); ok {
			return s
		}
		if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.ADD {
			l := prefix(b.X)
			if s, ok := fold(b.X, 0); ok {
				return s + prefix(b.Y)
			}
			return l
		}
		return ""
	}
	var out []Query
	seen := map[string]bool{}
	for _, af := range parsed {
		inner := map[ast.Node]bool{}
		ast.Inspect(af, func(n ast.Node) bool {
			if b, ok := n.(*ast.BinaryExpr); ok && b.Op == token.ADD {
				inner[b.X], inner[b.Y] = true, true
			}
			if p, ok := n.(*ast.ParenExpr); ok {
				inner[p.X] = true
			}
			return true
		})
		ast.Inspect(af, func(n ast.Node) bool {
			e, ok := n.(ast.Expr)
			if !ok || inner[n] {
				return true
			}
			switch x := e.(type) {
			case *ast.BasicLit:
			case *ast.BinaryExpr:
				if x.Op != token.ADD {
					return true
				}
			default:
				return true
			}
			s, ok := fold(e, 0)
			q := Query{Pos: fset.Position(e.Pos()).String(), SQL: s}
			if !ok {
				q.SQL, q.Dynamic = prefix(e), true
			}
			if !isSQL(q.SQL) {
				return true
			}
			q.Pos = filepath.Base(q.Pos)
			if key := fmt.Sprint(q.Dynamic, q.SQL); !seen[key] {
				seen[key] = true
				out = append(out, q)
			}
			return true
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos < out[j].Pos })
	return out, nil
}

// Options of Check.
type Options struct {
	// Dynamic covers the statements built at run time: the key is a part
	// of the statement's folded prefix that identifies it, the value the
	// instances of the statement as the code builds them (one for each
	// shape, e.g. each WHERE clause its callers pass), explained in its
	// place.
	Dynamic map[string][]string
	// Scans allows the full scans of the statements containing a key, for
	// the reason given as its value (a table that stays tiny or bounded, a
	// statement run once at start-up): the reason is logged.
	Scans map[string]string
}

// Check explains every statement found in the Go source of dir (usually
// ".", the package under test) on db, and fails the test on each full scan
// not allowed by o.Scans, and on each dynamic statement not covered by
// o.Dynamic. Keys of o that match nothing fail too (stale exceptions).
func Check(t testing.TB, db *store.DB, dir string, o Options) {
	t.Helper()
	qs, err := Queries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) == 0 {
		t.Fatalf("no SQL statement found in %s", dir)
	}
	used := map[string]bool{}
	ctx := context.Background()
	for _, q := range qs {
		sqls := []string{q.SQL}
		if q.Dynamic {
			sqls = nil
			for k, inst := range o.Dynamic {
				if strings.Contains(q.SQL, k) {
					sqls, used[k] = inst, true
					break
				}
			}
			if len(sqls) == 0 {
				t.Errorf("%s: statement built at run time, not covered by an instance: %q", q.Pos, q.SQL)
				continue
			}
		}
		for _, sql := range sqls {
			err := store.CheckIndexed(ctx, db, sql, nil)
			if err == nil {
				continue
			}
			allowed := false
			for k, why := range o.Scans {
				if strings.Contains(sql, k) {
					used[k], allowed = true, true
					t.Logf("%s: full scan allowed (%s): %v", q.Pos, why, err)
				}
			}
			if !allowed {
				t.Errorf("%s: %v", q.Pos, err)
			}
		}
	}
	for _, m := range []map[string][]string{o.Dynamic} {
		for k := range m {
			if !used[k] {
				t.Errorf("dynamic statement %q is no longer in the source: drop it from the test", k)
			}
		}
	}
	for k := range o.Scans {
		if !used[k] {
			t.Errorf("the scan allowed for %q no longer happens: drop the exception", k)
		}
	}
	fks, err := store.UnindexedForeignKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, fk := range fks {
		t.Errorf("foreign key %s has no index on its column: each delete of a parent row scans the child table", fk)
	}
	t.Logf("%d statements explained", len(qs))
}

// Migrated opens a database in a temporary directory and applies the
// migrations of each domain (domain name → its directory in fsys), as the
// package's store does, so that Check finds every table.
func Migrated(t testing.TB, fsys fs.FS, domains map[string]string) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "explain.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for domain, dir := range domains {
		sub, err := fs.Sub(fsys, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(context.Background(), domain, sub); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
