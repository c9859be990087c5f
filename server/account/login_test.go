package account

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
)

func TestLogin_WrongPasswordIsUnauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.newOperator()
	err := o.login(DefaultAdminEmail, "wrong-password-1")
	wantCode(t, "wrong password", err, connect.CodeUnauthenticated)
	// An unknown address gets the same answer, with the same message.
	err2 := o.login("nobody@example.com", "wrong-password-1")
	wantCode(t, "unknown address", err2, connect.CodeUnauthenticated)
	if m1, m2 := messageOf(err), messageOf(err2); m1 != m2 {
		t.Fatalf("wrong password says %q, unknown address says %q: the messages tell them apart", m1, m2)
	}
	_, err = o.getMe()
	wantCode(t, "GetMe after failed logins", err, connect.CodeUnauthenticated)
}

func TestLogin_SessionCookieIsHttpOnlyAndSameSiteStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.post(accountv1connect.AccountServiceLoginProcedure, loginBody(DefaultAdminEmail, adminPassword), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Login: HTTP %d", res.StatusCode)
	}
	var raw string
	for _, sc := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, sessionCookie+"=") {
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
	e := newEnv(t)
	first := e.rawLogin()
	// Log in again carrying the first session: the token must change
	// (session fixation), and the old one must not work any more.
	res := e.post(accountv1connect.AccountServiceLoginProcedure, loginBody(DefaultAdminEmail, adminPassword), withCookie(first))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("second Login: HTTP %d", res.StatusCode)
	}
	second := cookieOf(res)
	if second == nil {
		t.Fatal("second Login set no cookie")
	}
	if second.Value == first.Value {
		t.Fatal("two logins got the same session token")
	}
	third := e.rawLogin()
	if third.Value == first.Value || third.Value == second.Value {
		t.Fatal("a fresh login reused a session token")
	}
	if res := e.post(accountv1connect.AccountServiceGetMeProcedure, `{}`, withCookie(first)); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GetMe with the token replaced at login: HTTP %d, want 401", res.StatusCode)
	}
	if res := e.post(accountv1connect.AccountServiceGetMeProcedure, `{}`, withCookie(second)); res.StatusCode != http.StatusOK {
		t.Fatalf("GetMe with the new token: HTTP %d, want 200", res.StatusCode)
	}
}

func TestLogin_TooManyFailuresIsResourceExhausted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.newOperator()
	var err error
	for range 10 {
		if err = o.login("bob@example.com", "wrong-password-1"); connect.CodeOf(err) == connect.CodeResourceExhausted {
			break
		}
		wantCode(t, "failed login", err, connect.CodeUnauthenticated)
	}
	wantCode(t, "login after many failures", err, connect.CodeResourceExhausted)
	// The limit is per address: Bob's failures do not lock the admin out.
	if err := e.newOperator().login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("admin login after another address was limited: %v", err)
	}
}

// Spellings of one address are one address: for signing in and for the
// attempt limit, which changing case or adding spaces must not dodge.
func TestLogin_AddressIgnoresCaseAndSpaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.newOperator().login(" ADMIN@Lethe.Local ", adminPassword); err != nil {
		t.Fatalf("login with the address in another spelling: %v", err)
	}
	o := e.newOperator()
	var err error
	for i := range 10 {
		email := "bob@example.com"
		if i%2 == 1 {
			email = " BOB@Example.com"
		}
		if err = o.login(email, "wrong-password-1"); connect.CodeOf(err) == connect.CodeResourceExhausted {
			if free := DefaultLoginLimits().FreeFailures; i < free {
				t.Fatalf("limited after %d attempts, want %d", i, free)
			}
			break
		}
		wantCode(t, "failed login", err, connect.CodeUnauthenticated)
	}
	wantCode(t, "login after many failures in several spellings", err, connect.CodeResourceExhausted)
}

func TestLogout_EndsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	op := e.admin()
	if _, err := op.getMe(); err != nil {
		t.Fatalf("GetMe before Logout: %v", err)
	}
	if _, err := op.account.Logout(t.Context(), connect.NewRequest(&accountv1.LogoutRequest{})); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	_, err := op.getMe()
	wantCode(t, "GetMe after Logout", err, connect.CodeUnauthenticated)
	// Not one procedure but the session is gone: any operator call fails.
	_, err = op.getSettings()
	wantCode(t, "GetSettings after Logout", err, connect.CodeUnauthenticated)
	// The rest of the server (presence, streams) is told who left.
	if got := e.signOuts.list(); !slices.Equal(got, []string{op.me.Id}) {
		t.Fatalf("OnSignOut got %q, want [%s]", got, op.me.Id)
	}
}

func TestLogout_ServerForgetsTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.rawLogin()
	if res := e.post(accountv1connect.AccountServiceLogoutProcedure, `{}`, withCookie(c)); res.StatusCode != http.StatusOK {
		t.Fatalf("Logout: HTTP %d", res.StatusCode)
	}
	// Replaying the old cookie (a client that ignored the deletion) fails.
	if res := e.post(accountv1connect.AccountServiceGetMeProcedure, `{}`, withCookie(c)); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GetMe with a logged-out token: HTTP %d, want 401", res.StatusCode)
	}
}

func TestGetMe_ReturnsOperatorAndAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	me, err := e.admin().getMe()
	if err != nil {
		t.Fatal(err)
	}
	if me.Operator.Email != DefaultAdminEmail || me.Operator.Role != accountv1.Role_ROLE_ADMIN || me.Account.Id != DemoAccountID || me.Account.Name != "Demo Company" {
		t.Fatalf("GetMe = %v", me)
	}
}
