package main

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/lethehq/lethe/server/chat/chattest"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// forwardedFor makes every unary call of a client carry X-Forwarded-For, as
// a TLS proxy in front of Lethe would add it.
func forwardedFor(addr string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("X-Forwarded-For", addr)
			return next(ctx, req)
		}
	}))
}

func withTrustedProxies(prefixes ...string) serverOption {
	return func(c *config) {
		for _, p := range prefixes {
			c.trustedProxies = append(c.trustedProxies, netip.MustParsePrefix(p))
		}
	}
}

// One resolver decides who the client is, for every domain and every
// limiter: behind a trusted proxy the chat, the offline-message limit and
// the Visitors tab all see the forwarded address; an untrusted peer's header
// is ignored by all of them alike.
func TestClientAddress_OneResolverForChatOfflineAndMonitoring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted bool
	}{{"behind a trusted proxy", true}, {"untrusted peer", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca := mailtest.NewCA(t)
			relay := startRelay(t, ca, true, 0)
			opts := []serverOption{withSMTP(relay.Port, ca)}
			if tc.trusted {
				opts = append(opts, withTrustedProxies("127.0.0.0/8", "::1/128"))
			}
			ts := newTestServer(t, opts...)
			admin := ts.admin()
			updateSettings(t, admin, transcriptsTo)
			ctx := context.Background()
			want := func(forwarded string) string {
				if tc.trusted {
					return forwarded
				}
				return "127.0.0.1"
			}

			// Chat: the operator sees the visitor's address.
			inbox := watchInbox(t, admin)
			v := ts.visitor(forwardedFor("203.0.113.7"))
			if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: "Ada", FirstMessage: "hello"}); err != nil {
				t.Fatal(err)
			}
			sum := inbox.Next("the new chat", chattest.ChatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_WAITING)).GetChatUpdated()
			if sum.VisitorIp != want("203.0.113.7") {
				t.Errorf("chat: operator sees visitor IP %q, want %q", sum.VisitorIp, want("203.0.113.7"))
			}

			// Monitoring: the Visitors tab shows the same address.
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			watch, err := admin.Monitor.WatchVisitors(wctx, connect.NewRequest(&monitorv1.WatchVisitorsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			mon := monitorv1connect.NewMonitorServiceClient(ts.client(), ts.URL, forwardedFor("198.51.100.9"))
			if _, err := mon.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: demoAccount,
				Page: &monitorv1.Page{Url: "https://shop.example/"}})); err != nil {
				t.Fatal(err)
			}
			var seen string
			for seen == "" && watch.Receive() {
				for _, vis := range watch.Msg().Visitors {
					seen = vis.Ip
				}
			}
			if seen != want("198.51.100.9") {
				t.Errorf("monitoring: operator sees visitor IP %q, want %q (stream: %v)", seen, want("198.51.100.9"), watch.Err())
			}

			// Offline messages: 5 per minute per client. Seven visitors
			// behind the proxy each have their own allowance; without
			// trust they share one.
			accepted := 0
			for i := range 7 {
				ov := ts.visitor(forwardedFor(fmt.Sprintf("192.0.2.%d", 10+i)))
				err := ov.LeaveOfflineMessage(ctx, lethe.OfflineMessage{AccountID: demoAccount, Name: "Visitor", Email: "v@example.org",
					Message: fmt.Sprintf("offline %d", i)})
				switch {
				case err == nil:
					accepted++
				case testkit.CodeOf(err) != connect.CodeResourceExhausted:
					t.Fatalf("offline message %d: %v", i, err)
				}
			}
			if wantAccepted := map[bool]int{true: 7, false: 5}[tc.trusted]; accepted != wantAccepted {
				t.Errorf("offline messages from 7 visitors: %d accepted, want %d", accepted, wantAccepted)
			}
			// The same forwarded address is limited behind the proxy too.
			if tc.trusted {
				same := ts.visitor(forwardedFor("192.0.2.10"))
				for range 4 {
					same.LeaveOfflineMessage(ctx, lethe.OfflineMessage{AccountID: demoAccount, Name: "V", Email: "v@example.org", Message: "again"})
				}
				err := same.LeaveOfflineMessage(ctx, lethe.OfflineMessage{AccountID: demoAccount, Name: "V", Email: "v@example.org", Message: "sixth"})
				testkit.WantCode(t, "sixth offline message from one client", err, connect.CodeResourceExhausted)
			}
		})
	}
}
