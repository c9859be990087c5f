package main

import (
	"context"
	"net"
	"strings"
	"testing"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// P5: with "hide IP and host" on, the visitor's IP address and host name
// never reach storage, the console, transcripts, offline messages or logs.

const visitorIP = "127.0.0.1" // the test clients' address

// visitorHost is what reverse DNS says of the test clients' address (the
// server looks it up the same way), or "" if nothing.
func visitorHost(t *testing.T) string {
	t.Helper()
	names, _ := net.DefaultResolver.LookupAddr(context.Background(), visitorIP)
	if len(names) == 0 {
		t.Logf("no reverse DNS name for %s: only the IP is checked", visitorIP)
		return ""
	}
	return strings.TrimSuffix(names[0], ".")
}

// ipRun is what a chat and an offline message left behind.
type ipRun struct {
	ts         *testServer
	summaries  []*chatv1.ChatSummary // every summary of the chat the console got
	transcript mailtest.Mail
	offline    mailtest.Mail
	// onDiskWhileOpen maps a string to the data files holding it while the
	// chat was open.
	onDiskWhileOpen map[string][]string
}

// runIPChat runs a chat (with transcripts on) and an offline message with
// the account hiding visitors' IPs or not, and returns what they left.
func runIPChat(t *testing.T, hide bool, look ...string) ipRun {
	t.Helper()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := startRelay(t, ca, true, 0)
	ts := newTestServer(t, withSMTP(relay.Port, ca))
	admin := ts.admin()
	updateSettings(t, admin, func(s *accountv1.Settings) {
		transcriptsTo(s)
		s.HideVisitorIp = hide
		// No origin with the visitor's address in the durable store.
		s.AllowedOrigins = []string{"self", "https://shop.example"}
	})
	inbox := watchInbox(t, admin)
	tag := newTag()
	v := ts.startChat("Visitor "+tag, tag+"@example.com", "first message "+tag)
	vs := watchChat(t, v, 0)
	run := ipRun{ts: ts, onDiskWhileOpen: map[string][]string{}}
	run.summaries = append(run.summaries,
		inbox.Next("queued chat", chattest.ChatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_WAITING)).GetChatUpdated())
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	run.summaries = append(run.summaries,
		inbox.Next("accepted chat", chattest.ChatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_ACTIVE)).GetChatUpdated())
	if _, err := v.Send(ctx, "visitor message "+tag); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, "operator reply "+tag); err != nil {
		t.Fatal(err)
	}
	vs.Next("operator reply", chattest.IsSeq(5))
	if err := leaveOffline(ctx, ts.visitor(), "Offline "+tag, "offline-"+tag+"@example.com", "offline message "+tag, 0); err != nil {
		t.Fatalf("LeaveOfflineMessage: %v", err)
	}
	for _, s := range look {
		run.onDiskWhileOpen[s] = ts.filesContaining(s)
	}
	if err := admin.Close(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	run.transcript = relay.WaitMail(t, "operator reply "+tag)
	run.offline = relay.WaitMail(t, "offline message "+tag)
	ts.waitDestroyed(v.ChatID)
	ts.waitLogCount(`msg="mail delivered"`, 2)
	for _, r := range append(inbox.Seen, inbox.Rest()...) {
		if u := r.GetChatUpdated(); u != nil && u.ChatId == v.ChatID {
			run.summaries = append(run.summaries, u)
		}
	}
	return run
}

func TestHideIP_NeverReachesStorageConsoleMailOrLogs(t *testing.T) {
	t.Parallel()
	host := visitorHost(t)
	secrets := []string{visitorIP}
	if host != "" {
		secrets = append(secrets, host)
	}
	run := runIPChat(t, true, secrets...)
	for _, s := range run.summaries {
		if s.VisitorIp != "" || s.VisitorHost != "" {
			t.Errorf("the console got visitor_ip %q, visitor_host %q", s.VisitorIp, s.VisitorHost)
		}
	}
	for _, secret := range secrets {
		if hits := run.onDiskWhileOpen[secret]; len(hits) > 0 {
			t.Errorf("%q was on disk while the chat was open: %v", secret, hits)
		}
		if hits := run.ts.filesContaining(secret); len(hits) > 0 {
			t.Errorf("%q is on disk: %v", secret, hits)
		}
		if strings.Contains(run.transcript.All(t), secret) {
			t.Errorf("the transcript mail contains %q", secret)
		}
		if strings.Contains(run.offline.All(t), secret) {
			t.Errorf("the offline message mail contains %q", secret)
		}
		if strings.Contains(run.ts.logs.String(), secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

// The control: with the setting off, the same run shows the address, so
// the checks above are able to fail.
func TestHideIP_OffShowsAddressToConsoleAndInMail(t *testing.T) {
	t.Parallel()
	host := visitorHost(t)
	run := runIPChat(t, false, visitorIP)
	for _, s := range run.summaries {
		if s.VisitorIp != visitorIP {
			t.Errorf("the console got visitor_ip %q, want %q", s.VisitorIp, visitorIP)
		}
		if host != "" && s.VisitorHost != host {
			t.Errorf("the console got visitor_host %q, want %q", s.VisitorHost, host)
		}
	}
	if len(run.onDiskWhileOpen[visitorIP]) == 0 {
		t.Error("the visitor's IP was not stored while the chat was open")
	}
	for name, m := range map[string]mailtest.Mail{"transcript": run.transcript, "offline message": run.offline} {
		text := m.Parse(t).Bodies["text/plain"]
		if !strings.Contains(text, "IP: "+visitorIP) {
			t.Errorf("the %s mail lacks the visitor's IP:\n%s", name, text)
		}
		if host != "" && !strings.Contains(text, host) {
			t.Errorf("the %s mail lacks the visitor's host %q:\n%s", name, host, text)
		}
	}
	// Destroyed with the chat all the same.
	if hits := run.ts.filesContaining(visitorIP); len(hits) > 0 {
		t.Errorf("the visitor's IP is on disk after destruction: %v", hits)
	}
}
