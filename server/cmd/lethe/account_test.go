package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The account service's own tests live in server/account. These raw-HTTP
// helpers stay for the system tests that need to see headers and cookies
// (web_test.go's cross-origin test).

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
