package chat

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// The visitor's address is the real client's, as the client-address
// middleware resolves it: the forwarded one behind a trusted proxy, the
// connection's peer otherwise (a forwarded header from anyone else is a
// lie it may tell), and none at all with "hide IP and host" on (P5).

const forwarded = "203.0.113.7" // what the proxy says the client is

func TestStartChat_RecordsTheRealClientAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted bool
		hide    bool
		want    string // "" when no address may be recorded
	}{
		{"behind a trusted proxy", true, false, forwarded},
		{"forwarded by an untrusted peer", false, false, "127.0.0.1"},
		{"hide IP on", true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ca := mailtest.NewCA(t)
			relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
			opts := []option{withMail(relay.Port, ca)}
			if tc.trusted {
				opts = append(opts, behindProxy())
			}
			e := newEnv(t, opts...)
			e.accounts.update(func(s *AccountSettings) {
				transcriptsTo(s)
				s.HideVisitorIP = tc.hide
			})
			admin := e.operator(opAdmin)
			inbox := watchInbox(t, admin)
			tag := newTag()

			v := e.visitor()
			v.xff = forwarded
			if err := v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Ivy", FirstMessage: "first message " + tag}); err != nil {
				t.Fatal(err)
			}
			off := e.visitor()
			off.xff = forwarded
			if err := off.leaveOffline(ctx, "Olga", "olga@example.com", "offline message "+tag, 0); err != nil {
				t.Fatal(err)
			}
			// The operator's console shows the address.
			sum := inbox.Next("queued chat", chatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_WAITING)).GetChatUpdated()
			if sum.VisitorIp != tc.want || (tc.want == "" && sum.VisitorHost != "") {
				t.Fatalf("the console shows IP %q host %q, want IP %q", sum.VisitorIp, sum.VisitorHost, tc.want)
			}
			if tc.want == "" {
				if hits := e.filesContaining(forwarded); len(hits) > 0 {
					t.Fatalf("the hidden address is on disk: %v", hits)
				}
			}
			if err := admin.close(ctx, v.chatID); err != nil {
				t.Fatal(err)
			}
			e.waitDestroyed(v.chatID)

			// So do the transcript and the offline message.
			for _, m := range []mailtest.Mail{relay.WaitMail(t, "first message "+tag), relay.WaitMail(t, "offline message "+tag)} {
				text := m.Parse(t).Bodies["text/plain"]
				all := m.All(t)
				switch {
				case tc.want != "" && !strings.Contains(text, "IP: "+tc.want):
					t.Errorf("the mail does not show IP %s:\n%s", tc.want, text)
				case tc.want == "" && (strings.Contains(text, "IP:") || strings.Contains(all, forwarded) || strings.Contains(all, "127.0.0.1")):
					t.Errorf("the mail shows the hidden address:\n%s", text)
				case tc.want != forwarded && strings.Contains(all, forwarded):
					t.Errorf("the mail shows the forwarded address of an untrusted peer:\n%s", text)
				}
			}
			if tc.want == "" && strings.Contains(e.logs.String(), forwarded) {
				t.Fatal("the log holds the hidden address")
			}
		})
	}
}

// "At most 5 offline messages per minute per client" counts real clients:
// behind a trusted proxy every forwarded address has its own allowance;
// without one, the forwarded header cannot buy a client more messages.
func TestLeaveOfflineMessage_LimitIsPerRealClient(t *testing.T) {
	t.Parallel()
	leave := func(e *env, from string) error {
		v := e.visitor()
		v.xff = from
		return v.leaveOffline(context.Background(), "Olga", "olga@example.com", "hello from "+from, 0)
	}
	newMailEnv := func(t *testing.T, opts ...option) *env {
		ca := mailtest.NewCA(t)
		relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
		e := newEnv(t, append(opts, withMail(relay.Port, ca))...)
		e.accounts.update(transcriptsTo)
		return e
	}

	t.Run("behind a trusted proxy", func(t *testing.T) {
		t.Parallel()
		e := newMailEnv(t, behindProxy())
		// Seven clients, one message each, more than one client's burst.
		for i := 1; i <= 7; i++ {
			if err := leave(e, fmt.Sprintf("203.0.113.%d", i)); err != nil {
				t.Fatalf("client %d of 7: %v", i, err)
			}
		}
		// One client: five, then refused.
		for i := 1; i <= 5; i++ {
			if err := leave(e, "198.51.100.9"); err != nil {
				t.Fatalf("message %d of one client: %v", i, err)
			}
		}
		wantCode(t, leave(e, "198.51.100.9"), connect.CodeResourceExhausted)
		// Its neighbours behind the same proxy are not affected.
		if err := leave(e, "198.51.100.10"); err != nil {
			t.Fatalf("another client after one was limited: %v", err)
		}
	})

	t.Run("forwarded by an untrusted peer", func(t *testing.T) {
		t.Parallel()
		e := newMailEnv(t)
		for i := 1; i <= 5; i++ {
			if err := leave(e, fmt.Sprintf("203.0.113.%d", i)); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		wantCode(t, leave(e, "203.0.113.6"), connect.CodeResourceExhausted)
	})
}
