package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
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

func TestPresence_FollowsInboxStreamAndStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	// Signed in is not online: only an open console is.
	waitOperatorsOnline(t, ts, false)

	inbox := watchInbox(t, op)
	waitOperatorsOnline(t, ts, true)

	if err := op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_AWAY); err != nil {
		t.Fatal(err)
	}
	waitOperatorsOnline(t, ts, false)
	if err := op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE); err != nil {
		t.Fatal(err)
	}
	waitOperatorsOnline(t, ts, true)
	wantCode(t, op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_OFFLINE), connect.CodeInvalidArgument)

	inbox.cancel()
	inbox.wait()
	waitOperatorsOnline(t, ts, false)
}

func TestPresence_LogoutSetsOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	inbox := startStream(t, func(ctx context.Context, fn func(*chatv1.WatchInboxResponse) error) error {
		return op.WatchInbox(ctx, fn)
	})
	inbox.next("snapshot", func(r *chatv1.WatchInboxResponse) bool { return r.GetSnapshotDone() != nil })
	waitOperatorsOnline(t, ts, true)
	if _, err := op.Account.Logout(ctx, connect.NewRequest(&accountv1.LogoutRequest{})); err != nil {
		t.Fatal(err)
	}
	wantCode(t, inbox.wait(), connect.CodeUnauthenticated)
	waitOperatorsOnline(t, ts, false)
}

// countLog counts the lines of the server log that contain s.
func countLog(ts *testServer, s string) int { return strings.Count(ts.logs.String(), s) }

// A console that reconnects within the grace period (what the SDK does after
// any cut) and then goes away must still end up offline.
func TestPresence_OfflineAfterReconnectWithinGraceThenLeave(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withPresenceGrace(time.Second))
	op := ts.admin()
	const ended = "procedure=/lethe.chat.v1.ChatService/WatchInbox"

	first := watchInbox(t, op)
	waitOperatorsOnline(t, ts, true)
	first.cancel()
	first.wait()
	// Wait until the server has let go of the first stream.
	deadline := time.Now().Add(waitTimeout)
	for countLog(ts, ended) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first inbox stream never ended on the server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Reconnect within the grace period, then leave for good.
	second := watchInbox(t, op)
	second.cancel()
	second.wait()
	for countLog(ts, ended) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second inbox stream never ended on the server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitOperatorsOnline(t, ts, false)
}
