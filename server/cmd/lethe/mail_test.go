package main

import (
	"context"
	"testing"

	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"

	"connectrpc.com/connect"

	lethe "github.com/lethehq/lethe/sdk/go"
)

// Transcripts by mail through a real in-process SMTP relay (P1, P3, P8):
// the chat is destroyed only once the relay accepted its transcript. What
// the chat package does alone is tested there (server/chat/mail_test.go);
// here is what needs the whole server.

// canaryChat has the fresh visitor v start a chat whose visitor name,
// e-mail address and messages and the operator's reply all carry tag; admin
// accepts it and replies. It returns the visitor and the visitor's stream
// (seen up to the reply).
func canaryChat(t *testing.T, v *lethe.Visitor, admin *lethe.Operator, tag string) (*lethe.Visitor, *chatStream) {
	t.Helper()
	ctx := context.Background()
	c := chattest.CanaryOf(tag)
	if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: c.Name, Email: c.Email, FirstMessage: c.First}); err != nil {
		t.Fatalf("StartChat: %v", err)
	}
	vs := watchChat(t, v, 0)
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if _, err := v.Send(ctx, c.FromVisitor); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, c.Reply); err != nil {
		t.Fatal(err)
	}
	vs.Next("operator reply", chattest.IsSeq(5))
	return v, vs
}

// closeChat has the operator close the chat and waits for the visitor's
// closed event.
func closeChat(t *testing.T, op *lethe.Operator, v *lethe.Visitor, vs *chatStream) {
	t.Helper()
	if err := op.Close(context.Background(), v.ChatID); err != nil {
		t.Fatalf("CloseChat: %v", err)
	}
	vs.Next("closed event", chattest.IsClosed)
}

// checkTranscript checks the transcript mail of the canary chat tag.
func checkTranscript(t *testing.T, m mailtest.Mail, tag string) {
	t.Helper()
	chattest.CheckTranscript(t, m, recipient, chattest.CanaryOf(tag))
}

var newTag = testkit.Tag

// Lethe restarts while the transcript is pending: the new instance
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
