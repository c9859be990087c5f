package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lethehq/lethe/server/store"
)

// mustOpen opens a database in a fresh temp dir and closes it at the end of
// the test.
func mustOpen(tb testing.TB, o store.Options) (*store.DB, string) {
	tb.Helper()
	dir := tb.TempDir()
	db, err := store.Open(filepath.Join(dir, "test.db"), o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, dir
}

var testMigrations = fstest.MapFS{
	"001_notes.sql":   {Data: []byte(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);`)},
	"002_authors.sql": {Data: []byte(`CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL); ALTER TABLE notes ADD COLUMN author INTEGER;`)},
}

func TestMigrate_IsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "test.db")

	for round := range 3 {
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		// Twice on the same handle, and again after reopening: a migration
		// that ran again would fail with "table notes already exists" or
		// "duplicate column name".
		for i := range 2 {
			if err := db.Migrate(ctx, "notes", testMigrations); err != nil {
				t.Fatalf("round %d, migrate %d: %v", round, i, err)
			}
		}
		var n int
		if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE domain = 'notes'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("round %d: %d migrations recorded, want 2", round, n)
		}
		if _, err := db.W.ExecContext(ctx, `INSERT INTO notes (body, author) VALUES ('x', 1)`); err != nil {
			t.Fatalf("round %d: schema not in place: %v", round, err)
		}
		db.Close()
	}
}

func TestMigrate_DomainsAreIndependent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := mustOpen(t, store.Options{})
	if err := db.Migrate(ctx, "a", fstest.MapFS{"001_x.sql": {Data: []byte(`CREATE TABLE a_x (id INTEGER);`)}}); err != nil {
		t.Fatal(err)
	}
	// Domain b has its own version 1; it must run although a's 1 ran.
	if err := db.Migrate(ctx, "b", fstest.MapFS{"001_x.sql": {Data: []byte(`CREATE TABLE b_x (id INTEGER);`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO b_x VALUES (1)`); err != nil {
		t.Fatalf("domain b's migration did not run: %v", err)
	}
}

func TestMigrate_FailedMigrationIsNotRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := mustOpen(t, store.Options{})
	bad := fstest.MapFS{"001_bad.sql": {Data: []byte(`CREATE TABLE ok1 (id INTEGER); THIS IS NOT SQL;`)}}
	if err := db.Migrate(ctx, "bad", bad); err == nil {
		t.Fatal("Migrate of invalid SQL succeeded")
	}
	var n int
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE domain = 'bad'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("failed migration recorded as applied (%d rows)", n)
	}
	good := fstest.MapFS{"001_bad.sql": {Data: []byte(`CREATE TABLE ok1 (id INTEGER);`)}}
	if err := db.Migrate(ctx, "bad", good); err != nil {
		t.Fatalf("the fixed migration must run (and the failed one left nothing behind): %v", err)
	}
}

func TestMigrate_RejectsBadFileName(t *testing.T) {
	t.Parallel()
	db, _ := mustOpen(t, store.Options{})
	err := db.Migrate(context.Background(), "x", fstest.MapFS{"first.sql": {Data: []byte(`SELECT 1;`)}})
	if err == nil {
		t.Fatal("Migrate accepted a migration without a version number")
	}
}

// pragmaInt reads an integer pragma on one connection.
func pragmaInt(t *testing.T, ctx context.Context, c *sql.Conn, name string) int {
	t.Helper()
	var v int
	if err := c.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpen_PragmasApplyToEveryPooledConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const readConns = 4
	for _, secure := range []bool{true, false} {
		db, _ := mustOpen(t, store.Options{SecureDelete: secure, ReadConns: readConns})
		// Hold every read connection at once so that each is a distinct
		// connection of the pool, not the same one reused.
		var conns []*sql.Conn
		for range readConns {
			c, err := db.R.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		w, err := db.W.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, w)
		wantSecure := 0
		if secure {
			wantSecure = 1
		}
		for i, c := range conns {
			if got := pragmaInt(t, ctx, c, "secure_delete"); got != wantSecure {
				t.Errorf("secure=%v conn %d: secure_delete = %d, want %d", secure, i, got, wantSecure)
			}
			if got := pragmaInt(t, ctx, c, "temp_store"); got != 2 {
				t.Errorf("secure=%v conn %d: temp_store = %d, want 2 (MEMORY)", secure, i, got)
			}
			if got := pragmaInt(t, ctx, c, "foreign_keys"); got != 1 {
				t.Errorf("secure=%v conn %d: foreign_keys = %d, want 1", secure, i, got)
			}
			if got := pragmaInt(t, ctx, c, "busy_timeout"); got != 5000 {
				t.Errorf("secure=%v conn %d: busy_timeout = %d, want 5000", secure, i, got)
			}
			var mode string
			if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" {
				t.Errorf("secure=%v conn %d: journal_mode = %q, want wal", secure, i, mode)
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

func TestOpen_WritePoolHasOneConnection(t *testing.T) {
	t.Parallel()
	db, _ := mustOpen(t, store.Options{})
	if got := db.W.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("write pool allows %d connections, want 1", got)
	}
	if got := db.R.Stats().MaxOpenConnections; got != 4 {
		t.Fatalf("read pool allows %d connections, want the default 4", got)
	}
}

// filesContaining lists the files under dir whose bytes contain needle.
func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func canary(t *testing.T) string {
	b := make([]byte, 12)
	rand.Read(b)
	return "canary-" + hex.EncodeToString(b)
}

// insertAndDeleteCanary writes a canary row (with neighbours, so the page
// is not freed whole), checkpoints, checks the canary is on disk, deletes it
// and checkpoints again. It returns the files still holding the canary.
func insertAndDeleteCanary(t *testing.T, secure bool) []string {
	t.Helper()
	ctx := context.Background()
	db, dir := mustOpen(t, store.Options{SecureDelete: secure})
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE msgs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	c := canary(t)
	for i := range 20 {
		body := "filler message"
		if i == 10 {
			body = "text with " + c + " inside"
		}
		if _, err := db.W.ExecContext(ctx, `INSERT INTO msgs (id, body) VALUES (?, ?)`, i, body); err != nil {
			t.Fatal(err)
		}
	}
	if hits := filesContaining(t, dir, []byte(c)); len(hits) == 0 {
		t.Fatal("canary not found on disk after insert: the forensic check could not fail")
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if hits := filesContaining(t, dir, []byte(c)); len(hits) == 0 {
		t.Fatal("canary not found in the database file after checkpoint: the forensic check could not fail")
	}
	if _, err := db.W.ExecContext(ctx, `DELETE FROM msgs WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return filesContaining(t, dir, []byte(c))
}

func TestSecureDelete_DeletedRowLeavesNoTraceInAnyFile(t *testing.T) {
	t.Parallel()
	if hits := insertAndDeleteCanary(t, true); len(hits) > 0 {
		t.Fatalf("deleted canary still on disk in %v", hits)
	}
}

// The control for the test above: without secure_delete SQLite leaves the
// deleted bytes in the page, so the forensic check does detect them.
func TestSecureDeleteOff_DeletedRowStaysOnDisk(t *testing.T) {
	t.Parallel()
	if hits := insertAndDeleteCanary(t, false); len(hits) == 0 {
		t.Fatal("without secure_delete the deleted canary vanished; the forensic check proves nothing")
	}
}

func walSize(t *testing.T, db *store.DB) int64 {
	t.Helper()
	fi, err := os.Stat(db.Path() + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCheckpoint_BusyWhileReaderHoldsSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := mustOpen(t, store.Options{SecureDelete: true})
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO t VALUES ('before')`); err != nil {
		t.Fatal(err)
	}

	// A reader opens a snapshot that includes WAL frames and keeps it.
	rc, err := db.R.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rc.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO t VALUES ('after')`); err != nil {
		t.Fatal(err)
	}

	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = db.Checkpoint(cctx)
	cancel()
	if !errors.Is(err, store.ErrCheckpointBusy) {
		t.Fatalf("Checkpoint with a reader holding a snapshot = %v, want ErrCheckpointBusy", err)
	}
	if walSize(t, db) == 0 {
		t.Fatal("WAL is empty although the checkpoint was blocked")
	}

	if _, err := rc.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.Checkpoint(cctx); err != nil {
		t.Fatalf("Checkpoint after the reader ended: %v", err)
	}
	if got := walSize(t, db); got != 0 {
		t.Fatalf("WAL is %d bytes after a successful checkpoint, want 0", got)
	}
}

func TestCheckpoint_WaitsForReaderToFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := mustOpen(t, store.Options{SecureDelete: true})
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	rc, err := db.R.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rc.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO t VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	// The reader ends while Checkpoint is retrying: it must then succeed.
	go func() {
		time.Sleep(100 * time.Millisecond)
		rc.ExecContext(ctx, "COMMIT")
		rc.Close()
	}()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := db.Checkpoint(cctx); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if got := walSize(t, db); got != 0 {
		t.Fatalf("WAL is %d bytes after a successful checkpoint, want 0", got)
	}
}

func TestTx_RollsBackOnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := mustOpen(t, store.Options{})
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('x')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx = %v, want boom", err)
	}
	var n int
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows after a failed Tx, want 0", n)
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('y')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows after a committed Tx, want 1", n)
	}
}
