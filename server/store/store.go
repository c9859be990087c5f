// Package store opens Lethe's SQLite databases with the pragmas every
// connection needs, runs embedded versioned migrations, and checkpoints the
// write-ahead log so that deleted pages leave no trace on disk.
//
// Every pragma is in the DSN because SQLite pragmas such as secure_delete are
// per connection: an Exec would reach one pooled connection only. Writes go
// through a pool of exactly one connection (no SQLITE_BUSY between our own
// writers); reads use a separate pool.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is one SQLite database with a single-connection write pool and a read pool.
type DB struct {
	// W is the write pool (one connection). Use it for every statement that
	// changes data, and for reads that must see the writer's own state.
	W *sql.DB
	// R is the read pool.
	R    *sql.DB
	path string
}

// Options select the pragmas of a database.
type Options struct {
	// SecureDelete overwrites deleted content with zeros (scratch store).
	SecureDelete bool
	// ReadConns is the size of the read pool (default 4).
	ReadConns int
}

// DSN returns the connection string for path with Lethe's pragmas.
func DSN(path string, o Options) string {
	q := url.Values{}
	pragmas := []string{
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"busy_timeout(5000)",
		"foreign_keys(1)",
		// No sort or index build may spill visitor data into a temp file.
		"temp_store(MEMORY)",
	}
	if o.SecureDelete {
		pragmas = append(pragmas, "secure_delete(1)")
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path.
func Open(path string, o Options) (*DB, error) {
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	dsn := DSN(path, o)
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(o.ReadConns)
	r.SetMaxIdleConns(o.ReadConns)
	return &DB{W: w, R: r, path: path}, nil
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Close closes both pools, checkpointing the WAL first.
func (db *DB) Close() error {
	_, _ = db.W.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return errors.Join(db.R.Close(), db.W.Close())
}

// Migrate applies, in order, every NNN_name.sql file in fsys that domain has
// not applied yet, each in its own transaction, and records it in
// schema_migrations. Each domain package owns its tables and numbers its own
// migrations.
func (db *DB) Migrate(ctx context.Context, domain string, fsys fs.FS) error {
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		domain TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at INTEGER NOT NULL,
		PRIMARY KEY (domain, version))`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	entries, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(entries)
	for _, name := range entries {
		vs, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(vs)
		if !ok || err != nil {
			return fmt.Errorf("migrate: bad migration name %q (want NNN_name.sql)", name)
		}
		var n int
		if err := db.W.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE domain = ? AND version = ?`, domain, v).Scan(&n); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		tx, err := db.W.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (domain, version, name, applied_at) VALUES (?, ?, ?, ?)`,
			domain, v, name, time.Now().Unix()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

// ErrCheckpointBusy means a reader kept the WAL from being truncated even
// after retrying.
var ErrCheckpointBusy = errors.New("wal checkpoint blocked by a reader")

// Checkpoint runs PRAGMA wal_checkpoint(TRUNCATE) and checks its result:
// SQLite reports busy=1 (instead of an error) when a reader holds a snapshot
// that keeps old frames alive. It retries with backoff until the WAL really is
// truncated or ctx ends. Only after it returns nil are pages deleted with
// secure_delete gone from every file.
//
// It runs on a read-pool connection with the busy handler off, so a reader's
// snapshot never makes SQLite wait inside the single write connection (which
// would stall every write); the retry loop waits holding no connection.
func (db *DB) Checkpoint(ctx context.Context) error {
	delay := 5 * time.Millisecond
	for {
		busy, err := db.checkpointOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrCheckpointBusy, ctx.Err())
			}
			return fmt.Errorf("checkpoint: %w", err)
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrCheckpointBusy, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 500*time.Millisecond {
			delay *= 2
		}
	}
}

func (db *DB) checkpointOnce(ctx context.Context) (busy bool, err error) {
	conn, err := db.R.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout=0"); err != nil {
		return false, err
	}
	defer conn.ExecContext(context.Background(), "PRAGMA busy_timeout=5000")
	var b, logFrames, checkpointed int
	err = conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&b, &logFrames, &checkpointed)
	if err != nil {
		// A writer holding its lock makes the pragma fail with SQLITE_BUSY
		// rather than report busy=1: both mean "try again".
		if msg := err.Error(); strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") {
			return true, nil
		}
		return false, err
	}
	return b != 0, nil
}

// Tx runs fn in a write transaction, committing if fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Column runs a query that selects one column and returns its values in
// order (nil when there are no rows).
func Column[T any](ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
