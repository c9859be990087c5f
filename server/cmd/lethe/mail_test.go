package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// Transcripts by mail through a real in-process SMTP relay (P1, P3, P8):
// the chat is destroyed only once the relay accepted its transcript.

// newTag returns a unique canary: lower-case letters and digits only, so no
// encoding (HTML, quoted-printable, protobuf) can hide it from a byte search.
func newTag() string {
	return "canary" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(randomText(16)))
}

// canaryChat has the fresh visitor v start a chat whose visitor name,
// e-mail address and messages and the operator's reply all carry tag; admin
// accepts it and replies. It returns the visitor and the visitor's stream
// (seen up to the reply).
func canaryChat(t *testing.T, v *lethe.Visitor, admin *lethe.Operator, tag string) (*lethe.Visitor, *chatStream) {
	t.Helper()
	ctx := context.Background()
	if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: "Visitor " + tag, Email: tag + "@example.com",
		FirstMessage: "first message " + tag}); err != nil {
		t.Fatalf("StartChat: %v", err)
	}
	vs := watchChat(t, v, 0)
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if _, err := v.Send(ctx, "visitor message "+tag); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, "operator reply "+tag); err != nil {
		t.Fatal(err)
	}
	vs.next("operator reply", isSeq(5))
	return v, vs
}

// closeChat has the operator close the chat and waits for the visitor's
// closed event.
func closeChat(t *testing.T, op *lethe.Operator, v *lethe.Visitor, vs *chatStream) {
	t.Helper()
	if err := op.Close(context.Background(), v.ChatID); err != nil {
		t.Fatalf("CloseChat: %v", err)
	}
	vs.next("closed event", isClosed)
}

// checkTranscript checks a transcript mail: to the account's recipient,
// text and HTML alternatives, both carrying the whole conversation.
func checkTranscript(t *testing.T, m mailtest.Mail, tag string) {
	t.Helper()
	if len(m.To) != 1 || m.To[0] != recipient {
		t.Errorf("transcript went to %v, want [%s]", m.To, recipient)
	}
	p := m.Parse(t)
	if p.TopType != "multipart/alternative" {
		t.Errorf("transcript is %s, want multipart/alternative", p.TopType)
	}
	for _, typ := range []string{"text/plain", "text/html"} {
		body := p.Bodies[typ]
		for _, want := range []string{"Visitor " + tag, tag + "@example.com", "first message " + tag, "visitor message " + tag, "operator reply " + tag} {
			if !strings.Contains(body, want) {
				t.Errorf("the %s transcript lacks %q:\n%s", typ, want, body)
			}
		}
	}
	if !strings.Contains(p.Bodies["text/html"], "<table") {
		t.Errorf("the HTML part is not HTML:\n%s", p.Bodies["text/html"])
	}
}

// (a) A relay offering STARTTLS gets the transcript once, over TLS, with
// text and HTML bodies; then, and only then, the chat is destroyed.
func TestMail_TranscriptOverSTARTTLSOnceThenDestroyed(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	relay := startRelay(t, ca, true, 0)
	ts := newTestServer(t, withSMTP(relay.Port, ca))
	admin := ts.admin()
	updateSettings(t, admin, transcriptsTo)
	tag := newTag()
	v, vs := canaryChat(t, ts.visitor(), admin, tag)
	if len(ts.filesContaining(tag)) == 0 {
		t.Fatal("the canary is not on disk while the chat is open")
	}
	closeChat(t, admin, v, vs)
	ts.waitDestroyed(v.ChatID)

	mails := relay.Received()
	if len(mails) != 1 {
		t.Fatalf("the relay received %d messages, want exactly 1 transcript", len(mails))
	}
	if !mails[0].TLS {
		t.Error("the transcript was sent in clear although the relay offers STARTTLS")
	}
	checkTranscript(t, mails[0], tag)
	if !strings.Contains(ts.logs.String(), "tls=true") {
		t.Error("the delivery is not logged as TLS")
	}
	if hits := ts.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the canary is still on disk after delivery and destruction: %v", hits)
	}
	// Nothing is sent twice.
	time.Sleep(300 * time.Millisecond)
	if n := len(relay.Received()); n != 1 {
		t.Fatalf("the relay received %d messages after destruction, want 1", n)
	}
}

// (b) With the account's TLS policy MANDATORY and a relay without STARTTLS,
// the transcript is never sent (not even MAIL FROM in clear), and the chat
// stays closed but undestroyed while its mail is pending.
func TestMail_MandatoryTLSNeverSendsInClearAndKeepsChatPending(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	relay := startRelay(t, ca, false, 0)
	ts := newTestServer(t, withSMTP(relay.Port, ca))
	admin := ts.admin()
	updateSettings(t, admin, func(s *accountv1.Settings) {
		transcriptsTo(s)
		s.MailTlsPolicy = accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY
	})
	tag := newTag()
	v, vs := canaryChat(t, ts.visitor(), admin, tag)
	closeChat(t, admin, v, vs)
	// Several attempts, each refused before any message data.
	deadline := time.Now().Add(waitTimeout)
	for ts.countLog(`msg="mail attempt failed"`) < 3 && len(relay.MailFroms()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed attempts logged, want 3", ts.countLog(`msg="mail attempt failed"`))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(ts.logs.String(), "stage=starttls_unavailable") {
		t.Error("the failed attempts are not logged as STARTTLS unavailable")
	}
	if n := len(relay.Received()); n != 0 {
		t.Fatalf("the relay received %d messages in clear text", n)
	}
	if n := len(relay.MailFroms()); n != 0 {
		t.Fatalf("the relay saw %d MAIL FROM commands in clear text", n)
	}
	if strings.Contains(ts.logs.String(), `msg="chat destroyed"`) {
		t.Fatal("the chat was destroyed although its transcript was never delivered")
	}
	if len(ts.filesContaining(tag)) == 0 {
		t.Fatal("the pending chat's content is gone although its transcript was never delivered")
	}
	// The visitor sees the chat closed meanwhile.
	_, err := v.Send(context.Background(), "still there?")
	wantCode(t, err, connect.CodeFailedPrecondition)
}

// (c) The relay is down when the chat closes; when it comes up on the same
// port the transcript arrives exactly once, and only then is the chat
// destroyed. An offline message left meanwhile is held and delivered alike.
func TestMail_RelayDownAtCloseDeliversOnceWhenBackThenDestroys(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	_, port := mailtest.FreeAddr(t)
	ts := newTestServer(t, withSMTP(port, ca))
	admin := ts.admin()
	updateSettings(t, admin, transcriptsTo)
	tag, offTag := newTag(), newTag()
	v, vs := canaryChat(t, ts.visitor(), admin, tag)
	closeChat(t, admin, v, vs)
	// An offline message left during the outage is held too (P3).
	if err := leaveOffline(context.Background(), ts.visitor(), "Olga", "olga@example.com", "offline message "+offTag, 0); err != nil {
		t.Fatalf("LeaveOfflineMessage: %v", err)
	}
	ts.waitLogCount(`msg="mail attempt failed"`, 4)
	if !strings.Contains(ts.logs.String(), "stage=connect") {
		t.Error("the failed attempts are not logged as connection failures")
	}
	if strings.Contains(ts.logs.String(), `msg="chat destroyed"`) {
		t.Fatal("the chat was destroyed before its transcript was delivered")
	}
	for _, s := range []string{tag, offTag} {
		if len(ts.filesContaining(s)) == 0 {
			t.Fatalf("%s is gone from disk before its mail was delivered", s)
		}
	}

	relay := startRelay(t, ca, true, port)
	ts.waitDestroyed(v.ChatID)
	ts.waitLogCount(`msg="mail delivered"`, 2)
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
		if hits := ts.filesContaining(s); len(hits) > 0 {
			t.Fatalf("%s is still on disk after delivery: %v", s, hits)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(relay.Received()); n != 2 {
		t.Fatalf("the relay received %d messages after delivery, want 2", n)
	}
}

// (d) Lethe restarts while the transcript is pending: the new instance
// delivers it once and then destroys the chat (P10).
func TestMail_RestartWhilePendingDeliversOnceThenDestroys(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	_, port := mailtest.FreeAddr(t)
	ts := newTestServer(t, withSMTP(port, ca))
	admin := ts.admin()
	updateSettings(t, admin, transcriptsTo)
	tag := newTag()
	v, vs := canaryChat(t, ts.visitor(), admin, tag)
	closeChat(t, admin, v, vs)
	ts.waitLogCount(`msg="mail attempt failed"`, 1)
	ts.stop()
	if len(testkit.FilesContaining(t, ts.dir, tag)) == 0 {
		t.Fatal("the closed chat's content did not survive the stop while its mail was pending")
	}

	relay := startRelay(t, ca, true, port)
	ts2 := newTestServer(t, withDataDir(ts.dir), withSMTP(port, ca))
	ts2.waitDestroyed(v.ChatID)
	mails := relay.Received()
	if len(mails) != 1 {
		t.Fatalf("the relay received %d messages, want exactly 1", len(mails))
	}
	checkTranscript(t, mails[0], tag)
	if !mails[0].TLS {
		t.Error("the transcript was sent in clear")
	}
	if hits := ts2.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the canary is still on disk after delivery and destruction: %v", hits)
	}
	// The visitor's token no longer opens anything.
	v2 := lethe.NewVisitor(ts2.client(), ts2.URL)
	v2.Token, v2.ChatID = v.Token, v.ChatID
	if _, err := v2.Send(context.Background(), "hello?"); err == nil ||
		(connect.CodeOf(err) != connect.CodeUnauthenticated && connect.CodeOf(err) != connect.CodeFailedPrecondition) {
		t.Fatalf("Send with the destroyed chat's token = %v, want Unauthenticated or FailedPrecondition", err)
	}
}
