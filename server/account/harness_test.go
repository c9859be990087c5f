package account

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/alexedwards/scs/v2"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/privacy/v1/privacyv1connect"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/netinfo"
	"github.com/lethehq/lethe/server/store"
)

// The password the harness bootstraps the admin with (unless a test asks
// Bootstrap to generate one).
const adminPassword = "admin-password-1"

// operatorPassword is the password of operators made by createOperator.
const operatorPassword = "operator-password-1"

// sessionCookie is the name auth.NewSessions gives the session cookie.
const sessionCookie = "lethe_session"

// noVisitors answers the auth interceptor's visitor-token lookups for
// Public procedures (Login): this service has no visitors.
type noVisitors struct{}

func (noVisitors) VisitorByToken(context.Context, string) (*auth.Visitor, error) {
	return nil, errs.Unauthenticated("unknown visitor token")
}

// signOuts records the operators the service reported through
// Options.OnSignOut.
type signOuts struct {
	mu  sync.Mutex
	ids []string
}

func (s *signOuts) record(id string) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (s *signOuts) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

type env struct {
	t        testing.TB
	dir      string
	db       *store.DB
	store    *Store
	sessions *scs.SessionManager
	svc      *Service
	// audit is the audit trail the service records into, on lethe.db.
	audit    *audit.Log
	srv      *httptest.Server
	logs     *testkit.LogBuffer
	signOuts *signOuts
	// clock is the sign-in throttle's time, which tests move on.
	clock *clock
	// firstRun is what Bootstrap reported.
	firstRun FirstRun
	// adminPassword signs the bootstrapped admin in, whether supplied or
	// generated.
	adminPassword string
}

type envConfig struct {
	adminPassword  string
	mailConfigured bool
	// opts are the service's options beyond those every env sets.
	opts Options
}

// withOptions sets the service's hasher, login limits and test hooks.
func withOptions(fn func(*Options)) envOption { return func(c *envConfig) { fn(&c.opts) } }

type envOption func(*envConfig)

// withGeneratedPassword bootstraps with no admin password, so Bootstrap
// chooses one.
func withGeneratedPassword() envOption { return func(c *envConfig) { c.adminPassword = "" } }

// withMailConfigured tells the service that the server can send mail.
func withMailConfigured() envOption { return func(c *envConfig) { c.mailConfigured = true } }

// newEnv starts the account service as app.go wires it: a durable SQLite
// database in a temp dir holding the account tables and the scs sessions,
// the first-run bootstrap (demo account and its admin), and the service
// served over HTTP/2 with TLS behind cross-origin protection, the session
// middleware, and the error and access interceptors with the package's
// Policy. Passwords are hashed with cheap parameters.
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	cfg := envConfig{adminPassword: adminPassword}
	for _, o := range opts {
		o(&cfg)
	}
	e := &env{t: t, dir: t.TempDir(), signOuts: &signOuts{}}
	ctx := context.Background()
	var err error
	e.db, err = store.Open(filepath.Join(e.dir, "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if err := auth.Migrate(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	if e.store, err = NewStore(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	e.sessions = auth.NewSessions(e.db, true)
	var log *slog.Logger
	log, e.logs = testkit.Logger(t)
	if e.audit, err = audit.NewLog(ctx, e.db, log, audit.Options{Retention: e.store.AuditRetention}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.audit.Close() })
	o := cfg.opts
	o.Audit = e.audit
	o.PasswordParams = testkit.CheapPasswords
	if o.HashFailedRate == nil {
		// Off unless a test sets it: it runs on real time, and the
		// throttle's tests move a clock.
		o.HashFailedRate = &limit.Rate{}
	}
	o.MailConfigured = cfg.mailConfigured
	o.OnSignOut = e.signOuts.record
	e.clock = &clock{t: time.Now()}
	if o.clock == nil {
		o.clock = e.clock.now
	}
	if e.svc, err = NewService(e.store, e.sessions, log, o); err != nil {
		t.Fatal(err)
	}
	if e.firstRun, err = Bootstrap(ctx, e.store, e.svc, cfg.adminPassword); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	e.adminPassword = cfg.adminPassword
	if e.adminPassword == "" {
		e.adminPassword = e.firstRun.GeneratedPassword
	}

	mux := http.NewServeMux()
	interceptors := connect.WithInterceptors(
		errs.Interceptor{Log: log},
		&auth.Interceptor{Sessions: e.sessions, Operators: e.svc, Visitors: noVisitors{}, Policy: Policy()},
	)
	mux.Handle(accountv1connect.NewAccountServiceHandler(e.svc, interceptors, connect.WithRequireConnectProtocolHeader()))
	// The operator RPCs of lethe.privacy.v1 over the service, as the
	// privacy service serves them (operator session required).
	mux.Handle(privacyv1connect.NewPrivacyServiceHandler(operatorRights{e.svc}, interceptors, connect.WithRequireConnectProtocolHeader()))
	// The client's address as app.go resolves it, with the test client
	// behind a trusted proxy so that each console can say where it is
	// (newOperatorAt).
	clients := netinfo.NewClients([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	e.srv = httptest.NewUnstartedServer(clients.Middleware(http.NewCrossOriginProtection().Handler(auth.SessionMiddleware(e.sessions, mux))))
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

// operator is a console: the generated AccountService client on an HTTP
// client whose cookie jar keeps the session.
type operator struct {
	e       *env
	account accountv1connect.AccountServiceClient
	privacy privacyv1connect.PrivacyServiceClient
	// jar holds the session cookie.
	jar http.CookieJar
	// me is the operator as Login returned it.
	me *accountv1.Operator
}

// newOperator returns a console that has not signed in.
func (e *env) newOperator() *operator {
	return e.newConsole(nil)
}

// newOperatorAt returns a console that has not signed in, at client
// address addr (forwarded by the trusted proxy in front of the server).
func (e *env) newOperatorAt(addr string) *operator {
	return e.newConsole(http.Header{"X-Forwarded-For": {addr}})
}

// newConsole returns a console that has not signed in and sends header
// with every call.
func (e *env) newConsole(header http.Header) *operator {
	c := *e.srv.Client()
	c.Jar, _ = cookiejar.New(nil)
	set := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			for k, vs := range header {
				req.Header()[k] = vs
			}
			return next(ctx, req)
		}
	}))
	return &operator{e: e, jar: c.Jar, account: accountv1connect.NewAccountServiceClient(&c, e.srv.URL, set),
		privacy: privacyv1connect.NewPrivacyServiceClient(&c, e.srv.URL, set)}
}

// cookie is the console's session cookie (nil when it has none).
func (o *operator) cookie() *http.Cookie {
	u, _ := url.Parse(o.e.srv.URL)
	for _, c := range o.jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// login signs the console in.
func (o *operator) login(email, password string) error {
	res, err := o.account.Login(context.Background(), connect.NewRequest(&accountv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		return err
	}
	o.me = res.Msg.Operator
	return nil
}

func (o *operator) getMe() (*accountv1.GetMeResponse, error) {
	res, err := o.account.GetMe(context.Background(), connect.NewRequest(&accountv1.GetMeRequest{}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (o *operator) setDisabled(id string, disabled bool) (*accountv1.Operator, error) {
	res, err := o.account.SetOperatorDisabled(context.Background(),
		connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: id, Disabled: disabled}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Operator, nil
}

func (o *operator) operators() []*accountv1.Operator {
	o.e.t.Helper()
	res, err := o.account.ListOperators(context.Background(), connect.NewRequest(&accountv1.ListOperatorsRequest{}))
	if err != nil {
		o.e.t.Fatalf("ListOperators: %v", err)
	}
	return res.Msg.Operators
}

func (o *operator) getSettings() (*accountv1.GetSettingsResponse, error) {
	res, err := o.account.GetSettings(context.Background(), connect.NewRequest(&accountv1.GetSettingsRequest{}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (o *operator) updateSettings(s *accountv1.Settings) (*accountv1.Settings, error) {
	res, err := o.account.UpdateSettings(context.Background(), connect.NewRequest(&accountv1.UpdateSettingsRequest{Settings: s}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Settings, nil
}

// login returns a console signed in with email and password.
func (e *env) login(email, password string) *operator {
	e.t.Helper()
	o := e.newOperator()
	if err := o.login(email, password); err != nil {
		e.t.Fatalf("login %s: %v", email, err)
	}
	return o
}

// admin returns the bootstrapped admin, signed in.
func (e *env) admin() *operator {
	e.t.Helper()
	return e.login(DefaultAdminEmail, e.adminPassword)
}

// createOperator has the admin add a plain operator (password
// operatorPassword) and returns it signed in.
func (e *env) createOperator(admin *operator, email, name string) *operator {
	e.t.Helper()
	_, err := admin.account.CreateOperator(context.Background(), connect.NewRequest(&accountv1.CreateOperatorRequest{
		Email: email, Name: name, Password: operatorPassword, Role: accountv1.Role_ROLE_OPERATOR}))
	if err != nil {
		e.t.Fatalf("CreateOperator %s: %v", email, err)
	}
	return e.login(email, operatorPassword)
}

// addAccount creates another account with one admin straight in the store
// (there is no RPC to create accounts) and returns that admin signed in.
func (e *env) addAccount(id, adminEmail string) *operator {
	e.t.Helper()
	ctx := context.Background()
	if err := e.store.CreateAccount(ctx, Account{ID: id, Name: id + " Inc", CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	hash, err := e.svc.HashPassword(ctx, adminPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateOperator(ctx, Operator{ID: id + "-admin", AccountID: id, Email: adminEmail, Name: "Admin of " + id,
		PasswordHash: hash, Role: RoleAdmin, CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	return e.login(adminEmail, adminPassword)
}

// post makes a Connect unary call by hand (JSON), so that headers and
// cookies are under the test's control.
func (e *env) post(procedure, body string, header http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+procedure, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	return res
}

// loginBody is the JSON of a LoginRequest.
func loginBody(email, password string) string {
	return `{"email":"` + email + `","password":"` + password + `"}`
}

// rawLogin signs the admin in by hand and returns the session cookie.
func (e *env) rawLogin() *http.Cookie {
	e.t.Helper()
	res := e.post(accountv1connect.AccountServiceLoginProcedure, loginBody(DefaultAdminEmail, e.adminPassword), nil)
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		e.t.Fatalf("Login: HTTP %d: %s", res.StatusCode, b)
	}
	c := cookieOf(res)
	if c == nil {
		e.t.Fatalf("Login set no session cookie (Set-Cookie: %q)", res.Header.Values("Set-Cookie"))
	}
	return c
}

// cookieOf returns the session cookie a response sets, or nil.
func cookieOf(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// withCookie is a request header carrying c.
func withCookie(c *http.Cookie) http.Header { return http.Header{"Cookie": {c.Name + "=" + c.Value}} }

// countOperators counts every operator in the database.
func (e *env) countOperators() int {
	e.t.Helper()
	n, err := e.store.CountOperators(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func wantCode(t testing.TB, what string, err error, want connect.Code) {
	t.Helper()
	testkit.WantCode(t, what, err, want)
}

// messageOf is the message of a Connect error ("" for any other error).
func messageOf(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return ""
}
