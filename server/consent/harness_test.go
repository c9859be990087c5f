package consent

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/alexedwards/scs/v2"

	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/store"
)

// Operators of the test accounts.
var (
	opA  = &auth.Operator{ID: "op-a", AccountID: "acct-a", Name: "Ann", Admin: true}
	opA2 = &auth.Operator{ID: "op-a2", AccountID: "acct-a", Name: "Abe"}
	opB  = &auth.Operator{ID: "op-b", AccountID: "acct-b", Name: "Bob", Admin: true}
)

// operators stands in for the account package behind auth.OperatorSource
// (it is another domain's storage, not ours).
type operators map[string]*auth.Operator

func (o operators) SessionOperator(_ context.Context, id string) (*auth.Operator, error) {
	if op := o[id]; op != nil {
		return op, nil
	}
	return nil, errs.Unauthenticated("unknown operator")
}

// visitors stands in for the chat package behind auth.VisitorSource: the
// bearer tokens of the chats the tests opened.
type visitors struct {
	mu     sync.Mutex
	tokens map[string]*auth.Visitor
}

func (v *visitors) VisitorByToken(_ context.Context, token string) (*auth.Visitor, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if vis := v.tokens[token]; vis != nil {
		return vis, nil
	}
	return nil, errs.Unauthenticated("unknown visitor token")
}

// withdrawals stands in for the chat service behind Withdrawer: it records
// the chats it is asked to end and answers what the test told it to.
type withdrawals struct {
	mu    sync.Mutex
	chats []string
	err   error
}

func (w *withdrawals) WithdrawChat(_ context.Context, chatID string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.chats = append(w.chats, chatID)
	return w.err
}

// answer makes every later WithdrawChat return err.
func (w *withdrawals) answer(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// called returns the chats WithdrawChat was asked to end, in order.
func (w *withdrawals) called() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.chats...)
}

type env struct {
	t       testing.TB
	durable *store.DB
	store   *Store
	checker *Checker
	svc     *Service
	// audit is the audit trail the service records into, on lethe.db.
	audit       *audit.Log
	withdrawals *withdrawals
	visitors    *visitors
	sessions    *scs.SessionManager
	srv         *httptest.Server
	logs        *testkit.LogBuffer
}

// signInPath is a test-only endpoint that puts an operator into a fresh
// session, as the account service's Login does after the password check.
const signInPath = "/test/sign-in"

// newEnv starts a consent service on a real durable SQLite database in a
// temp dir, served over HTTP/2 with TLS through the real error and auth
// interceptors with the real policy. Operators sign in with real session
// cookies (scs in the same database); visitors present a bearer token.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, withdrawals: &withdrawals{}, visitors: &visitors{tokens: map[string]*auth.Visitor{}}}
	var err error
	e.durable, err = store.Open(filepath.Join(t.TempDir(), "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if e.store, err = NewStore(ctx, e.durable); err != nil {
		t.Fatal(err)
	}
	if err := auth.Migrate(ctx, e.durable); err != nil {
		t.Fatal(err)
	}
	e.checker = NewChecker(e.store)
	e.sessions = auth.NewSessions(e.durable, true)
	log, logs := testkit.Logger(t)
	e.logs = logs
	if e.audit, err = audit.NewLog(ctx, e.durable, log, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	e.svc = NewService(e.store, e.withdrawals, WithAudit(e.audit))

	mux := http.NewServeMux()
	mux.Handle(consentv1connect.NewConsentServiceHandler(e.svc, connect.WithInterceptors(
		errs.Interceptor{Log: log},
		&auth.Interceptor{Sessions: e.sessions, Operators: operators{opA.ID: opA, opA2.ID: opA2, opB.ID: opB},
			Visitors: e.visitors, Policy: Policy()},
	)))
	mux.HandleFunc("POST "+signInPath, func(w http.ResponseWriter, r *http.Request) {
		if err := e.sessions.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		e.sessions.Put(r.Context(), auth.SessionKey, r.FormValue("operator"))
		w.WriteHeader(http.StatusNoContent)
	})
	e.srv = httptest.NewUnstartedServer(auth.SessionMiddleware(e.sessions, mux))
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	t.Cleanup(func() {
		e.srv.Close()
		auth.StopSessions(e.sessions)
		e.audit.Close()
		e.durable.Close()
	})
	return e
}

// anonymous is a client with neither a session nor a visitor token (the
// widget before a chat).
func (e *env) anonymous() consentv1connect.ConsentServiceClient {
	return consentv1connect.NewConsentServiceClient(e.srv.Client(), e.srv.URL)
}

// as is a client signed in as op with a real session cookie.
func (e *env) as(op *auth.Operator) consentv1connect.ConsentServiceClient {
	e.t.Helper()
	c := *e.srv.Client()
	var err error
	if c.Jar, err = cookiejar.New(nil); err != nil {
		e.t.Fatal(err)
	}
	res, err := c.PostForm(e.srv.URL+signInPath, url.Values{"operator": {op.ID}})
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		e.t.Fatalf("sign in as %s: HTTP %d", op.ID, res.StatusCode)
	}
	return consentv1connect.NewConsentServiceClient(&c, e.srv.URL)
}

// visitor is a client holding the bearer token of v's chat (the widget's
// panel during a chat).
func (e *env) visitor(v *auth.Visitor) consentv1connect.ConsentServiceClient {
	token := "chat-token-" + v.ID
	e.visitors.mu.Lock()
	e.visitors.tokens[token] = v
	e.visitors.mu.Unlock()
	return consentv1connect.NewConsentServiceClient(e.srv.Client(), e.srv.URL, connect.WithInterceptors(
		connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				req.Header().Set("Authorization", "Bearer "+token)
				return next(ctx, req)
			}
		})))
}

// text is a SetConsentText request.
type text struct {
	form     Form
	locale   string
	text     string
	required bool
}

func (x text) req() *connect.Request[consentv1.SetConsentTextRequest] {
	return connect.NewRequest(&consentv1.SetConsentTextRequest{Form: x.form, Locale: x.locale, Text: x.text, Required: x.required})
}

// set stores x as a new version through c and returns what was stored.
func (e *env) set(c consentv1connect.ConsentServiceClient, x text) *consentv1.ConsentText {
	e.t.Helper()
	res, err := c.SetConsentText(context.Background(), x.req())
	if err != nil {
		e.t.Fatalf("SetConsentText(%v %q): %v", x.form, x.locale, err)
	}
	return res.Msg.Text
}

// get is GetConsent as the widget calls it.
func (e *env) get(account, locale string) *consentv1.GetConsentResponse {
	e.t.Helper()
	res, err := e.anonymous().GetConsent(context.Background(), connect.NewRequest(&consentv1.GetConsentRequest{AccountId: account, Locale: locale}))
	if err != nil {
		e.t.Fatalf("GetConsent(%s, %q): %v", account, locale, err)
	}
	return res.Msg
}

// list is ListConsentTexts through c.
func (e *env) list(c consentv1connect.ConsentServiceClient) []*consentv1.ConsentText {
	e.t.Helper()
	res, err := c.ListConsentTexts(context.Background(), connect.NewRequest(&consentv1.ListConsentTextsRequest{}))
	if err != nil {
		e.t.Fatalf("ListConsentTexts: %v", err)
	}
	return res.Msg.Texts
}

// listed finds the listed text of (form, locale), or nil.
func listed(texts []*consentv1.ConsentText, form Form, locale string) *consentv1.ConsentText {
	for _, x := range texts {
		if x.Form == form && x.Locale == locale {
			return x
		}
	}
	return nil
}

func wantCode(t testing.TB, what string, err error, want connect.Code) {
	t.Helper()
	testkit.WantCode(t, what, err, want)
}
