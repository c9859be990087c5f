package auth

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/lethehq/lethe/server/store"
)

// Session store defaults (SessionOptions).
const (
	// DefaultSessionLifetime is a session's absolute lifetime.
	DefaultSessionLifetime = 12 * time.Hour
	// DefaultSessionIdle ends a session unused for this long.
	DefaultSessionIdle = 2 * time.Hour
	// DefaultSessionIdleRefresh is the granularity of the idle deadline:
	// a request moves a session's stored expiry forward only when it
	// would move by at least this much, so a busy console writes its
	// session row at most once a minute, and an idle session may end up
	// to this much earlier than IdleTimeout after its last request.
	DefaultSessionIdleRefresh = time.Minute
	// DefaultMaxCachedSessions bounds the sessions kept in memory (about
	// 0.5 KiB each). Past it, one is dropped; its next request reads it
	// from SQLite again.
	DefaultMaxCachedSessions = 10000
)

// ErrSessionRevoked is what SessionStore.Commit answers for a token that
// was deleted (logout, revocation, disabling): a request that loaded the
// session before it ended cannot save it back.
var ErrSessionRevoked = errors.New("the session has ended")

// SessionStore is the scs store of operator sessions: the sessions table
// in lethe.db is the source of truth, and a bounded in-memory cache
// serves the lookup every operator request makes. Every change goes
// through it (Commit writes through, Delete deletes and evicts before it
// returns), so an ended session is refused on the very next request.
// It assumes that one process uses the database, as Lethe does.
//
// It also keeps the idle timeout itself (scs's IdleTimeout must be 0,
// which NewSessions sees to): scs would otherwise mark every loaded
// session modified and write it back on every request. Here a session's
// row expires at min(absolute deadline, last refresh + IdleTimeout), and
// Find moves it forward at most once per IdleRefresh.
type SessionStore struct {
	db      *store.DB
	codec   scs.Codec
	opts    SessionOptions
	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}

	// wmu orders the writes that create or delete rows (Commit, Delete):
	// a Commit that checked a token is not revoked finishes before a
	// Delete of it starts, so it cannot bring a deleted row back.
	wmu sync.Mutex

	mu sync.Mutex
	// cache holds sessions by token.
	cache map[string]*cachedSession
	// revoked holds deleted tokens until their session could have
	// expired anyway: Commit refuses them and Find does not see them.
	revoked map[string]time.Time
	// gen counts Commits and Deletes, so that a Find that read SQLite
	// does not cache what a concurrent write made stale.
	gen uint64

	writes atomic.Int64
}

type cachedSession struct {
	data []byte
	// deadline is the session's absolute deadline.
	deadline time.Time
	// expiry is the row's expiry: the earlier of deadline and the last
	// idle refresh + IdleTimeout.
	expiry time.Time
}

// SessionOptions configure operator sessions; zero fields take the
// defaults above.
type SessionOptions struct {
	// Secure sets the cookie's Secure attribute (under TLS).
	Secure bool
	// Lifetime is the absolute lifetime of a session.
	Lifetime time.Duration
	// IdleTimeout ends a session unused for this long.
	IdleTimeout time.Duration
	// IdleRefresh is the granularity of the idle deadline.
	IdleRefresh time.Duration
	// MaxCached bounds the sessions kept in memory.
	MaxCached int
	// CleanupInterval is how often expired rows are deleted (10 min).
	CleanupInterval time.Duration
	// Now is the store's clock (tests move it on).
	Now func() time.Time
}

func (o *SessionOptions) defaults() {
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultSessionLifetime
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultSessionIdle
	}
	if o.IdleRefresh <= 0 {
		o.IdleRefresh = DefaultSessionIdleRefresh
	}
	if o.MaxCached <= 0 {
		o.MaxCached = DefaultMaxCachedSessions
	}
	if o.CleanupInterval <= 0 {
		o.CleanupInterval = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// newSessionStore returns the store over db's sessions table; codec
// decodes a session read from SQLite for its absolute deadline.
func newSessionStore(db *store.DB, codec scs.Codec, opts SessionOptions) *SessionStore {
	opts.defaults()
	s := &SessionStore{db: db, codec: codec, opts: opts, stop: make(chan struct{}), done: make(chan struct{}),
		cache: map[string]*cachedSession{}, revoked: map[string]time.Time{}}
	go s.cleanup()
	return s
}

// julian formats t for SQLite's julianday(), as scs's sqlite3store did,
// so rows written before this store read the same.
func julian(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999") }

// Writes is how many times the store has written a session row (Commit
// and idle refresh; deletes are not counted).
func (s *SessionStore) Writes() int64 { return s.writes.Load() }

// Cached is how many sessions are held in memory.
func (s *SessionStore) Cached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cache)
}

// Find implements scs.Store.
func (s *SessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// FindCtx implements scs.CtxStore: from memory once loaded, refreshing
// the idle deadline when it is due.
func (s *SessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	now := s.opts.Now()
	s.mu.Lock()
	if _, gone := s.revoked[token]; gone {
		s.mu.Unlock()
		return nil, false, nil
	}
	c, ok := s.cache[token]
	gen := s.gen
	if ok && !now.Before(c.expiry) {
		delete(s.cache, token)
		s.mu.Unlock()
		return nil, false, nil
	}
	s.mu.Unlock()
	if ok {
		s.touch(ctx, token, c, now)
		return c.data, true, nil
	}

	var data []byte
	var unix float64
	err := s.db.R.QueryRowContext(ctx, `SELECT data, (expiry - 2440587.5) * 86400.0 FROM sessions
		WHERE token = ? AND julianday(?) < expiry`, token, julian(now)).Scan(&data, &unix)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	deadline, _, err := s.codec.Decode(data)
	if err != nil {
		return nil, false, err
	}
	c = &cachedSession{data: data, deadline: deadline, expiry: time.UnixMicro(int64(unix * 1e6))}
	s.mu.Lock()
	_, gone := s.revoked[token]
	if s.gen == gen {
		s.put(token, c, now)
	}
	s.mu.Unlock()
	if gone {
		return nil, false, nil // deleted while it was read
	}
	s.touch(ctx, token, c, now)
	return data, true, nil
}

// touch moves the row's expiry to now + IdleTimeout (at most the
// deadline) when that moves it by IdleRefresh or more. An UPDATE never
// creates a row, so it needs no ordering against Delete.
func (s *SessionStore) touch(ctx context.Context, token string, c *cachedSession, now time.Time) {
	expiry := s.expiry(c.deadline, now)
	if expiry.Sub(c.expiry) < s.opts.IdleRefresh {
		return
	}
	if _, err := s.db.W.ExecContext(ctx, `UPDATE sessions SET expiry = julianday(?) WHERE token = ?`, julian(expiry), token); err != nil {
		return // the next request tries again; the session is still valid
	}
	s.writes.Add(1)
	s.mu.Lock()
	if s.cache[token] == c {
		s.cache[token] = &cachedSession{data: c.data, deadline: c.deadline, expiry: expiry}
	}
	s.mu.Unlock()
}

// expiry is a row's expiry when refreshed at now.
func (s *SessionStore) expiry(deadline, now time.Time) time.Time {
	if e := now.Add(s.opts.IdleTimeout); e.Before(deadline) {
		return e
	}
	return deadline
}

// put caches c under token (s.mu held), making room when full: expired
// sessions first, then any one.
func (s *SessionStore) put(token string, c *cachedSession, now time.Time) {
	if _, ok := s.cache[token]; !ok && len(s.cache) >= s.opts.MaxCached {
		for t, old := range s.cache {
			if !now.Before(old.expiry) {
				delete(s.cache, t)
			}
		}
		for t := range s.cache {
			if len(s.cache) < s.opts.MaxCached {
				break
			}
			delete(s.cache, t)
		}
	}
	s.cache[token] = c
}

// Commit implements scs.Store.
func (s *SessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// CommitCtx implements scs.CtxStore: writes through to SQLite, then
// caches. deadline is the session's absolute deadline (scs passes it as
// the expiry when its own IdleTimeout is 0). A revoked token is refused
// with ErrSessionRevoked.
func (s *SessionStore) CommitCtx(ctx context.Context, token string, b []byte, deadline time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	now := s.opts.Now()
	s.mu.Lock()
	_, gone := s.revoked[token]
	s.mu.Unlock()
	if gone {
		return ErrSessionRevoked
	}
	expiry := s.expiry(deadline, now)
	if _, err := s.db.W.ExecContext(ctx, `REPLACE INTO sessions (token, data, expiry) VALUES (?, ?, julianday(?))`,
		token, b, julian(expiry)); err != nil {
		return err
	}
	s.writes.Add(1)
	s.mu.Lock()
	s.gen++
	s.put(token, &cachedSession{data: b, deadline: deadline, expiry: expiry}, now)
	s.mu.Unlock()
	return nil
}

// Delete implements scs.Store.
func (s *SessionStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// DeleteCtx implements scs.CtxStore: the token is refused from now on,
// by this process at once (even if the SQLite delete fails) and by the
// database once the delete succeeds.
func (s *SessionStore) DeleteCtx(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	now := s.opts.Now()
	s.mu.Lock()
	until := now.Add(s.opts.Lifetime)
	if c, ok := s.cache[token]; ok && c.deadline.Before(until) {
		until = c.deadline
	}
	delete(s.cache, token)
	s.revoke(token, until, now)
	s.gen++
	s.mu.Unlock()
	_, err := s.db.W.ExecContext(ctx, `DELETE FROM sessions WHERE token = ?`, token)
	return err
}

// revoke remembers token until until (s.mu held), bounded like the
// cache: past the bound, the tombstone ending first is dropped.
func (s *SessionStore) revoke(token string, until, now time.Time) {
	if len(s.revoked) >= s.opts.MaxCached {
		for t, u := range s.revoked {
			if !now.Before(u) {
				delete(s.revoked, t)
			}
		}
		for len(s.revoked) >= s.opts.MaxCached {
			first, at := "", time.Time{}
			for t, u := range s.revoked {
				if first == "" || u.Before(at) {
					first, at = t, u
				}
			}
			delete(s.revoked, first)
		}
	}
	s.revoked[token] = until
}

// All implements scs.IterableStore: the live sessions in SQLite (listing
// and revoking sessions read the source of truth).
func (s *SessionStore) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}

// AllCtx implements scs.IterableCtxStore.
func (s *SessionStore) AllCtx(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT token, data FROM sessions WHERE julianday(?) < expiry`, julian(s.opts.Now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var token string
		var data []byte
		if err := rows.Scan(&token, &data); err != nil {
			return nil, err
		}
		out[token] = data
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	for t := range out {
		if _, gone := s.revoked[t]; gone {
			delete(out, t)
		}
	}
	s.mu.Unlock()
	return out, nil
}

// cleanup deletes expired rows and forgets expired cache entries and
// tombstones, every CleanupInterval until Stop.
func (s *SessionStore) cleanup() {
	defer close(s.done)
	t := time.NewTicker(s.opts.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.deleteExpired(context.Background())
		}
	}
}

func (s *SessionStore) deleteExpired(ctx context.Context) {
	now := s.opts.Now()
	// Errors are retried at the next tick; Find ignores expired rows.
	_, _ = s.db.W.ExecContext(ctx, `DELETE FROM sessions WHERE expiry < julianday(?)`, julian(now))
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, c := range s.cache {
		if !now.Before(c.expiry) {
			delete(s.cache, t)
		}
	}
	for t, u := range s.revoked {
		if !now.Before(u) {
			delete(s.revoked, t)
		}
	}
}

// Stop ends the cleanup goroutine (call before the database closes).
func (s *SessionStore) Stop() {
	s.stopped.Do(func() { close(s.stop) })
	<-s.done
}

var (
	_ scs.CtxStore         = (*SessionStore)(nil)
	_ scs.IterableCtxStore = (*SessionStore)(nil)
	_ scs.IterableStore    = (*SessionStore)(nil)
)
