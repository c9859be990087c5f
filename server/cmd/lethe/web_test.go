package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

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

func TestPanel_FramedOnlyByAllowedOrigins(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	get := func(query string) *http.Response {
		t.Helper()
		res, err := ts.client().Get(ts.URL + "/widget/panel?" + query)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	frame := func(res *http.Response) string {
		t.Helper()
		csp := res.Header.Get("Content-Security-Policy")
		_, fa, ok := strings.Cut(csp, "frame-ancestors ")
		if !ok {
			t.Fatalf("CSP %q has no frame-ancestors", csp)
		}
		fa, _, _ = strings.Cut(fa, ";")
		return fa
	}

	ok := get("account=demo&host=" + url.QueryEscape(ts.URL))
	if ok.StatusCode != http.StatusOK {
		t.Fatalf("panel on the server's own origin: HTTP %d, want 200", ok.StatusCode)
	}
	if fa := frame(ok); fa != "'self'" {
		t.Fatalf("frame-ancestors %q, want 'self'", fa)
	}
	body, _ := io.ReadAll(ok.Body)
	if !strings.Contains(string(body), "/static/panel.js") {
		t.Fatal("the panel page does not load the panel script")
	}

	evil := get("account=demo&host=" + url.QueryEscape("https://evil.example"))
	if evil.StatusCode != http.StatusForbidden {
		t.Fatalf("panel for a foreign host: HTTP %d, want 403", evil.StatusCode)
	}
	if fa := frame(evil); fa != "'self'" {
		t.Fatalf("frame-ancestors on refusal %q, want 'self'", fa)
	}
	body, _ = io.ReadAll(evil.Body)
	if strings.Contains(string(body), "panel.js") {
		t.Fatal("the refused panel still loads the panel script")
	}

	unknown := get("account=no-such-account&host=" + url.QueryEscape(ts.URL))
	if unknown.StatusCode != http.StatusNotFound {
		t.Fatalf("panel of an unknown account: HTTP %d, want 404", unknown.StatusCode)
	}
	if fa := frame(unknown); fa != "'none'" {
		t.Fatalf("frame-ancestors for an unknown account %q, want 'none'", fa)
	}
}

func TestConsole_MayNotBeFramed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	res, err := ts.client().Get(ts.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/console/: HTTP %d", res.StatusCode)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("console CSP %q lacks frame-ancestors 'none'", csp)
	}
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("console CSP %q allows foreign or inline script", csp)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("X-Frame-Options = %q, want DENY", res.Header.Get("X-Frame-Options"))
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
