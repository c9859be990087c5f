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
