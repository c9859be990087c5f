package hub_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/hub"
)

// waitClosed drains s until its channel closes and returns what it read.
func waitClosed(t *testing.T, s *hub.Sub) []any {
	t.Helper()
	var got []any
	timeout := time.After(10 * time.Second)
	for {
		select {
		case v, ok := <-s.C():
			if !ok {
				return got
			}
			got = append(got, v)
		case <-timeout:
			t.Fatal("subscription channel was not closed")
		}
	}
}

func TestPublish_SlowSubscriberDoesNotBlockPublisher(t *testing.T) {
	t.Parallel()
	const buffer = 8
	h := hub.New(buffer)
	defer h.Close()
	slow := h.Subscribe("chat:1") // never read
	defer slow.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 * buffer {
			h.Publish("chat:1", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber that never reads")
	}
}

func TestPublish_SlowSubscriberIsCutOffWithErrSlow(t *testing.T) {
	t.Parallel()
	const buffer = 8
	h := hub.New(buffer)
	defer h.Close()
	slow := h.Subscribe("chat:1")
	for i := range 10 * buffer {
		h.Publish("chat:1", i)
	}
	got := waitClosed(t, slow)
	if !errors.Is(slow.Err(), hub.ErrSlow) {
		t.Fatalf("Err() = %v, want ErrSlow", slow.Err())
	}
	// What it did get is a prefix of what was published, in order: the
	// subscriber resumes after the last item it saw.
	if len(got) != buffer {
		t.Fatalf("slow subscriber got %d items before the cut, want its buffer (%d)", len(got), buffer)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("item %d = %v, want %d", i, v, i)
		}
	}
	if n := h.Subscribers("chat:1"); n != 0 {
		t.Fatalf("%d subscribers left on the topic after the cut, want 0", n)
	}
}

func TestPublish_FastSubscriberGetsEverythingInOrderBesideSlowOne(t *testing.T) {
	t.Parallel()
	const buffer = 4
	const n = 10 * buffer
	h := hub.New(buffer)
	defer h.Close()
	slow := h.Subscribe("chat:1")
	fast := h.Subscribe("chat:1")

	var got []any
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := range fast.C() {
			got = append(got, v)
			if len(got) == n {
				return
			}
		}
	}()
	// Publish one at a time, each only after the fast reader took the
	// previous one, so the fast subscriber is never the slow one.
	for i := range n {
		h.Publish("chat:1", i)
		deadline := time.Now().Add(10 * time.Second)
		for len(fast.C()) > 0 {
			if time.Now().After(deadline) {
				t.Fatal("fast subscriber stopped reading")
			}
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("fast subscriber got %d items, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("fast subscriber item %d = %v, want %d", i, v, i)
		}
	}
	if fast.Err() != nil {
		t.Fatalf("fast subscriber was cut off: %v", fast.Err())
	}
	waitClosed(t, slow)
	if !errors.Is(slow.Err(), hub.ErrSlow) {
		t.Fatalf("slow subscriber Err() = %v, want ErrSlow", slow.Err())
	}
}

func TestPublish_OnlyReachesSubscribersOfTheTopic(t *testing.T) {
	t.Parallel()
	h := hub.New(4)
	defer h.Close()
	a := h.Subscribe("chat:a")
	b := h.Subscribe("chat:b")
	both := h.Subscribe("chat:a", "chat:b")
	h.Publish("chat:a", "for a")
	if got := <-a.C(); got != "for a" {
		t.Fatalf("a got %v", got)
	}
	if got := <-both.C(); got != "for a" {
		t.Fatalf("both got %v", got)
	}
	select {
	case v := <-b.C():
		t.Fatalf("subscriber of chat:b got %v published on chat:a", v)
	default:
	}
}

func TestClose_EndsSubscriptionsWithErrClosed(t *testing.T) {
	t.Parallel()
	h := hub.New(4)
	s1 := h.Subscribe("chat:1")
	s2 := h.Subscribe("chat:2", "account:1")
	h.Publish("chat:1", "x")
	h.Close()
	if got := waitClosed(t, s1); len(got) != 1 || got[0] != "x" {
		t.Fatalf("s1 got %v before close, want [x]", got)
	}
	waitClosed(t, s2)
	for i, s := range []*hub.Sub{s1, s2} {
		if !errors.Is(s.Err(), hub.ErrClosed) {
			t.Fatalf("sub %d: Err() = %v, want ErrClosed", i, s.Err())
		}
	}
	// Subscribing to a closed hub ends at once; publishing is harmless.
	late := h.Subscribe("chat:1")
	waitClosed(t, late)
	if !errors.Is(late.Err(), hub.ErrClosed) {
		t.Fatalf("late sub Err() = %v, want ErrClosed", late.Err())
	}
	h.Publish("chat:1", "y")
}

func TestSubClose_IsIdempotentAndKeepsReason(t *testing.T) {
	t.Parallel()
	h := hub.New(1)
	defer h.Close()
	s := h.Subscribe("chat:1")
	h.Publish("chat:1", 1)
	h.Publish("chat:1", 2) // overflows: cut off with ErrSlow
	waitClosed(t, s)
	s.Close()
	s.Close()
	if !errors.Is(s.Err(), hub.ErrSlow) {
		t.Fatalf("Err() after Close of a cut-off sub = %v, want ErrSlow (the first reason)", s.Err())
	}
	s2 := h.Subscribe("chat:1")
	s2.Close()
	s2.Close()
	waitClosed(t, s2)
	if !errors.Is(s2.Err(), hub.ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", s2.Err())
	}
	if n := h.Subscribers("chat:1"); n != 0 {
		t.Fatalf("%d subscribers after Close, want 0", n)
	}
}

func TestPublish_ConcurrentPublishersAndClosers(t *testing.T) {
	t.Parallel()
	h := hub.New(2)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				h.Publish("chat:1", p*1000+i)
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				s := h.Subscribe("chat:1")
				s.Close()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("concurrent publish/subscribe/close deadlocked")
	}
	h.Close()
}
