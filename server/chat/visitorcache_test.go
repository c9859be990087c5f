package chat

import (
	"context"
	"testing"

	"github.com/lethehq/lethe/server/ids"
)

// A visitor's token is looked up once while the chat is open; the moment
// the chat closes the token says so, and once the chat is destroyed it is
// found only in the tombstones, never in a stale memory of the open chat.
func TestVisitorByToken_RemembersOpenChatsOnlyUntilTheyClose(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Ann", "", "hello")
	for range 3 {
		got, err := e.svc.VisitorByToken(ctx, v.token)
		if err != nil || got.ChatID != v.chatID || got.Closed {
			t.Fatalf("VisitorByToken = %+v, %v; want the open chat", got, err)
		}
	}
	if _, _, ok := e.svc.visitors.get(ids.Hash(v.token)); !ok {
		t.Fatal("an open chat's visitor is not remembered")
	}
	if err := v.end(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := e.svc.visitors.get(ids.Hash(v.token)); ok {
		t.Fatal("a closed chat's visitor is still remembered")
	}
	got, err := e.svc.VisitorByToken(ctx, v.token)
	if err != nil || !got.Closed {
		t.Fatalf("after the close VisitorByToken = %+v, %v; want the chat closed", got, err)
	}
	if _, _, ok := e.svc.visitors.get(ids.Hash(v.token)); ok {
		t.Fatal("a closed chat's visitor was remembered again")
	}
}
