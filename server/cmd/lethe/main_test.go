package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/mail/mailtest"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// The test harness: a real app (SQLite in a temp dir, hub, services) served
// over HTTP/2 with TLS by httptest, called through the Go SDK.

const (
	adminEmail    = "admin@lethe.local"
	adminPassword = "admin-password-1"
	demoAccount   = "demo"
	// waitTimeout bounds every wait for an event, so a broken feature fails
	// instead of hanging the suite.
	waitTimeout = 15 * time.Second
)

type testServer struct {
	t    *testing.T
	srv  *httptest.Server
	app  *app
	URL  string
	dir  string
	logs *testkit.LogBuffer
	once sync.Once
}

type serverOption func(*config)

// withDataDir starts the server on an existing data directory (a restart).
func withDataDir(dir string) serverOption { return func(c *config) { c.dataDir = dir } }

func newTestServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	fresh := t.TempDir()
	cfg := config{
		dataDir:       fresh,
		adminPW:       adminPassword,
		presenceGrace: 50 * time.Millisecond,
		// Production hashing (64 MiB) is half the suite's CPU under -race;
		// the binary tests still use the real parameters.
		passwordParams: testkit.CheapPasswords,
	}
	for _, o := range opts {
		o(&cfg)
	}
	log, logs := testkit.Logger(t)
	a, err := newApp(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	if fr := a.firstRun; cfg.dataDir == fresh && (!fr.Created || fr.Email != adminEmail || fr.GeneratedPassword != "") {
		t.Fatalf("first run did not create the admin with the given password: %+v", fr)
	}
	srv := httptest.NewUnstartedServer(a.handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	ts := &testServer{t: t, srv: srv, app: a, URL: srv.URL, dir: cfg.dataDir, logs: logs}
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server and the app down (once).
func (ts *testServer) stop() {
	ts.once.Do(func() {
		// End the streams first so that Close does not wait for them.
		ts.app.hub.Close()
		ts.srv.CloseClientConnections()
		ts.srv.Close()
		if err := ts.app.Close(); err != nil {
			ts.t.Errorf("app.Close: %v", err)
		}
	})
}

// client is an HTTP/2 over TLS client trusting the test server.
func (ts *testServer) client() *http.Client { return ts.srv.Client() }

func (ts *testServer) visitor(opts ...connect.ClientOption) *lethe.Visitor {
	return lethe.NewVisitor(ts.client(), ts.URL, opts...)
}

func (ts *testServer) operator(opts ...connect.ClientOption) *lethe.Operator {
	return lethe.NewOperator(ts.client(), ts.URL, opts...)
}

// login returns an operator signed in with email and password.
func (ts *testServer) login(email, password string) *lethe.Operator {
	ts.t.Helper()
	o := ts.operator()
	if err := o.Login(context.Background(), email, password); err != nil {
		ts.t.Fatalf("login %s: %v", email, err)
	}
	return o
}

func (ts *testServer) admin() *lethe.Operator { return ts.login(adminEmail, adminPassword) }

// createOperator has the admin add an operator and returns it signed in.
func (ts *testServer) createOperator(admin *lethe.Operator, email, name string) *lethe.Operator {
	ts.t.Helper()
	_, err := admin.Account.CreateOperator(context.Background(), connect.NewRequest(&accountv1.CreateOperatorRequest{
		Email: email, Name: name, Password: "operator-password-1", Role: accountv1.Role_ROLE_OPERATOR}))
	if err != nil {
		ts.t.Fatalf("CreateOperator %s: %v", email, err)
	}
	return ts.login(email, "operator-password-1")
}

// startChat opens a chat for a new visitor.
func (ts *testServer) startChat(name, email, first string) *lethe.Visitor {
	ts.t.Helper()
	v := ts.visitor()
	if err := v.Start(context.Background(), lethe.StartChat{AccountID: demoAccount, Name: name, Email: email, FirstMessage: first}); err != nil {
		ts.t.Fatalf("StartChat: %v", err)
	}
	return v
}

// waitLog waits until the server log contains s.
func (ts *testServer) waitLog(s string) { ts.t.Helper(); testkit.WaitLog(ts.t, ts.logs, s, 1) }

// waitDestroyed waits until the chat's destruction (rows deleted, WAL
// truncated) is logged.
func (ts *testServer) waitDestroyed(chatID string) {
	ts.t.Helper()
	ts.waitLog(`msg="chat destroyed" chat=` + chatID)
}

// filesContaining lists the files under the data dir whose bytes contain s.
func (ts *testServer) filesContaining(s string) []string {
	ts.t.Helper()
	return testkit.FilesContaining(ts.t, ts.dir, s)
}

// waitLogCount waits until the server log contains s at least n times.
func (ts *testServer) waitLogCount(s string, n int) {
	ts.t.Helper()
	testkit.WaitLog(ts.t, ts.logs, s, n)
}

type chatStream = testkit.Stream[*chatv1.WatchChatResponse]
type inboxStream = testkit.Stream[*chatv1.WatchInboxResponse]

// watchChat runs the visitor's resuming Watch from afterSeq.
func watchChat(t *testing.T, v *lethe.Visitor, afterSeq int64) *chatStream {
	return testkit.Follow(t, func(ctx context.Context, fn func(*chatv1.WatchChatResponse) error) error {
		return v.Watch(ctx, afterSeq, fn)
	})
}

// watchInbox runs the operator's resuming WatchInbox and waits for the end
// of its snapshot.
func watchInbox(t *testing.T, o *lethe.Operator) *inboxStream {
	t.Helper()
	s := testkit.Follow(t, func(ctx context.Context, fn func(*chatv1.WatchInboxResponse) error) error {
		return o.WatchInbox(ctx, fn)
	})
	s.Next("inbox snapshot", chattest.SnapshotDone)
	return s
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	testkit.WantCode(t, "call", err, code)
}

// oneOf reports whether err carries one of codes.
func oneOf(err error, codes ...connect.Code) bool { return slices.Contains(codes, testkit.CodeOf(err)) }

var randomText = testkit.RandomText

// startReq is a pre-chat form for the demo account.
func startReq(name, first string) lethe.StartChat {
	return lethe.StartChat{AccountID: demoAccount, Name: name, FirstMessage: first}
}

// withSMTP sends mail through the in-process relay on port (which may be
// down yet), trusting ca, with fast retries.
func withSMTP(port int, ca *mailtest.CA) serverOption {
	return func(c *config) {
		c.smtpHost, c.smtpPort, c.smtpCA, c.smtpFrom = "127.0.0.1", port, ca.File, mailFrom
		c.mailMaxHold = time.Hour
		c.mailRetryMin, c.mailRetryMax = 20*time.Millisecond, 200*time.Millisecond
	}
}

// updateSettings has an admin change the account settings: fn edits the
// current ones.
func updateSettings(t *testing.T, admin *lethe.Operator, fn func(*accountv1.Settings)) *accountv1.Settings {
	t.Helper()
	ctx := context.Background()
	cur, err := admin.Account.GetSettings(ctx, connect.NewRequest(&accountv1.GetSettingsRequest{}))
	if err != nil {
		t.Fatalf("GetSettings: %v", err)
	}
	s := cur.Msg.Settings
	fn(s)
	res, err := admin.Account.UpdateSettings(ctx, connect.NewRequest(&accountv1.UpdateSettingsRequest{Settings: s}))
	if err != nil {
		t.Fatalf("UpdateSettings: %v", err)
	}
	return res.Msg.Settings
}

// transcriptsTo enables transcripts (and offline messages) to recipient.
func transcriptsTo(s *accountv1.Settings) {
	s.TranscriptsEnabled = true
	s.Recipients = []string{recipient}
}

// history reads the visitor's chat from the start until seq until.
func history(t *testing.T, v *lethe.Visitor, until int64) []*chatv1.ChatEvent {
	t.Helper()
	return chattest.History(t, func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
		return v.Chat.WatchChat(ctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: v.ChatID}))
	}, until)
}

var (
	texts     = chattest.Texts
	checkSeqs = chattest.CheckSeqs
)
