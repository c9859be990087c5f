package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/guard"
	"github.com/lethehq/lethe/server/hub"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/netinfo"
	"github.com/lethehq/lethe/server/store"
)

// accounts stands in for the account package behind the Settings interface
// (it is another domain's storage, not ours).
type accounts struct {
	mu     sync.Mutex
	hideIP map[string]bool
	// gpcIgnored: the account ignores Global Privacy Control.
	gpcIgnored map[string]bool
	// origins are the account's websites (nil: none listed).
	origins map[string][]string
}

func (a *accounts) Settings(ctx context.Context, id string) (AccountSettings, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.hideIP[id]
	if !ok {
		return AccountSettings{}, fmt.Errorf("account %s: %w", id, errs.ErrNotFound)
	}
	return AccountSettings{HideIP: h, HonourGPC: !a.gpcIgnored[id], AllowedOrigins: a.origins[id]}, nil
}

func (a *accounts) setOrigins(id string, origins ...string) {
	a.mu.Lock()
	a.origins[id] = origins
	a.mu.Unlock()
}

func (a *accounts) setGPCIgnored(id string, ignored bool) {
	a.mu.Lock()
	a.gpcIgnored[id] = ignored
	a.mu.Unlock()
}

func (a *accounts) setHide(id string, h bool) {
	a.mu.Lock()
	a.hideIP[id] = h
	a.mu.Unlock()
}

// noChatVisitors answers the auth interceptor's chat-token lookups: these
// tests have no chats.
type noChatVisitors struct{}

func (noChatVisitors) VisitorByToken(context.Context, string) (*auth.Visitor, error) {
	return nil, errs.Unauthenticated("unknown visitor token")
}

// Operators of the test accounts.
var (
	opA      = &auth.Operator{ID: "op-a", AccountID: "acct-a", Name: "Ann", Admin: true}
	opA2     = &auth.Operator{ID: "op-a2", AccountID: "acct-a", Name: "Abe"}
	opB      = &auth.Operator{ID: "op-b", AccountID: "acct-b", Name: "Bob", Admin: true}
	testOps  = map[string]*auth.Operator{opA.ID: opA, opA2.ID: opA2, opB.ID: opB}
	asOp     = func(op *auth.Operator) context.Context { return auth.WithOperator(context.Background(), op) }
	opHeader = "X-Test-Operator"
)

// testOperators signs a request in as the operator its X-Test-Operator
// header names (the tests' stand-in for a session cookie).
type testOperators struct{}

func (testOperators) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if op := testOps[req.Header().Get(opHeader)]; op != nil {
			ctx = auth.WithOperator(ctx, op)
		}
		return next(ctx, req)
	}
}
func (testOperators) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
func (testOperators) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if op := testOps[conn.RequestHeader().Get(opHeader)]; op != nil {
			ctx = auth.WithOperator(ctx, op)
		}
		return next(ctx, conn)
	}
}

type env struct {
	t        testing.TB
	dir      string
	scratch  *store.DB
	durable  *store.DB
	accounts *accounts
	hub      *hub.Hub
	svc      *Service
	srv      *httptest.Server
	client   monitorv1connect.MonitorServiceClient
	logs     *testkit.LogBuffer
}

// newEnv starts a monitor service on real SQLite databases in a temp dir,
// served over HTTP/2 with TLS through the real auth, stream-guard and error
// interceptors and the real client-address resolver (no trusted proxies).
func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	return newEnvBehind(t, o, nil)
}

// newEnvBehind is newEnv with the test client's address range trusted as
// proxies (their X-Forwarded-For is believed).
//
// Unless o sets Limits, the limits are the defaults but for the calls per
// client address, which is off: every test client comes from one address.
func newEnvBehind(t testing.TB, o Options, trusted []netip.Prefix) *env {
	t.Helper()
	if o.Limits == nil {
		l := DefaultLimits()
		l.CallsPerAddr = limit.Rate{}
		o.Limits = &l
	}
	e := &env{t: t, dir: t.TempDir(),
		accounts: &accounts{hideIP: map[string]bool{"acct-a": false, "acct-b": false}, gpcIgnored: map[string]bool{}, origins: map[string][]string{}}}
	var err error
	e.durable, err = store.Open(filepath.Join(e.dir, "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.scratch, err = store.Open(filepath.Join(e.dir, "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := NewStore(ctx, e.scratch)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeyStore(ctx, e.durable)
	if err != nil {
		t.Fatal(err)
	}
	e.hub = hub.New(0)
	var log *slog.Logger
	log, e.logs = testkit.Logger(t)
	e.svc, err = NewService(st, ks, e.hub, e.accounts, log, o)
	if err != nil {
		t.Fatal(err)
	}
	// The real policy, with operator procedures opened to the test
	// interceptor that stands in for sessions.
	policy := Policy()
	for p, k := range policy {
		if k == auth.OperatorOnly || k == auth.AdminOnly {
			policy[p] = auth.Public
		}
	}
	mux := http.NewServeMux()
	mux.Handle(monitorv1connect.NewMonitorServiceHandler(e.svc, connect.WithInterceptors(
		errs.Interceptor{Log: log},
		guard.NewStreams(Policy(), guard.Limits{PerToken: guard.DefaultLimits().PerToken}),
		testOperators{},
		&auth.Interceptor{Visitors: noChatVisitors{}, APIKeys: e.svc, Policy: policy},
	), connect.WithReadMaxBytes(MaxRequestBytes)))
	e.srv = httptest.NewUnstartedServer(netinfo.NewClients(trusted).Middleware(mux))
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	e.client = monitorv1connect.NewMonitorServiceClient(e.srv.Client(), e.srv.URL)
	t.Cleanup(func() {
		e.srv.Close()
		e.hub.Close()
		e.svc.Close()
		e.scratch.Close()
		e.durable.Close()
	})
	return e
}

// visitor is a widget panel: it holds its visit token.
type visitor struct {
	e     *env
	token string
	id    string
	ua    string
	xff   string
	// gpc: the browser sends Global Privacy Control (Sec-GPC: 1).
	gpc bool
	// origin is the Origin the browser sends ("": none, as an SDK).
	origin string
	// writeOnly: the loader on the host page, which holds a page token.
	writeOnly bool
}

func (v *visitor) header(h http.Header) {
	if v.token != "" {
		h.Set("Authorization", "Bearer "+v.token)
	}
	if v.ua != "" {
		h.Set("User-Agent", v.ua)
	}
	if v.xff != "" {
		h.Set("X-Forwarded-For", v.xff)
	}
	if v.gpc {
		h.Set("Sec-GPC", "1")
	}
	if v.origin != "" {
		h.Set("Origin", v.origin)
	}
}

func (v *visitor) track(account, url string) (*monitorv1.TrackResponse, error) {
	req := connect.NewRequest(&monitorv1.TrackRequest{AccountId: account, Page: &monitorv1.Page{Url: url, Title: "Page " + url}, WriteOnly: v.writeOnly})
	v.header(req.Header())
	res, err := v.e.client.Track(context.Background(), req)
	if err != nil {
		return nil, err
	}
	if res.Msg.VisitToken != "" {
		v.token = res.Msg.VisitToken
	}
	if res.Msg.PageToken != "" {
		v.token = res.Msg.PageToken
	}
	v.id = res.Msg.VisitorId
	return res.Msg, nil
}

func (v *visitor) mustTrack(account, url string) *monitorv1.TrackResponse {
	v.e.t.Helper()
	res, err := v.track(account, url)
	if err != nil {
		v.e.t.Fatalf("Track: %v", err)
	}
	return res
}

func (v *visitor) setData(data map[string]string) error {
	req := connect.NewRequest(&monitorv1.SetCustomDataRequest{Data: data})
	v.header(req.Header())
	_, err := v.e.client.SetCustomData(context.Background(), req)
	return err
}

func (v *visitor) identify(ticket string) error {
	req := connect.NewRequest(&monitorv1.IdentifyRequest{Ticket: ticket})
	v.header(req.Header())
	_, err := v.e.client.Identify(context.Background(), req)
	return err
}

func (v *visitor) respond(id string, accepted bool) error {
	req := connect.NewRequest(&monitorv1.RespondToInvitationRequest{InvitationId: id, Accepted: accepted})
	v.header(req.Header())
	_, err := v.e.client.RespondToInvitation(context.Background(), req)
	return err
}

// watchVisit opens the visitor's stream and waits for its first message.
func (v *visitor) watchVisit(ctx context.Context) *connect.ServerStreamForClient[monitorv1.WatchVisitResponse] {
	v.e.t.Helper()
	req := connect.NewRequest(&monitorv1.WatchVisitRequest{})
	v.header(req.Header())
	st, err := v.e.client.WatchVisit(ctx, req)
	if err != nil {
		v.e.t.Fatal(err)
	}
	if !st.Receive() || st.Msg().GetStarted() == nil {
		v.e.t.Fatalf("WatchVisit: no started message: %v", st.Err())
	}
	return st
}

// watchVisitors opens an operator's stream.
func (e *env) watchVisitors(ctx context.Context, op *auth.Operator) *connect.ServerStreamForClient[monitorv1.WatchVisitorsResponse] {
	e.t.Helper()
	req := connect.NewRequest(&monitorv1.WatchVisitorsRequest{})
	req.Header().Set(opHeader, op.ID)
	st, err := e.client.WatchVisitors(ctx, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// snapshot reads a WatchVisitors stream up to the end of its snapshot.
func snapshot(t testing.TB, st *connect.ServerStreamForClient[monitorv1.WatchVisitorsResponse]) map[string]*monitorv1.Visitor {
	t.Helper()
	out := map[string]*monitorv1.Visitor{}
	for st.Receive() {
		for _, v := range st.Msg().Visitors {
			out[v.VisitorId] = v
		}
		if st.Msg().SnapshotDone {
			return out
		}
	}
	t.Fatalf("stream ended before the snapshot was done: %v", st.Err())
	return nil
}

// mintKey creates an API key for op's account.
func (e *env) mintKey(op *auth.Operator) (id, key string) {
	e.t.Helper()
	res, err := e.svc.CreateApiKey(asOp(op), connect.NewRequest(&monitorv1.CreateApiKeyRequest{Name: "shop backend"}))
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Msg.ApiKey.Id, res.Msg.Key
}

func (e *env) mintTicket(key string, data map[string]string, ttl int32) (string, error) {
	req := connect.NewRequest(&monitorv1.MintTicketRequest{Data: data, TtlSeconds: ttl})
	if key != "" {
		req.Header().Set("Authorization", "Bearer "+key)
	}
	res, err := e.client.MintTicket(context.Background(), req)
	if err != nil {
		return "", err
	}
	return res.Msg.Ticket, nil
}

// filesContaining lists the files under the data directory that contain
// any of the needles.
func (e *env) filesContaining(needles ...string) []string {
	e.t.Helper()
	return testkit.FilesContaining(e.t, e.dir, needles...)
}

func wantCode(t testing.TB, what string, err error, want connect.Code) {
	t.Helper()
	testkit.WantCode(t, what, err, want)
}

// eventually polls cond until it holds or the deadline passes.
var eventually = testkit.Eventually

// atAddr is ctx as the client-address middleware leaves it for a request
// from peer ("host:port").
func atAddr(ctx context.Context, peer string) context.Context {
	return netinfo.WithClientAddr(ctx, netinfo.NewClients(nil).Resolve(peer, nil))
}

func trackReq(account, url string) *monitorv1.TrackRequest {
	return &monitorv1.TrackRequest{AccountId: account, Page: &monitorv1.Page{Url: url, Title: "t"}}
}
