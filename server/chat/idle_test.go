package chat

import (
	"context"
	"testing"
	"time"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

// The janitor closes a chat whose visitor left (no chat stream open) for
// longer than the account's idle timeout, and destroys it; a visitor who is
// still watching is never closed for being idle.
func TestIdle_AbandonedChatClosedAndDestroyedWatchedChatKept(t *testing.T) {
	t.Parallel()
	const idle = 10 * time.Second // the smallest timeout an account may set
	ctx := context.Background()
	e := newEnv(t, withJanitor(100*time.Millisecond))
	e.accounts.update(func(s *AccountSettings) { s.IdleTimeout = idle })
	admin := e.operator(opAdmin)
	inbox := watchInbox(t, admin)

	// Both visitors watch their chat from the start.
	tag := newTag()
	stays := e.startChat("Stays", "", "I stay")
	staying := watchChat(t, stays, 0)
	gone := e.startChat("Gone", "", "I will leave "+tag)
	leaving := watchChat(t, gone, 0)
	for _, v := range []*visitor{gone, stays} {
		if err := admin.accept(ctx, v.chatID); err != nil {
			t.Fatal(err)
		}
	}
	staying.Next("operator joined", isSeq(3))
	leaving.Next("operator joined", isSeq(3))
	// The visitor closes the tab: the stream ends.
	left := time.Now()
	leaving.Stop()

	// The operator sees the chat closed as idle, by the system.
	closed := inbox.NextWithin("idle chat closed", idle+20*time.Second, func(r *chatv1.WatchInboxResponse) bool {
		ev := r.GetEvent()
		return ev != nil && ev.ChatId == gone.chatID && ev.GetClosed() != nil
	}).GetEvent().GetClosed()
	if closed.Reason != "idle" || closed.ClosedBy != chatv1.AuthorKind_AUTHOR_KIND_SYSTEM {
		t.Fatalf("closed event = %v, want reason \"idle\" by SYSTEM", closed)
	}
	// (Less a little: the server keeps "last seen" in milliseconds of wall
	// time.)
	if waited := time.Since(left); waited < idle-100*time.Millisecond {
		t.Fatalf("the chat was closed as idle %v after the visitor left, before the %v timeout", waited, idle)
	}
	e.waitDestroyed(gone.chatID)
	if hits := e.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the idle chat's content is still on disk: %v", hits)
	}

	// The watched chat, started at the same time, is still open.
	for _, r := range append(staying.Seen, staying.Rest()...) {
		if isClosed(r) {
			t.Fatal("the chat whose visitor kept watching was closed")
		}
	}
	for _, r := range inbox.Rest() {
		if r.GetEvent().GetClosed() != nil && r.GetEvent().ChatId == stays.chatID {
			t.Fatal("the operator saw the watched chat closed")
		}
	}
	if ev, err := stays.send(ctx, "still here"); err != nil || ev.Seq != 4 {
		t.Fatalf("Send in the watched chat = %v, %v; want seq 4", ev, err)
	}
	staying.Next("own message", isSeq(4))
	if n := e.logs.Count(`msg="chat closed"`); n != 1 {
		t.Fatalf("%d chats were closed, want only the idle one", n)
	}
}
