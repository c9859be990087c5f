package chat

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/consent"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/guard"
	"github.com/lethehq/lethe/server/hub"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/mail"
	"github.com/lethehq/lethe/server/mail/mailtest"
	"github.com/lethehq/lethe/server/netinfo"
	"github.com/lethehq/lethe/server/store"
)

// The test account and its operators.
const (
	acct        = "acct-a"
	accountName = "Acme Ltd"
	// mailFrom is the server's From address; recipient gets the account's
	// transcripts and offline messages.
	mailFrom  = "Lethe <lethe@example.test>"
	recipient = "inbox@example.org"
	// opHeader names the operator a request is signed in as (the tests'
	// stand-in for the login that sets the session cookie).
	opHeader = "X-Test-Operator"
)

var (
	opAdmin = auth.Operator{ID: "op-admin", AccountID: acct, Name: "Admin", Admin: true}
	opBob   = auth.Operator{ID: "op-bob", AccountID: acct, Name: "Bob"}
)

// accounts stands in for the account package behind chat's Directory and
// auth's OperatorSource: it is another domain's storage, not chat's, and
// answers as account.Store and account.Service do.
type accounts struct {
	mu       sync.Mutex
	settings map[string]AccountSettings
	ops      map[string]auth.Operator
	disabled map[string]bool
}

func (a *accounts) AccountName(_ context.Context, id string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.settings[id]; !ok {
		return "", fmt.Errorf("account %s: %w", id, errs.ErrNotFound)
	}
	return accountName, nil
}

func (a *accounts) ActiveOperatorName(_ context.Context, accountID, id string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.ops[id]
	if !ok || o.AccountID != accountID {
		return "", fmt.Errorf("operator %s: %w", id, errs.ErrNotFound)
	}
	if a.disabled[id] {
		return "", errs.Precondition("that operator is disabled")
	}
	return o.Name, nil
}

func (a *accounts) Settings(_ context.Context, id string) (AccountSettings, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.settings[id]
	if !ok {
		return AccountSettings{}, fmt.Errorf("account %s: %w", id, errs.ErrNotFound)
	}
	return s, nil
}

func (a *accounts) SessionOperator(_ context.Context, id string) (*auth.Operator, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.ops[id]
	if !ok || a.disabled[id] {
		return nil, errs.Unauthenticated("sign in first")
	}
	return &o, nil
}

// update changes the account's settings (an admin in the console).
func (a *accounts) update(fn func(*AccountSettings)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.settings[acct]
	fn(&s)
	a.settings[acct] = s
}

func (a *accounts) disable(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.disabled[id] = true
}

// transcriptsTo turns transcripts (and offline messages) to recipient on.
func transcriptsTo(s *AccountSettings) {
	s.TranscriptsEnabled = true
	s.Recipients = []string{recipient}
}

type config struct {
	opts      Options
	limits    Limits
	streams   guard.Limits
	hubBuffer int
	trusted   []netip.Prefix
	mailPort  int
	mailCA    *mailtest.CA
}

type option func(*config)

func withHubBuffer(n int) option               { return func(c *config) { c.hubBuffer = n } }
func withPresenceGrace(d time.Duration) option { return func(c *config) { c.opts.PresenceGrace = d } }
func withJanitor(d time.Duration) option       { return func(c *config) { c.opts.JanitorInterval = d } }

// withLimits changes the limits on anonymous clients from the harness's
// (see newEnv).
func withLimits(fn func(*Limits)) option { return func(c *config) { fn(&c.limits) } }

// withStreamLimits sets the ceilings on open visitor streams.
func withStreamLimits(l guard.Limits) option { return func(c *config) { c.streams = l } }

// behindProxy trusts the test clients' addresses as proxies: their
// X-Forwarded-For is believed.
func behindProxy() option {
	return func(c *config) { c.trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }
}

// withAudit records what the service counts in the audit trail.
func withAudit(r audit.Recorder) option { return func(c *config) { c.opts.Audit = r } }

// withMail sends mail through a relay on port (up or not yet), trusting
// ca, with fast retries.
func withMail(port int, ca *mailtest.CA) option {
	return func(c *config) { c.mailPort, c.mailCA = port, ca }
}

type env struct {
	t        testing.TB
	dir      string
	scratch  *store.DB
	durable  *store.DB
	accounts *accounts
	consents *consent.Service
	hub      *hub.Hub
	svc      *Service
	queue    *mail.Queue // nil without withMail
	srv      *httptest.Server
	logs     *testkit.LogBuffer
}

// newEnv starts a chat service on real SQLite databases in a temp dir, with
// the real hub, consent checker and store, and (withMail) mail queue, served
// over HTTP/2 with TLS through the real client-address middleware, session
// middleware, and error, stream-guard and auth interceptors with chat's own
// policy. Only the account package is stood in for (accounts), and its
// login: a request naming an operator in opHeader carries that operator's
// session cookie.
//
// Every test client comes from one address (127.0.0.1, or what it forwards
// behind a proxy), so the limits per client address are off unless a test
// sets them (withLimits, withStreamLimits); the per-visitor ones are the
// defaults.
func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	cfg := config{opts: Options{PresenceGrace: 50 * time.Millisecond}, limits: DefaultLimits(),
		streams: guard.Limits{PerToken: guard.DefaultLimits().PerToken}}
	cfg.limits.StartsPerAddr, cfg.limits.OpenPerAddr, cfg.limits.MessagesPerAddr = limit.Rate{}, 0, limit.Rate{}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.opts.Limits = &cfg.limits
	e := &env{t: t, dir: t.TempDir(), accounts: &accounts{
		settings: map[string]AccountSettings{acct: {IdleTimeout: 10 * time.Minute}},
		ops:      map[string]auth.Operator{opAdmin.ID: opAdmin, opBob.ID: opBob},
		disabled: map[string]bool{},
	}}
	ctx := context.Background()
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	e.durable, err = store.Open(filepath.Join(e.dir, "lethe.db"), store.Options{})
	must(err)
	t.Cleanup(func() { e.durable.Close() })
	e.scratch, err = store.Open(filepath.Join(e.dir, "scratch.db"), store.Options{SecureDelete: true})
	must(err)
	t.Cleanup(func() { e.scratch.Close() })
	must(auth.Migrate(ctx, e.durable))
	consents, err := consent.NewStore(ctx, e.durable)
	must(err)
	chats, err := NewStore(ctx, e.scratch)
	must(err)
	log, logs := testkit.Logger(t)
	e.logs = logs
	e.hub = hub.New(cfg.hubBuffer)

	var queue *mail.Queue
	if cfg.mailPort != 0 {
		queue, err = mail.NewQueue(ctx, e.scratch, mail.Config{Host: "127.0.0.1", Port: cfg.mailPort, From: mailFrom,
			MaxHold: time.Hour, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
			TLSConfig: cfg.mailCA.ClientTLS()}, log)
		must(err)
		cfg.opts.Mailer = queue
		e.queue = queue
	}
	e.svc, err = NewService(ctx, chats, e.hub, e.accounts, consent.NewChecker(consents), log, cfg.opts)
	must(err)
	t.Cleanup(func() { e.svc.Close() })
	e.consents = consent.NewService(consents, e.svc)
	if queue != nil {
		mctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			queue.Run(mctx, func(ctx context.Context, ref string, _ bool) { e.svc.MailDone(ctx, ref) })
		}()
		t.Cleanup(func() { stop(); <-done })
	}

	// Operators sign in with a real session: one per operator, minted in
	// the session store as a login would, and sent as the cookie of every
	// request that names the operator in opHeader.
	sessions := auth.NewSessions(e.durable, true)
	if s, ok := sessions.Store.(interface{ StopCleanup() }); ok {
		t.Cleanup(s.StopCleanup)
	}
	cookies := map[string]string{}
	for id := range e.accounts.ops {
		sctx, err := sessions.Load(ctx, "")
		must(err)
		sessions.Put(sctx, auth.SessionKey, id)
		cookies[id], _, err = sessions.Commit(sctx)
		must(err)
	}
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(e.svc, connect.WithInterceptors(
		errs.Interceptor{Log: log},
		guard.NewStreams(Policy(), cfg.streams),
		&auth.Interceptor{Sessions: sessions, Operators: e.accounts, Visitors: e.svc, Policy: Policy()},
	), connect.WithReadMaxBytes(MaxRequestBytes)))
	signIn := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tok, ok := cookies[r.Header.Get(opHeader)]; ok {
				r.AddCookie(&http.Cookie{Name: sessions.Cookie.Name, Value: tok})
			}
			next.ServeHTTP(w, r)
		})
	}
	e.srv = httptest.NewUnstartedServer(netinfo.NewClients(cfg.trusted).Middleware(signIn(auth.SessionMiddleware(sessions, mux))))
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	t.Cleanup(func() {
		e.hub.Close() // ends the streams still open
		e.srv.CloseClientConnections()
		e.srv.Close()
	})
	return e
}

// headers is a client interceptor that adds a caller's headers to every call.
type headers func(http.Header)

func (h headers) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		h(req.Header())
		return next(ctx, req)
	}
}

func (h headers) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		h(conn.RequestHeader())
		return conn
	}
}

func (h headers) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// visitor is a widget panel: it holds its chat token and chat id, and
// comes from xff when it is behind a proxy.
type visitor struct {
	chat          chatv1connect.ChatServiceClient
	token, chatID string
	xff           string
}

// visitor returns a visitor with no chat yet, on the shared connection or
// on httpClient.
func (e *env) visitor(httpClient ...*http.Client) *visitor {
	c := e.srv.Client()
	if len(httpClient) > 0 {
		c = httpClient[0]
	}
	v := &visitor{}
	v.chat = chatv1connect.NewChatServiceClient(c, e.srv.URL, connect.WithInterceptors(headers(func(h http.Header) {
		if v.token != "" {
			h.Set("Authorization", "Bearer "+v.token)
		}
		if v.xff != "" {
			h.Set("X-Forwarded-For", v.xff)
		}
	})))
	return v
}

// startChat opens a chat for a new visitor.
func (e *env) startChat(name, email, first string) *visitor {
	e.t.Helper()
	v := e.visitor()
	if err := v.start(context.Background(), &chatv1.StartChatRequest{AccountId: acct, VisitorName: name, VisitorEmail: email, FirstMessage: first}); err != nil {
		e.t.Fatalf("StartChat: %v", err)
	}
	return v
}

// start sends the pre-chat form and keeps the token and chat id.
func (v *visitor) start(ctx context.Context, req *chatv1.StartChatRequest) error {
	res, err := v.chat.StartChat(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	v.token, v.chatID = res.Msg.VisitorToken, res.Msg.ChatId
	return nil
}

func (v *visitor) send(ctx context.Context, text string) (*chatv1.ChatEvent, error) {
	res, err := v.chat.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{ChatId: v.chatID, Text: text}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Event, nil
}

func (v *visitor) typing(ctx context.Context, on bool) error {
	_, err := v.chat.SetTyping(ctx, connect.NewRequest(&chatv1.SetTypingRequest{ChatId: v.chatID, Typing: on}))
	return err
}

func (v *visitor) end(ctx context.Context) error {
	_, err := v.chat.EndChat(ctx, connect.NewRequest(&chatv1.EndChatRequest{ChatId: v.chatID}))
	return err
}

func (v *visitor) watch(ctx context.Context, afterSeq int64) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
	return v.chat.WatchChat(ctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: v.chatID, AfterSeq: afterSeq}))
}

// leaveOffline leaves an offline message (no chat, no token needed).
func (v *visitor) leaveOffline(ctx context.Context, name, email, text string, consentVersion int32) error {
	_, err := v.chat.LeaveOfflineMessage(ctx, connect.NewRequest(&chatv1.LeaveOfflineMessageRequest{AccountId: acct,
		VisitorName: name, VisitorEmail: email, Message: text, Locale: "en", ConsentVersion: consentVersion}))
	return err
}

// operator is an operator's console.
type operator struct {
	chat chatv1connect.ChatServiceClient
}

// operator returns a console signed in as op (the zero Operator: nobody).
func (e *env) operator(op auth.Operator) *operator {
	return &operator{chat: chatv1connect.NewChatServiceClient(e.srv.Client(), e.srv.URL, connect.WithInterceptors(signedIn(op.ID)))}
}

// signedIn is the client option of a console signed in as operator id.
func signedIn(id string) connect.Interceptor {
	return headers(func(h http.Header) {
		if id != "" {
			h.Set(opHeader, id)
		}
	})
}

func (o *operator) accept(ctx context.Context, chatID string) error {
	_, err := o.chat.AcceptChat(ctx, connect.NewRequest(&chatv1.AcceptChatRequest{ChatId: chatID}))
	return err
}

func (o *operator) send(ctx context.Context, chatID, text string) (*chatv1.ChatEvent, error) {
	res, err := o.chat.SendOperatorMessage(ctx, connect.NewRequest(&chatv1.SendOperatorMessageRequest{ChatId: chatID, Text: text}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Event, nil
}

func (o *operator) typing(ctx context.Context, chatID string, on bool) error {
	_, err := o.chat.SetOperatorTyping(ctx, connect.NewRequest(&chatv1.SetOperatorTypingRequest{ChatId: chatID, Typing: on}))
	return err
}

func (o *operator) transfer(ctx context.Context, chatID, to string) error {
	_, err := o.chat.TransferChat(ctx, connect.NewRequest(&chatv1.TransferChatRequest{ChatId: chatID, ToOperatorId: to}))
	return err
}

func (o *operator) close(ctx context.Context, chatID string) error {
	_, err := o.chat.CloseChat(ctx, connect.NewRequest(&chatv1.CloseChatRequest{ChatId: chatID}))
	return err
}

func (o *operator) setStatus(ctx context.Context, st chatv1.OperatorStatus) error {
	_, err := o.chat.SetStatus(ctx, connect.NewRequest(&chatv1.SetStatusRequest{Status: st}))
	return err
}

// waitDestroyed waits until the chat's destruction (rows deleted, WAL
// truncated) is logged.
func (e *env) waitDestroyed(chatID string) {
	e.t.Helper()
	testkit.WaitLog(e.t, e.logs, `msg="chat destroyed" chat=`+chatID, 1)
}

// filesContaining lists the files under the data directory holding s.
func (e *env) filesContaining(s ...string) []string {
	e.t.Helper()
	return testkit.FilesContaining(e.t, e.dir, s...)
}

func wantCode(t testing.TB, err error, code connect.Code) {
	t.Helper()
	testkit.WantCode(t, "call", err, code)
}

var (
	randomText = testkit.RandomText
	newTag     = testkit.Tag
)
