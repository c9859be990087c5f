package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

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

// The cross-origin protection sits in front of the operator's session: a
// cross-site request carrying the cookie never reaches a handler.
func TestCrossOrigin_CrossSiteRequestWithSessionIsRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := rawLogin(t, ts)
	cookie := c.Name + "=" + c.Value
	res := rawPost(t, ts, getMeProcedure, `{}`, http.Header{
		"Cookie": {cookie}, "Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site GetMe: HTTP %d, want 403", res.StatusCode)
	}
	// Without Sec-Fetch-Site (older browsers) the Origin decides.
	res = rawPost(t, ts, getMeProcedure, `{}`, http.Header{"Cookie": {cookie}, "Origin": {"https://evil.example"}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("GetMe from a foreign Origin: HTTP %d, want 403", res.StatusCode)
	}
	res = rawPost(t, ts, getMeProcedure, `{}`, http.Header{"Cookie": {cookie}, "Sec-Fetch-Site": {"same-origin"}, "Origin": {ts.URL}})
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("same-origin GetMe: HTTP %d (%s), want 200", res.StatusCode, b)
	}
}

func TestHealthz_OK(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	res, err := ts.client().Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: HTTP %d", res.StatusCode)
	}
}

// operatorsOnline polls GetWidgetConfig until it says want.
func waitOperatorsOnline(t *testing.T, ts *testServer, want bool) {
	t.Helper()
	v := ts.visitor()
	deadline := time.Now().Add(waitTimeout)
	for {
		res, err := v.Chat.GetWidgetConfig(context.Background(), connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: demoAccount}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Msg.OperatorsOnline == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("operators_online stayed %v, want %v", res.Msg.OperatorsOnline, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Static files are served outside the session: even with a session cookie,
// no "Vary: Cookie" keeps a cache or CDN from storing them, while pages that
// depend on the session still say they vary by it.
func TestStatic_NotVariedByTheSession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cookie := rawLogin(t, ts)
	get := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.AddCookie(cookie)
		req.Header.Set("Accept-Encoding", "br, gzip")
		res, err := ts.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, path := range []string{"/widget.js", "/static/console.css"} {
		res := get(path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", path, res.StatusCode)
		}
		for _, v := range res.Header.Values("Vary") {
			if strings.Contains(v, "Cookie") {
				t.Errorf("%s: Vary %q: static files must not vary by the session", path, res.Header.Values("Vary"))
			}
		}
		if res.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s: Set-Cookie on a static file", path)
		}
	}
	res := get("/console/")
	if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Cookie") {
		t.Errorf("/console/: Vary %q, want Cookie (the session stack still wraps the pages)", res.Header.Values("Vary"))
	}
}
