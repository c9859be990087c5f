package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Prepared runs queries through statements prepared once per pool and kept:
// SQLite parses each query string once, not on every call. database/sql
// prepares a statement lazily on each connection of the pool that runs it
// and reuses it there.
//
// Tx gives a view that runs the same statements inside a transaction: on the
// single-connection write pool, tx.StmtContext reuses the statement already
// prepared on that connection (no new parse).
type Prepared struct {
	c  *stmtCache
	tx *sql.Tx
}

type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

// Prepare returns a Prepared on db (W or R of a DB).
func Prepare(db *sql.DB) *Prepared {
	return &Prepared{c: &stmtCache{db: db, m: map[string]*sql.Stmt{}}}
}

// Tx returns a view of p whose statements run inside tx (tx must belong to
// p's pool).
func (p *Prepared) Tx(tx *sql.Tx) *Prepared { return &Prepared{c: p.c, tx: tx} }

// Close closes every prepared statement.
func (p *Prepared) Close() error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	for q, st := range p.c.m {
		st.Close()
		delete(p.c.m, q)
	}
	return nil
}

// PrepareAll prepares queries now. Do it for every statement a Tx view
// runs on a single-connection pool: inside a transaction that holds the
// pool's only connection, a statement not prepared yet is prepared on the
// transaction, for it alone.
func (p *Prepared) PrepareAll(ctx context.Context, queries ...string) error {
	for _, q := range queries {
		if _, err := (&Prepared{c: p.c}).Stmt(ctx, q); err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
	}
	return nil
}

// Stmt returns the statement of query, preparing it on first use. In a Tx
// view the statement belongs to the transaction and is closed with it.
func (p *Prepared) Stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	p.c.mu.RLock()
	st, ok := p.c.m[query]
	p.c.mu.RUnlock()
	if !ok && p.tx != nil {
		// The pool's connection may be this transaction's: preparing on
		// the pool would wait for it forever.
		return p.tx.PrepareContext(ctx, query)
	}
	if !ok {
		p.c.mu.Lock()
		if st, ok = p.c.m[query]; !ok {
			var err error
			st, err = p.c.db.PrepareContext(ctx, query)
			if err != nil {
				p.c.mu.Unlock()
				return nil, err
			}
			p.c.m[query] = st
		}
		p.c.mu.Unlock()
	}
	if p.tx != nil {
		return p.tx.StmtContext(ctx, st), nil
	}
	return st, nil
}

// QueryContext runs a prepared query.
func (p *Prepared) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.Stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ExecContext runs a prepared statement.
func (p *Prepared) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := p.Stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// Row is the result of QueryRowContext: a *sql.Row, or the error of
// preparing its statement.
type Row struct {
	row *sql.Row
	err error
}

// Scan is sql.Row.Scan (sql.ErrNoRows when there is no row).
func (r *Row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.row.Scan(dest...)
}

// QueryRowContext runs a prepared query that returns at most one row.
func (p *Prepared) QueryRowContext(ctx context.Context, query string, args ...any) *Row {
	st, err := p.Stmt(ctx, query)
	if err != nil {
		return &Row{err: err}
	}
	return &Row{row: st.QueryRowContext(ctx, args...)}
}
