package auth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/alexedwards/scs/v2"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/store"
)

// The probe service the tests serve: a procedure per Kind that answers who
// called it, sign-in and sign-out, and server streams.
const (
	probe = "/lethe.test.v1.Probe/"
	// procOperator is missing from the policy: OperatorOnly by default.
	procOperator = probe + "Operator"
	procAdmin    = probe + "Admin"
	procVisitor  = probe + "Visitor"
	procPublic   = probe + "Public"
	procAPIKey   = probe + "APIKey"
	// procParticipant answers a visitor or an operator (auth.Participant).
	procParticipant = probe + "Participant"
	// procSignIn starts a session for the operator id it is sent (Public).
	procSignIn = probe + "SignIn"
	// procSignOut destroys the caller's session.
	procSignOut = probe + "SignOut"
	// The streams send who called, wait for the test to open the gate, then
	// send "done".
	procWatchOperator = probe + "WatchOperator"
	procWatchVisitor  = probe + "WatchVisitor"
	// procWatchParticipant is a Participant stream (as DownloadFile).
	procWatchParticipant = probe + "WatchParticipant"
	// flushPath is a plain handler that changes the session and flushes
	// before writing anything, then waits at the gate.
	flushPath = "/flush"
	// peekPath writes the session value flushPath put.
	peekPath = "/peek"
	// procHold (OperatorOnly) tells the test it has its session loaded
	// (e.arrived), waits at the gate, then changes the session.
	procHold = probe + "Hold"
)

var testPolicy = map[string]Kind{
	procAdmin:        AdminOnly,
	procVisitor:      VisitorOnly,
	procPublic:       Public,
	procAPIKey:       APIKey,
	procSignIn:       Public,
	procWatchVisitor: VisitorOnly,
	procParticipant:  Participant,

	procWatchParticipant: Participant,
}

// directory stands in for the domains behind OperatorSource, VisitorSource
// and APIKeySource (accounts, chats, API keys): their storage is theirs.
type directory struct {
	operators map[string]*Operator
	visitors  map[string]*Visitor
	keys      map[string]*Key
}

// errStorage is what a source returns when its database fails.
var errStorage = errors.New("database is locked")

func (d directory) SessionOperator(_ context.Context, id string) (*Operator, error) {
	if op, ok := d.operators[id]; ok {
		return op, nil
	}
	return nil, errs.Unauthenticated("sign in first")
}

func (d directory) VisitorByToken(_ context.Context, token string) (*Visitor, error) {
	if token == brokenToken {
		return nil, errStorage
	}
	if v, ok := d.visitors[token]; ok {
		return v, nil
	}
	return nil, errs.Unauthenticated("unknown visitor token")
}

func (d directory) APIKeyByToken(_ context.Context, key string) (*Key, error) {
	if k, ok := d.keys[key]; ok {
		return k, nil
	}
	return nil, errs.Unauthenticated("unknown API key")
}

// Who the directory knows.
const (
	annID       = "op-ann" // an admin
	bobID       = "op-bob" // a plain operator
	goneID      = "op-gone"
	amyToken    = "vt-amy"
	brokenToken = "vt-broken" // its lookup fails with errStorage
	goodKey     = APIKeyPrefix + "good"
	// unprefixedKey is known to the key source but lacks the prefix.
	unprefixedKey = "plain-key"
)

var testDirectory = directory{
	operators: map[string]*Operator{
		annID: {ID: annID, AccountID: "acct", Name: "Ann", Admin: true},
		bobID: {ID: bobID, AccountID: "acct", Name: "Bob"},
	},
	visitors: map[string]*Visitor{amyToken: {ID: "v-amy", AccountID: "acct", ChatID: "chat-1"}},
	keys: map[string]*Key{
		goodKey:       {ID: "key-good", AccountID: "acct"},
		unprefixedKey: {ID: "key-unprefixed", AccountID: "acct"},
	},
}

// whoami says who the interceptor left in ctx.
func whoami(ctx context.Context) string {
	if op, ok := OperatorFrom(ctx); ok {
		return "operator:" + op.ID
	}
	if v, ok := VisitorFrom(ctx); ok {
		return "visitor:" + v.ID
	}
	if k, ok := APIKeyFrom(ctx); ok {
		return "key:" + k.ID
	}
	return "anonymous"
}

type env struct {
	t        testing.TB
	sessions *scs.SessionManager
	srv      *httptest.Server
	// gate lets a waiting stream or flushPath go on.
	gate chan struct{}
	// arrived is sent to by procHold once its session is loaded.
	arrived chan struct{}
	db      *store.DB
}

// newEnv serves the probe service with sessions in a real SQLite database
// in a temp dir, over HTTP/2 with TLS, through SessionMiddleware and the
// error and access interceptors. Cookies are Secure.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, true)
}

// newEnvWith is newEnv with the cookie's Secure attribute set to secure.
func newEnvWith(t testing.TB, secure bool) *env {
	t.Helper()
	return newEnvSessions(t, SessionOptions{Secure: secure})
}

// newEnvSessions is newEnv with the sessions made with opts.
func newEnvSessions(t testing.TB, sopts SessionOptions) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sessions: NewSessionsWith(db, sopts), gate: make(chan struct{}), arrived: make(chan struct{}, 1), db: db}
	t.Cleanup(func() { StopSessions(e.sessions) })
	log, _ := testkit.Logger(t)
	opts := connect.WithInterceptors(errs.Interceptor{Log: log},
		&Interceptor{Sessions: e.sessions, Operators: testDirectory, Visitors: testDirectory, APIKeys: testDirectory, Policy: testPolicy})

	type msg = wrapperspb.StringValue
	answer := func(ctx context.Context, _ *connect.Request[msg]) (*connect.Response[msg], error) {
		return connect.NewResponse(wrapperspb.String(whoami(ctx))), nil
	}
	watch := func(ctx context.Context, _ *connect.Request[msg], st *connect.ServerStream[msg]) error {
		if err := st.Send(wrapperspb.String(whoami(ctx))); err != nil {
			return err
		}
		if err := e.wait(ctx); err != nil {
			return err
		}
		return st.Send(wrapperspb.String("done"))
	}
	mux := http.NewServeMux()
	for _, p := range []string{procOperator, procAdmin, procVisitor, procPublic, procAPIKey, procParticipant} {
		mux.Handle(p, connect.NewUnaryHandler(p, answer, opts))
	}
	mux.Handle(procSignIn, connect.NewUnaryHandler(procSignIn, func(ctx context.Context, req *connect.Request[msg]) (*connect.Response[msg], error) {
		if err := e.sessions.RenewToken(ctx); err != nil {
			return nil, err
		}
		e.sessions.Put(ctx, SessionKey, req.Msg.Value)
		return connect.NewResponse(wrapperspb.String(req.Msg.Value)), nil
	}, opts))
	mux.Handle(procSignOut, connect.NewUnaryHandler(procSignOut, func(ctx context.Context, _ *connect.Request[msg]) (*connect.Response[msg], error) {
		if err := e.sessions.Destroy(ctx); err != nil {
			return nil, err
		}
		return connect.NewResponse(wrapperspb.String("")), nil
	}, opts))
	mux.Handle(procHold, connect.NewUnaryHandler(procHold, func(ctx context.Context, _ *connect.Request[msg]) (*connect.Response[msg], error) {
		e.arrived <- struct{}{}
		if err := e.wait(ctx); err != nil {
			return nil, err
		}
		e.sessions.Put(ctx, "held", "yes")
		return connect.NewResponse(wrapperspb.String(whoami(ctx))), nil
	}, opts))
	for _, p := range []string{procWatchOperator, procWatchVisitor, procWatchParticipant} {
		mux.Handle(p, connect.NewServerStreamHandler(p, watch, opts))
	}
	mux.HandleFunc("POST "+flushPath, func(w http.ResponseWriter, r *http.Request) {
		e.sessions.Put(r.Context(), "flushed", "yes")
		f, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "the response writer cannot flush", http.StatusInternalServerError)
			return
		}
		f.Flush()
		io.WriteString(w, "first\n")
		f.Flush()
		if e.wait(r.Context()) == nil {
			io.WriteString(w, "last\n")
		}
	})
	mux.HandleFunc("GET "+peekPath, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, e.sessions.GetString(r.Context(), "flushed"))
	})

	e.srv = httptest.NewUnstartedServer(SessionMiddleware(e.sessions, mux))
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

// wait blocks a handler until the test opens the gate; it gives up after
// testkit.Wait so that a broken flush fails the test rather than hang it.
func (e *env) wait(ctx context.Context) error {
	select {
	case <-e.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(testkit.Wait):
		return errs.E(connect.CodeDeadlineExceeded, "the test never opened the gate")
	}
}

// open lets one waiting handler go on.
func (e *env) open() {
	e.t.Helper()
	select {
	case e.gate <- struct{}{}:
	case <-time.After(testkit.Wait):
		e.t.Fatal("no handler is waiting at the gate")
	}
}

// caller is a client with its own cookie jar.
type caller struct {
	e    *env
	http *http.Client
}

func (e *env) caller() *caller {
	c := *e.srv.Client()
	c.Jar, _ = cookiejar.New(nil)
	return &caller{e: e, http: &c}
}

// call calls a unary probe procedure, with token as bearer if not empty,
// and returns who the handler saw.
func (c *caller) call(procedure, token string) (string, error) {
	res, err := c.callRes(procedure, token, "")
	if err != nil {
		return "", err
	}
	return res.Msg.Value, nil
}

func (c *caller) callRes(procedure, token, body string) (*connect.Response[wrapperspb.StringValue], error) {
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](c.http, c.e.srv.URL+procedure)
	req := connect.NewRequest(wrapperspb.String(body))
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	return client.CallUnary(context.Background(), req)
}

// signIn starts a session for operator id and returns the response (its
// headers carry the cookie).
func (c *caller) signIn(id string) *connect.Response[wrapperspb.StringValue] {
	c.e.t.Helper()
	res, err := c.callRes(procSignIn, "", id)
	if err != nil {
		c.e.t.Fatalf("SignIn %s: %v", id, err)
	}
	return res
}

// watch opens a probe stream with token as bearer if not empty.
func (c *caller) watch(ctx context.Context, procedure, token string) (*connect.ServerStreamForClient[wrapperspb.StringValue], error) {
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](c.http, c.e.srv.URL+procedure)
	req := connect.NewRequest(wrapperspb.String(""))
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	return client.CallServerStream(ctx, req)
}

// sessionCookieIn returns the session cookie a response header sets, or
// nil.
func sessionCookieIn(t testing.TB, h http.Header) *http.Cookie {
	t.Helper()
	for _, raw := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(raw)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", raw, err)
		}
		if c.Name == "lethe_session" {
			return c
		}
	}
	return nil
}
