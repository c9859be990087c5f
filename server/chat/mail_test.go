package chat

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// Transcripts by mail through a real in-process SMTP relay (P1, P3, P8):
// the chat is destroyed only once the relay accepted its transcript.

// canaryChat starts a chat whose visitor name, e-mail address and messages
// and the admin's reply all carry tag; the admin accepts it and replies. It
// returns the visitor and the visitor's stream (seen up to the reply).
func canaryChat(t *testing.T, e *env, tag string) (*visitor, *chatStream) {
	t.Helper()
	ctx := context.Background()
	admin := e.operator(opAdmin)
	c := chattest.CanaryOf(tag)
	v := e.startChat(c.Name, c.Email, c.First)
	vs := watchChat(t, v, 0)
	if err := admin.accept(ctx, v.chatID); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if _, err := v.send(ctx, c.FromVisitor); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.send(ctx, v.chatID, c.Reply); err != nil {
		t.Fatal(err)
	}
	vs.Next("operator reply", isSeq(5))
	return v, vs
}

// closeChat has the admin close the chat and waits for the visitor's closed
// event.
func closeChat(t *testing.T, e *env, v *visitor, vs *chatStream) {
	t.Helper()
	if err := e.operator(opAdmin).close(context.Background(), v.chatID); err != nil {
		t.Fatalf("CloseChat: %v", err)
	}
	vs.Next("closed event", isClosed)
}

// checkTranscript checks the transcript mail of the canary chat tag.
func checkTranscript(t *testing.T, m mailtest.Mail, tag string) {
	t.Helper()
	chattest.CheckTranscript(t, m, recipient, chattest.CanaryOf(tag))
}

// A relay offering STARTTLS gets the transcript once, over TLS, with text
// and HTML bodies; then, and only then, the chat is destroyed.
func TestMail_TranscriptOverSTARTTLSOnceThenDestroyed(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
	e := newEnv(t, withMail(relay.Port, ca))
	e.accounts.update(transcriptsTo)
	tag := newTag()
	v, vs := canaryChat(t, e, tag)
	if len(e.filesContaining(tag)) == 0 {
		t.Fatal("the canary is not on disk while the chat is open")
	}
	closeChat(t, e, v, vs)
	e.waitDestroyed(v.chatID)

	mails := relay.Received()
	if len(mails) != 1 {
		t.Fatalf("the relay received %d messages, want exactly 1 transcript", len(mails))
	}
	if !mails[0].TLS {
		t.Error("the transcript was sent in clear although the relay offers STARTTLS")
	}
	checkTranscript(t, mails[0], tag)
	if !strings.Contains(e.logs.String(), "tls=true") {
		t.Error("the delivery is not logged as TLS")
	}
	if hits := e.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the canary is still on disk after delivery and destruction: %v", hits)
	}
	// Nothing is sent twice.
	time.Sleep(300 * time.Millisecond)
	if n := len(relay.Received()); n != 1 {
		t.Fatalf("the relay received %d messages after destruction, want 1", n)
	}
}

// With the account requiring TLS and a relay without STARTTLS, the
// transcript is never sent (not even MAIL FROM in clear), and the chat stays
// closed but undestroyed while its mail is pending.
func TestMail_MandatoryTLSNeverSendsInClearAndKeepsChatPending(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	relay := mailtest.Start(t, mailtest.Options{})
	e := newEnv(t, withMail(relay.Port, ca))
	e.accounts.update(func(s *AccountSettings) {
		transcriptsTo(s)
		s.RequireTLS = true
	})
	tag := newTag()
	v, vs := canaryChat(t, e, tag)
	closeChat(t, e, v, vs)
	// Several attempts, each refused before any message data.
	testkit.Eventually(t, testkit.Wait, "3 failed attempts", func() bool {
		return e.logs.Count(`msg="mail attempt failed"`) >= 3 || len(relay.MailFroms()) > 0
	})
	if !strings.Contains(e.logs.String(), "stage=starttls_unavailable") {
		t.Error("the failed attempts are not logged as STARTTLS unavailable")
	}
	if n := len(relay.Received()); n != 0 {
		t.Fatalf("the relay received %d messages in clear text", n)
	}
	if n := len(relay.MailFroms()); n != 0 {
		t.Fatalf("the relay saw %d MAIL FROM commands in clear text", n)
	}
	if strings.Contains(e.logs.String(), `msg="chat destroyed"`) {
		t.Fatal("the chat was destroyed although its transcript was never delivered")
	}
	if len(e.filesContaining(tag)) == 0 {
		t.Fatal("the pending chat's content is gone although its transcript was never delivered")
	}
	// The visitor sees the chat closed meanwhile.
	_, err := v.send(context.Background(), "still there?")
	wantCode(t, err, connect.CodeFailedPrecondition)
}

// The relay is down when the chat closes; when it comes up on the same port
// the transcript arrives exactly once, and only then is the chat destroyed.
// An offline message left meanwhile is held and delivered alike (P3).
func TestMail_RelayDownAtCloseDeliversOnceWhenBackThenDestroys(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	addr, port := mailtest.FreeAddr(t)
	e := newEnv(t, withMail(port, ca))
	e.accounts.update(transcriptsTo)
	tag, offTag := newTag(), newTag()
	v, vs := canaryChat(t, e, tag)
	closeChat(t, e, v, vs)
	if err := e.visitor().leaveOffline(context.Background(), "Olga", "olga@example.com", "offline message "+offTag, 0); err != nil {
		t.Fatalf("LeaveOfflineMessage: %v", err)
	}
	testkit.WaitLog(t, e.logs, `msg="mail attempt failed"`, 4)
	if !strings.Contains(e.logs.String(), "stage=connect") {
		t.Error("the failed attempts are not logged as connection failures")
	}
	if strings.Contains(e.logs.String(), `msg="chat destroyed"`) {
		t.Fatal("the chat was destroyed before its transcript was delivered")
	}
	for _, s := range []string{tag, offTag} {
		if len(e.filesContaining(s)) == 0 {
			t.Fatalf("%s is gone from disk before its mail was delivered", s)
		}
	}

	relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS(), Addr: addr})
	e.waitDestroyed(v.chatID)
	testkit.WaitLog(t, e.logs, `msg="mail delivered"`, 2)
	var transcripts, offline []mailtest.Mail
	for _, m := range relay.Received() {
		switch all := m.All(t); {
		case strings.Contains(all, "operator reply "+tag):
			transcripts = append(transcripts, m)
		case strings.Contains(all, "offline message "+offTag):
			offline = append(offline, m)
		}
	}
	if len(transcripts) != 1 || len(offline) != 1 || len(relay.Received()) != 2 {
		t.Fatalf("the relay received %d transcripts and %d offline messages (%d in all), want exactly one each",
			len(transcripts), len(offline), len(relay.Received()))
	}
	checkTranscript(t, transcripts[0], tag)
	for _, s := range []string{tag, offTag} {
		if hits := e.filesContaining(s); len(hits) > 0 {
			t.Fatalf("%s is still on disk after delivery: %v", s, hits)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(relay.Received()); n != 2 {
		t.Fatalf("the relay received %d messages after delivery, want 2", n)
	}
}
