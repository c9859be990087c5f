package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

// rawPost makes a Connect unary call by hand (JSON), so headers and cookies
// are under the test's control.
func rawPost(t *testing.T, ts *testServer, procedure, body string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+procedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

const loginProcedure = "/lethe.account.v1.AccountService/Login"
const getMeProcedure = "/lethe.account.v1.AccountService/GetMe"

// rawLogin signs the admin in by hand and returns the session cookie.
func rawLogin(t *testing.T, ts *testServer) *http.Cookie {
	t.Helper()
	res := rawPost(t, ts, loginProcedure, `{"email":"`+adminEmail+`","password":"`+adminPassword+`"}`, nil)
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("Login: HTTP %d: %s", res.StatusCode, b)
	}
	for _, c := range res.Cookies() {
		if c.Name == "lethe_session" {
			return c
		}
	}
	t.Fatalf("Login set no session cookie (Set-Cookie: %q)", res.Header.Values("Set-Cookie"))
	return nil
}

func TestLogin_WrongPasswordIsUnauthenticated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	o := ts.operator()
	err := o.Login(ctx, adminEmail, "wrong-password-1")
	wantCode(t, err, connect.CodeUnauthenticated)
	// An unknown address gets the same answer, with the same message.
	err2 := o.Login(ctx, "nobody@example.com", "wrong-password-1")
	wantCode(t, err2, connect.CodeUnauthenticated)
	var e1, e2 *connect.Error
	if errors.As(err, &e1) && errors.As(err2, &e2) && e1.Message() != e2.Message() {
		t.Fatalf("wrong password says %q, unknown address says %q: the messages tell them apart", e1.Message(), e2.Message())
	}
	_, err = o.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
}

func TestLogin_SessionCookieIsHttpOnlyAndSameSiteStrict(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	res := rawPost(t, ts, loginProcedure, `{"email":"`+adminEmail+`","password":"`+adminPassword+`"}`, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Login: HTTP %d", res.StatusCode)
	}
	var raw string
	for _, sc := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "lethe_session=") {
			raw = sc
		}
	}
	if raw == "" {
		t.Fatalf("no session cookie in %q", res.Header.Values("Set-Cookie"))
	}
	c, err := http.ParseSetCookie(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HttpOnly {
		t.Errorf("session cookie %q is not HttpOnly", raw)
	}
	if c.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie %q is not SameSite=Strict", raw)
	}
	if c.Path != "/" {
		t.Errorf("session cookie path = %q, want /", c.Path)
	}
	if len(c.Value) < 32 {
		t.Errorf("session token %q is short", c.Value)
	}
}

func TestLogin_IssuesNewTokenEachTime(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	first := rawLogin(t, ts)
	// Log in again carrying the first session: the token must change
	// (session fixation), and the old one must not work any more.
	res := rawPost(t, ts, loginProcedure, `{"email":"`+adminEmail+`","password":"`+adminPassword+`"}`,
		http.Header{"Cookie": {first.Name + "=" + first.Value}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("second Login: HTTP %d", res.StatusCode)
	}
	var second *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "lethe_session" {
			second = c
		}
	}
	if second == nil {
		t.Fatal("second Login set no cookie")
	}
	if second.Value == first.Value {
		t.Fatal("two logins got the same session token")
	}
	third := rawLogin(t, ts)
	if third.Value == first.Value || third.Value == second.Value {
		t.Fatal("a fresh login reused a session token")
	}
	if res := rawPost(t, ts, getMeProcedure, `{}`, http.Header{"Cookie": {first.Name + "=" + first.Value}}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GetMe with the token replaced at login: HTTP %d, want 401", res.StatusCode)
	}
	if res := rawPost(t, ts, getMeProcedure, `{}`, http.Header{"Cookie": {second.Name + "=" + second.Value}}); res.StatusCode != http.StatusOK {
		t.Fatalf("GetMe with the new token: HTTP %d, want 200", res.StatusCode)
	}
}

func TestCreateOperator_ByNonAdminIsPermissionDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob")
	_, err := bob.Account.CreateOperator(ctx, connect.NewRequest(&accountv1.CreateOperatorRequest{
		Email: "eve@example.com", Name: "Eve", Password: "long-enough-pw", Role: accountv1.Role_ROLE_ADMIN}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = bob.Account.SetOperatorDisabled(ctx, connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: admin.Me.Id, Disabled: true}))
	wantCode(t, err, connect.CodePermissionDenied)
	// Nothing was created; the admin is still enabled.
	list, err := admin.Account.ListOperators(ctx, connect.NewRequest(&accountv1.ListOperatorsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.Operators) != 2 {
		t.Fatalf("%d operators, want 2", len(list.Msg.Operators))
	}
	for _, o := range list.Msg.Operators {
		if o.Disabled {
			t.Fatalf("%s was disabled by a non-admin", o.Email)
		}
	}
}

func TestCreateOperator_RejectsBadFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	for _, tc := range []struct {
		name string
		req  *accountv1.CreateOperatorRequest
	}{
		{"password of 9 characters", &accountv1.CreateOperatorRequest{Email: "c@example.com", Name: "C", Password: "123456789"}},
		{"malformed e-mail", &accountv1.CreateOperatorRequest{Email: "c-at-example.com", Name: "C", Password: "long-enough-pw"}},
		{"empty name", &accountv1.CreateOperatorRequest{Email: "c@example.com", Name: " ", Password: "long-enough-pw"}},
		{"unknown role", &accountv1.CreateOperatorRequest{Email: "c@example.com", Name: "C", Password: "long-enough-pw", Role: 42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.Account.CreateOperator(ctx, connect.NewRequest(tc.req))
			wantCode(t, err, connect.CodeInvalidArgument)
		})
	}
}

func TestCreateOperator_DuplicateEmailIsAlreadyExists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	for _, email := range []string{adminEmail, "ADMIN@lethe.local"} {
		_, err := admin.Account.CreateOperator(ctx, connect.NewRequest(&accountv1.CreateOperatorRequest{
			Email: email, Name: "Twin", Password: "long-enough-pw"}))
		wantCode(t, err, connect.CodeAlreadyExists)
	}
}

func TestSetOperatorDisabled_EndsSessionsAndRefusesLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob")
	inbox := startStream(t, func(ctx context.Context, fn func(*chatv1.WatchInboxResponse) error) error {
		return bob.WatchInbox(ctx, fn)
	})
	inbox.next("Bob's snapshot", func(r *chatv1.WatchInboxResponse) bool { return r.GetSnapshotDone() != nil })

	res, err := admin.Account.SetOperatorDisabled(ctx, connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: bob.Me.Id, Disabled: true}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Msg.Operator.Disabled {
		t.Fatal("response says Bob is not disabled")
	}
	_, err = bob.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
	// His open console stream ends too.
	wantCode(t, inbox.wait(), connect.CodeUnauthenticated)
	err = ts.operator().Login(ctx, "bob@example.com", "operator-password-1")
	wantCode(t, err, connect.CodePermissionDenied)

	// An admin cannot disable themself.
	_, err = admin.Account.SetOperatorDisabled(ctx, connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: admin.Me.Id, Disabled: true}))
	wantCode(t, err, connect.CodeFailedPrecondition)

	// Re-enabled, Bob can sign in again.
	if _, err := admin.Account.SetOperatorDisabled(ctx, connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: bob.Me.Id, Disabled: false})); err != nil {
		t.Fatal(err)
	}
	if err := ts.operator().Login(ctx, "bob@example.com", "operator-password-1"); err != nil {
		t.Fatalf("Login after re-enabling: %v", err)
	}
}

// "A disabled operator's sessions end at once": re-enabling the operator
// must not bring the old sessions back.
func TestSetOperatorDisabled_ReenablingDoesNotReviveOldSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob")
	for _, disabled := range []bool{true, false} {
		if _, err := admin.Account.SetOperatorDisabled(ctx, connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: bob.Me.Id, Disabled: disabled})); err != nil {
			t.Fatal(err)
		}
	}
	_, err := bob.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
}

func TestLogout_EndsSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	if _, err := op.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{})); err != nil {
		t.Fatalf("GetMe before Logout: %v", err)
	}
	if _, err := op.Account.Logout(ctx, connect.NewRequest(&accountv1.LogoutRequest{})); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	_, err := op.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
	wantCode(t, op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE), connect.CodeUnauthenticated)
}

func TestLogout_ServerForgetsTheToken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := rawLogin(t, ts)
	cookie := http.Header{"Cookie": {c.Name + "=" + c.Value}}
	if res := rawPost(t, ts, "/lethe.account.v1.AccountService/Logout", `{}`, cookie); res.StatusCode != http.StatusOK {
		t.Fatalf("Logout: HTTP %d", res.StatusCode)
	}
	// Replaying the old cookie (a client that ignored the deletion) fails.
	if res := rawPost(t, ts, getMeProcedure, `{}`, cookie); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GetMe with a logged-out token: HTTP %d, want 401", res.StatusCode)
	}
}

func TestLogin_TooManyFailuresIsResourceExhausted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	o := ts.operator()
	var err error
	for range 10 {
		if err = o.Login(ctx, "bob@example.com", "wrong-password-1"); connect.CodeOf(err) == connect.CodeResourceExhausted {
			break
		}
		wantCode(t, err, connect.CodeUnauthenticated)
	}
	wantCode(t, err, connect.CodeResourceExhausted)
}

func TestGetMe_ReturnsOperatorAndAccount(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	op := ts.admin()
	res, err := op.Account.GetMe(context.Background(), connect.NewRequest(&accountv1.GetMeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.Operator.Email != adminEmail || res.Msg.Operator.Role != accountv1.Role_ROLE_ADMIN || res.Msg.Account.Id != demoAccount || res.Msg.Account.Name != "Demo Company" {
		t.Fatalf("GetMe = %v", res.Msg)
	}
}
