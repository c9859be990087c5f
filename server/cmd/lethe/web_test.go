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
