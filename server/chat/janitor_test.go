package chat

import (
	"fmt"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/limit"
)

// The janitor's work per tick is what changed, not the open chats: chats
// whose visitor keeps a stream open are looked at once (when they would
// first fall due) and then never again while the stream stays open —
// nothing stays scheduled for them and none is closed. A chat whose stream
// ends is scheduled again by that end and closed once idle.
func TestJanitor_WatchedChatsCostNothingPerTick(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	e := newEnv(t, withJanitor(20*time.Millisecond), withLimits(func(l *Limits) {
		l.StartsPerAddr = limit.Rate{}
		l.OpenPerAddr = 0
	}))
	e.accounts.update(func(s *AccountSettings) { s.IdleTimeout = idle })
	const chats = 12
	var streams []interface{ Stop() }
	var vs []*visitor
	for i := range chats {
		v := e.startChat(fmt.Sprintf("W%d", i), "", "hi")
		s := watchChat(t, v, 0)
		s.Next("started", isSeq(1))
		streams, vs = append(streams, s), append(vs, v)
	}
	// Each chat was scheduled once, when it started; past its due time,
	// the janitor finds it watched and lets it go.
	waitFor(t, "nothing scheduled for the watched chats", func() bool { return e.svc.idle.scheduled.Load() == 0 }, idle+5*time.Second)
	time.Sleep(5 * 20 * time.Millisecond) // a few more ticks
	if n := e.svc.idle.scheduled.Load(); n != 0 {
		t.Fatalf("%d chats scheduled while every visitor watches", n)
	}
	if n := e.logs.Count(`msg="chat closed"`); n != 0 {
		t.Fatalf("%d watched chats were closed", n)
	}
	// One visitor leaves: their chat is scheduled by the stream's end and
	// closed as idle; the others stay open.
	streams[0].Stop()
	e.waitDestroyed(vs[0].chatID)
	if n := e.logs.Count(`msg="chat closed"`); n != 1 {
		t.Fatalf("%d chats closed, want only the one whose visitor left", n)
	}
	if n := e.svc.idle.scheduled.Load(); n != 0 {
		t.Fatalf("%d chats still scheduled", n)
	}
}

func waitFor(t *testing.T, what string, ok func() bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tombstones expire in the order they were added; adding one forgets the
// expired ones without looking at the others.
func TestTombstones_AddForgetsExpiredInOrder(t *testing.T) {
	t.Parallel()
	ts := newTombstones()
	ts.ttl = 50 * time.Millisecond
	for i := range 1000 {
		ts.add([]byte(fmt.Sprint("old", i)), &auth.Visitor{ChatID: fmt.Sprint(i)})
	}
	if _, ok := ts.get([]byte("old7")); !ok {
		t.Fatal("a fresh tombstone is not found")
	}
	time.Sleep(80 * time.Millisecond)
	ts.add([]byte("new"), &auth.Visitor{ChatID: "new"})
	if n := ts.len(); n != 1 {
		t.Fatalf("%d tombstones held after the others expired, want 1", n)
	}
	if len(ts.q) != 1 {
		t.Fatalf("expiry queue holds %d entries, want 1", len(ts.q))
	}
	if v, ok := ts.get([]byte("new")); !ok || v.ChatID != "new" {
		t.Fatalf("get(new) = %v, %v", v, ok)
	}
	if _, ok := ts.get([]byte("old7")); ok {
		t.Fatal("an expired tombstone is still found")
	}
}
