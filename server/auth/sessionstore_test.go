package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lethehq/lethe/server/internal/testkit"
)

// testClock is the session store's clock, moved on by the tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// msgT is the probe service's message.
type msgT = wrapperspb.StringValue

// token is the caller's session token ("" without a cookie).
func (c *caller) token() string {
	u, _ := url.Parse(c.e.srv.URL)
	for _, k := range c.http.Jar.Cookies(u) {
		if k.Name == "lethe_session" {
			return k.Value
		}
	}
	return ""
}

// row reads a session's row in SQLite: whether it is there and its expiry.
func (e *env) row(token string) (bool, time.Time) {
	e.t.Helper()
	var unix float64
	err := e.db.R.QueryRow(`SELECT (expiry - 2440587.5) * 86400.0 FROM sessions WHERE token = ?`, token).Scan(&unix)
	if errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return true, time.UnixMilli(int64(unix * 1000))
}

func (e *env) store() *SessionStore { return SessionStoreOf(e.sessions) }

// mustCall calls procOperator and wants bobID back.
func (c *caller) mustCall(what string) {
	c.e.t.Helper()
	if got, err := c.call(procOperator, ""); err != nil || got != "operator:"+bobID {
		c.e.t.Fatalf("%s: %q, %v", what, got, err)
	}
}

// Requests that change nothing write nothing: the session row is written
// at sign-in and not again, whatever the number of requests.
func TestSessionStore_RequestsDoNotRewriteTheSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	c.signIn(bobID)
	writes := e.store().Writes()
	_, expiry := e.row(c.token())
	for i := range 50 {
		res, err := c.callRes(procOperator, "", "")
		if err != nil || res.Msg.Value != "operator:"+bobID {
			t.Fatalf("call %d: %v, %v", i, res, err)
		}
		if k := sessionCookieIn(t, res.Header()); k != nil {
			t.Fatalf("call %d sent the cookie again: %v", i, k)
		}
	}
	if n := e.store().Writes() - writes; n != 0 {
		t.Errorf("50 requests wrote the session %d times, want 0", n)
	}
	if ok, after := e.row(c.token()); !ok || !after.Equal(expiry) {
		t.Errorf("row after 50 requests: present %v, expiry %v; want the sign-in's %v", ok, after, expiry)
	}
}

// A request carries the idle deadline forward only when it moves by the
// refresh granularity or more: once a minute at most.
func TestSessionStore_IdleDeadlineIsRefreshedAtMostOncePerGranularity(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	e := newEnvSessions(t, SessionOptions{Secure: true, Now: clk.now})
	c := e.caller()
	c.signIn(bobID)
	writes := e.store().Writes()
	_, signedIn := e.row(c.token())

	clk.add(DefaultSessionIdleRefresh - time.Second)
	for range 10 {
		c.mustCall("before the granularity")
	}
	if n := e.store().Writes() - writes; n != 0 {
		t.Fatalf("%d writes before the granularity passed, want 0", n)
	}
	clk.add(2 * time.Second)
	for range 10 {
		c.mustCall("after the granularity")
	}
	if n := e.store().Writes() - writes; n != 1 {
		t.Fatalf("%d writes for 10 requests past the granularity, want 1", n)
	}
	_, refreshed := e.row(c.token())
	want := clk.now().Add(DefaultSessionIdle)
	if d := refreshed.Sub(want); d < -time.Second || d > time.Second || !refreshed.After(signedIn) {
		t.Errorf("row expiry %v after the refresh, want about %v (was %v)", refreshed, want, signedIn)
	}
}

// A session unused for the idle timeout ends, though it is cached.
func TestSessionStore_IdleSessionEnds(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	e := newEnvSessions(t, SessionOptions{Secure: true, Now: clk.now})
	c := e.caller()
	c.signIn(bobID)
	c.mustCall("at once")
	clk.add(DefaultSessionIdle - DefaultSessionIdleRefresh - time.Second)
	c.mustCall("just before the idle timeout") // refreshes it
	clk.add(DefaultSessionIdle + time.Second)
	_, err := c.call(procOperator, "")
	testkit.WantCode(t, "call after the idle timeout", err, connect.CodeUnauthenticated)
}

// A session in use ends at its absolute deadline: refreshing the idle
// deadline never carries it past.
func TestSessionStore_BusySessionEndsAtItsAbsoluteDeadline(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	e := newEnvSessions(t, SessionOptions{Secure: true, Now: clk.now})
	c := e.caller()
	c.signIn(bobID)
	for elapsed := time.Duration(0); elapsed < DefaultSessionLifetime-time.Hour; elapsed += time.Hour {
		clk.add(time.Hour)
		c.mustCall(fmt.Sprintf("after %v", elapsed+time.Hour))
	}
	clk.add(time.Hour + time.Minute)
	_, err := c.call(procOperator, "")
	testkit.WantCode(t, "call past the absolute lifetime", err, connect.CodeUnauthenticated)
}

// A session revoked while a request of it is in flight is not saved back
// when that request ends, even though the request changed it: the token
// stays dead in the store and in SQLite, and the browser is told to drop
// the cookie.
func TestSessionStore_RevokedWhileInFlightIsNotSavedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	c.signIn(bobID)
	token := c.token()

	type result struct {
		res *connect.Response[msgT]
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.callRes(procHold, "", "")
		done <- result{res, err}
	}()
	select {
	case <-e.arrived: // the request has loaded the session
	case <-time.After(testkit.Wait):
		t.Fatal("the held request never arrived")
	}
	// Revoked as the account service does (RevokeMySession, disabling).
	ctx := context.Background()
	err := e.sessions.Iterate(ctx, func(sctx context.Context) error {
		if e.sessions.GetString(sctx, SessionKey) == bobID {
			return e.sessions.Destroy(sctx)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.open()
	r := <-done
	if r.err != nil {
		t.Fatalf("held request: %v", r.err)
	}
	if ok, _ := e.row(token); ok {
		t.Fatal("the revoked session's row is back in SQLite: the in-flight request saved it again")
	}
	if k := sessionCookieIn(t, r.res.Header()); k == nil || k.Value != "" {
		t.Errorf("held request's cookie %v, want one that clears the session", k)
	}
	// Even replaying the token (a client that ignored the clearing).
	client := connect.NewClient[msgT, msgT](e.srv.Client(), e.srv.URL+procOperator)
	req := connect.NewRequest(&msgT{})
	req.Header().Set("Cookie", "lethe_session="+token)
	_, err = client.CallUnary(ctx, req)
	testkit.WantCode(t, "call with the revoked token", err, connect.CodeUnauthenticated)
}

// Without a revocation, what the held request put is saved: the test
// above fails for the right reason.
func TestSessionStore_InFlightChangeIsSaved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	c.signIn(bobID)
	writes := e.store().Writes()
	done := make(chan error, 1)
	go func() { _, err := c.call(procHold, ""); done <- err }()
	<-e.arrived
	e.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.store().Writes() - writes; n != 1 {
		t.Fatalf("a request that changed the session wrote it %d times, want 1", n)
	}
	c.mustCall("after the change")
}

// Signing out ends the session on the very next request, though it was
// served from memory until then.
func TestSessionStore_SignOutTakesEffectOnTheNextRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	c.signIn(bobID)
	token := c.token()
	c.mustCall("cached")
	if _, err := c.call(procSignOut, ""); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.row(token); ok {
		t.Fatal("the session's row is still in SQLite after sign-out")
	}
	client := connect.NewClient[msgT, msgT](e.srv.Client(), e.srv.URL+procOperator)
	req := connect.NewRequest(&msgT{})
	req.Header().Set("Cookie", "lethe_session="+token)
	_, err := client.CallUnary(context.Background(), req)
	testkit.WantCode(t, "call with the signed-out token", err, connect.CodeUnauthenticated)
}

// The cache is bounded; a session dropped from it is read from SQLite
// again, so every session still works.
func TestSessionStore_CacheIsBoundedAndSQLiteStaysTheSource(t *testing.T) {
	t.Parallel()
	e := newEnvSessions(t, SessionOptions{Secure: true, MaxCached: 3})
	var callers []*caller
	for range 8 {
		c := e.caller()
		c.signIn(bobID)
		callers = append(callers, c)
	}
	for round := range 2 {
		for i, c := range callers {
			c.mustCall(fmt.Sprintf("round %d, session %d", round, i))
			if n := e.store().Cached(); n > 3 {
				t.Fatalf("%d sessions cached, want at most 3", n)
			}
		}
	}
}

// A session written by an earlier process (another store on the same
// database) is found: SQLite is the source of truth, the cache a copy.
func TestSessionStore_ASessionSavedBeforeARestartIsFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	c.signIn(bobID)
	restarted := NewSessionsWith(e.db, SessionOptions{})
	defer StopSessions(restarted)
	ctx, err := restarted.Load(context.Background(), c.token())
	if err != nil {
		t.Fatal(err)
	}
	if got := restarted.GetString(ctx, SessionKey); got != bobID {
		t.Fatalf("after a restart the session holds %q, want %s", got, bobID)
	}
}

// Under concurrent lookups, a Delete that returned is final: no lookup
// after it finds the session, in memory or in SQLite, and no Commit
// brings it back (run with -race).
func TestSessionStore_DeleteIsFinalUnderConcurrentLookups(t *testing.T) {
	t.Parallel()
	e := newEnvSessions(t, SessionOptions{MaxCached: 8})
	s := e.store()
	ctx := context.Background()
	deadline := time.Now().Add(time.Hour)
	for i := range 20 {
		token := fmt.Sprintf("token-%02d", i)
		b, err := e.sessions.Codec.Encode(deadline, map[string]any{SessionKey: bobID})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CommitCtx(ctx, token, b, deadline); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, _, err := s.FindCtx(ctx, token); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		if err := s.DeleteCtx(ctx, token); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, found, _ := s.FindCtx(ctx, token); found {
				t.Fatalf("%s found after its Delete returned", token)
			}
		}
		if err := s.CommitCtx(ctx, token, b, deadline); !errors.Is(err, ErrSessionRevoked) {
			t.Fatalf("Commit of deleted %s: %v, want ErrSessionRevoked", token, err)
		}
		close(stop)
		wg.Wait()
		if ok, _ := e.row(token); ok {
			t.Fatalf("%s is in SQLite after its Delete", token)
		}
	}
}
