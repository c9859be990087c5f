package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/store"
)

// canaries are unique strings for the visitor's name, e-mail address and
// message text, and the operator's reply.
type canaries struct{ name, email, text, reply string }

func newCanaries() canaries {
	tag := strings.ToLower(randomText(10))
	return canaries{
		name:  "Canaryname-" + tag,
		email: "canary-" + tag + "@example.com",
		text:  "canary-text-" + tag + " my card number is 4111",
		reply: "canary-reply-" + tag,
	}
}

func (c canaries) all() []string { return []string{c.name, c.email, c.text, c.reply} }

// runCanaryChat runs a whole chat carrying the canaries; before closing it
// calls beforeClose, then closes it and waits for its destruction.
func runCanaryChat(t *testing.T, ts *testServer, c canaries, beforeClose func()) {
	t.Helper()
	ctx := context.Background()
	op := ts.admin()
	inbox := watchInbox(t, op)
	v := ts.visitor()
	if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: c.name, Email: c.email, FirstMessage: c.text}); err != nil {
		t.Fatal(err)
	}
	inbox.Next("queued chat", chattest.ChatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_WAITING))
	vs := watchChat(t, v, 0)
	if err := op.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Send(ctx, c.text+" again"); err != nil {
		t.Fatal(err)
	}
	if err := v.Typing(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Send(ctx, v.ChatID, c.reply); err != nil {
		t.Fatal(err)
	}
	vs.Next("reply", chattest.IsSeq(5))
	// Errors carrying content in their input must not log it either.
	_, _ = v.Send(ctx, c.text+strings.Repeat("x", 4001))
	beforeClose()
	if err := op.Close(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	vs.Next("closed", chattest.IsClosed)
	ts.waitDestroyed(v.ChatID)
}

func TestLogs_NeverContainChatContentOrAddresses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := newCanaries()
	runCanaryChat(t, ts, c, func() {})
	logs := ts.logs.String()
	for _, s := range c.all() {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %q", s)
		}
	}
	if strings.Contains(logs, "@example.com") {
		t.Error("the log contains an e-mail address")
	}
	// The log is not simply empty: it records the chat's life by id.
	for _, want := range []string{"chat started", "chat accepted", "chat closed", "chat destroyed", "procedure=/lethe.chat.v1.ChatService/SendMessage"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

func TestCloseChat_PurgesContentFromDisk(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := newCanaries()
	runCanaryChat(t, ts, c, func() {
		// While the chat is open the canaries are on disk, so the check
		// below is able to fail.
		for _, s := range c.all() {
			if len(ts.filesContaining(s)) == 0 {
				t.Fatalf("canary %q not on disk while the chat is open", s)
			}
		}
	})
	for _, s := range c.all() {
		if hits := ts.filesContaining(s); len(hits) > 0 {
			t.Errorf("canary %q still on disk after destruction, in %v", s, hits)
		}
	}
}

// Closing one chat destroys it alone: another open chat keeps its content.
func TestCloseChat_LeavesOtherChatsIntact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	other := ts.startChat("Keeper", "", "keep-this-text")
	c := newCanaries()
	runCanaryChat(t, ts, c, func() {})
	got := texts(history(t, other, 2))
	if len(got) != 1 || got[0] != "keep-this-text" {
		t.Fatalf("other chat's history = %q", got)
	}
	if _, err := other.Send(ctx, "still open"); err != nil {
		t.Fatal(err)
	}
}

// An open chat survives a restart (P10), and closing it afterwards
// destroys it as usual.
func TestRestart_OpenChatSurvivesAndIsDestroyedOnClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Rita", "", "survives-restart")
	ts.stop()
	if len(ts.filesContaining("survives-restart")) == 0 {
		t.Fatal("an open chat did not survive the stop")
	}
	ts2 := newTestServer(t, withDataDir(ts.dir))
	v2 := lethe.NewVisitor(ts2.client(), ts2.URL)
	v2.Token, v2.ChatID = v.Token, v.ChatID
	got := texts(history(t, v2, 2))
	if len(got) != 1 || got[0] != "survives-restart" {
		t.Fatalf("history after restart = %q", got)
	}
	if ev, err := v2.Send(ctx, "after restart"); err != nil || ev.Seq != 3 {
		t.Fatalf("Send after restart = %v, %v; want seq 3", ev, err)
	}
	if err := v2.End(ctx); err != nil {
		t.Fatal(err)
	}
	ts2.waitDestroyed(v.ChatID)
	if hits := ts2.filesContaining("survives-restart"); len(hits) > 0 {
		t.Fatalf("content on disk after destruction: %v", hits)
	}
}

// A chat that was closed but not yet destroyed when the server died is
// destroyed at the next start, and never comes back.
func TestRestart_DestroysChatsLeftClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Rolf", "", "closed-before-crash")
	ts.stop()
	// Simulate the crash between close and destruction: mark the chat
	// closed in the scratch store, as close does before destroying it.
	db, err := store.Open(filepath.Join(ts.dir, "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, `UPDATE chats SET state = 3 WHERE id = ?`, v.ChatID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if len(ts.filesContaining("closed-before-crash")) == 0 {
		t.Fatal("the chat's content is not on disk before the restart")
	}

	ts2 := newTestServer(t, withDataDir(ts.dir))
	ts2.waitDestroyed(v.ChatID)
	if hits := ts2.filesContaining("closed-before-crash"); len(hits) > 0 {
		t.Fatalf("content on disk after the start-up destruction: %v", hits)
	}
	v2 := lethe.NewVisitor(ts2.client(), ts2.URL)
	v2.Token, v2.ChatID = v.Token, v.ChatID
	_, err = v2.Send(ctx, "hello?")
	if err == nil {
		t.Fatal("a destroyed chat accepted a message after restart")
	}
}
