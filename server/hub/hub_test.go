package hub_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/hub"
)

// drain takes from s until it ends and returns what it got and why it ended.
func drain(t *testing.T, s *hub.Sub) ([]any, error) {
	t.Helper()
	var got []any
	timeout := time.After(10 * time.Second)
	for {
		select {
		case <-s.Ready():
		case <-timeout:
			t.Fatal("subscription did not end")
		}
		vs, err := s.Take()
		got = append(got, vs...)
		if err != nil {
			return got, err
		}
	}
}

// pending takes what is queued now, without waiting.
func pending(t *testing.T, s *hub.Sub) []any {
	t.Helper()
	vs, _ := s.Take()
	return vs
}

func wantSeq(t *testing.T, got []any, from, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d values %v, want %d", len(got), got, n)
	}
	for i, v := range got {
		if v != from+i {
			t.Fatalf("value %d = %v, want %d (lost or reordered)", i, v, from+i)
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

// The queue grows with what is pending, keeps it all in order up to the
// limit, and is cut off at the first value beyond it.
func TestPublish_QueueGrowsToTheLimitThenCutsOff(t *testing.T) {
	t.Parallel()
	const buffer = 100
	h := hub.New(buffer)
	defer h.Close()
	s := h.Subscribe("chat:1")
	if vs := pending(t, s); vs != nil {
		t.Fatalf("a new subscription has %v queued", vs)
	}
	select {
	case <-s.Ready():
		t.Fatal("Ready signalled with nothing published")
	default:
	}
	// Bursts of growing size, each taken whole: nothing lost or reordered.
	next := 0
	for _, n := range []int{1, 3, 4, 5, 17, 64, buffer} {
		for range n {
			h.Publish("chat:1", next)
			next++
		}
		<-s.Ready()
		wantSeq(t, pending(t, s), next-n, n)
	}
	// One more than the limit cuts it off; it still gets everything before
	// the cut and nothing after, even if it takes in between.
	for range buffer + 1 {
		h.Publish("chat:1", next)
		next++
	}
	got := pending(t, s)
	h.Publish("chat:1", next) // after the cut: must not be delivered
	rest, err := drain(t, s)
	if !errors.Is(err, hub.ErrSlow) {
		t.Fatalf("ended with %v, want ErrSlow", err)
	}
	wantSeq(t, append(got, rest...), next-buffer-1, buffer)
	if n := h.Subscribers("chat:1"); n != 0 {
		t.Fatalf("%d subscribers left on the topic after the cut, want 0", n)
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
	got, err := drain(t, slow)
	if !errors.Is(err, hub.ErrSlow) || !errors.Is(slow.Err(), hub.ErrSlow) {
		t.Fatalf("ended with %v, Err() = %v, want ErrSlow", err, slow.Err())
	}
	// What it did get is a prefix of what was published, in order: the
	// subscriber resumes after the last item it saw.
	wantSeq(t, got, 0, buffer)
}

// A reader that keeps up gets every value of several concurrent publishers,
// each publisher's in its order.
func TestPublish_ConcurrentPublishersFastReaderGetsAllInOrder(t *testing.T) {
	t.Parallel()
	const publishers, each = 4, 2000
	h := hub.New(publishers * each) // the reader may lag; it must never be cut
	defer h.Close()
	fast := h.Subscribe("chat:1")

	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				h.Publish("chat:1", p*each+i)
			}
		})
	}
	next := make([]int, publishers)
	total := 0
	timeout := time.After(30 * time.Second)
	for total < publishers*each {
		select {
		case <-fast.Ready():
		case <-timeout:
			t.Fatalf("got %d of %d values", total, publishers*each)
		}
		vs, err := fast.Take()
		if err != nil {
			t.Fatalf("fast reader cut off: %v", err)
		}
		for _, v := range vs {
			n := v.(int)
			p, i := n/each, n%each
			if i != next[p] {
				t.Fatalf("publisher %d: got %d, want %d (lost or reordered)", p, i, next[p])
			}
			next[p]++
			total++
		}
	}
	wg.Wait()
	if vs := pending(t, fast); len(vs) != 0 {
		t.Fatalf("%d values beyond what was published", len(vs))
	}
}

func TestPublish_FastSubscriberGetsEverythingBesideSlowOne(t *testing.T) {
	t.Parallel()
	const buffer = 4
	const n = 10 * buffer
	h := hub.New(buffer)
	defer h.Close()
	slow := h.Subscribe("chat:1")
	fast := h.Subscribe("chat:1")
	var got []any
	for i := range n {
		h.Publish("chat:1", i)
		got = append(got, pending(t, fast)...)
	}
	wantSeq(t, got, 0, n)
	if _, err := drain(t, slow); !errors.Is(err, hub.ErrSlow) {
		t.Fatalf("slow subscriber ended with %v, want ErrSlow", err)
	}
	if fast.Err() != nil {
		t.Fatalf("fast subscriber was cut off: %v", fast.Err())
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
	if got := pending(t, a); len(got) != 1 || got[0] != "for a" {
		t.Fatalf("a got %v", got)
	}
	if got := pending(t, both); len(got) != 1 || got[0] != "for a" {
		t.Fatalf("both got %v", got)
	}
	if got := pending(t, b); len(got) != 0 {
		t.Fatalf("subscriber of chat:b got %v published on chat:a", got)
	}
	h.Publish("chat:b", "for b")
	if got := pending(t, both); len(got) != 1 || got[0] != "for b" {
		t.Fatalf("both got %v", got)
	}
}

// A merging subscriber is handed each value in order on the publisher's
// goroutine; refusing one cuts it off, and nothing reaches it afterwards.
func TestSubscribeFunc_MergesInOrderAndCutsOffWhenRefused(t *testing.T) {
	t.Parallel()
	h := hub.New(2) // the queue limit does not apply to merging
	defer h.Close()
	var got []any
	const limit = 10
	s := h.SubscribeFunc(func(v any) bool {
		got = append(got, v)
		return len(got) < limit
	}, "account:1", "operator:1")
	for i := range 5 {
		h.Publish("account:1", i)
	}
	h.Publish("operator:1", 5)
	h.Publish("elsewhere", "no")
	wantSeq(t, got, 0, 6)
	select {
	case <-s.Ready():
		t.Fatal("Ready signalled on a live merging subscription")
	default:
	}
	for i := 6; i < 20; i++ {
		h.Publish("account:1", i)
	}
	wantSeq(t, got, 0, limit)
	<-s.Ready()
	if _, err := s.Take(); !errors.Is(err, hub.ErrSlow) {
		t.Fatalf("Take after refusal = %v, want ErrSlow", err)
	}
	if n := h.Subscribers("account:1") + h.Subscribers("operator:1"); n != 0 {
		t.Fatalf("%d subscriptions left after the cut", n)
	}
}

func TestClose_EndsSubscriptionsWithErrClosed(t *testing.T) {
	t.Parallel()
	h := hub.New(4)
	s1 := h.Subscribe("chat:1")
	s2 := h.Subscribe("chat:2", "account:1")
	m := h.SubscribeFunc(func(any) bool { return true }, "account:1")
	h.Publish("chat:1", "x")
	h.Close()
	if got, err := drain(t, s1); len(got) != 1 || got[0] != "x" || !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("s1 got %v, %v; want [x], ErrClosed", got, err)
	}
	for i, s := range []*hub.Sub{s2, m} {
		if _, err := drain(t, s); !errors.Is(err, hub.ErrClosed) {
			t.Fatalf("sub %d ended with %v, want ErrClosed", i, err)
		}
	}
	// Subscribing to a closed hub ends at once; publishing is harmless.
	late := h.Subscribe("chat:1")
	if _, err := drain(t, late); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("late sub ended with %v, want ErrClosed", err)
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
	drain(t, s)
	s.Close()
	s.Close()
	if !errors.Is(s.Err(), hub.ErrSlow) {
		t.Fatalf("Err() after Close of a cut-off sub = %v, want ErrSlow (the first reason)", s.Err())
	}
	s2 := h.Subscribe("chat:1")
	s3 := h.Subscribe("chat:1")
	s2.Close()
	s2.Close()
	if _, err := drain(t, s2); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("ended with %v, want ErrClosed", err)
	}
	if n := h.Subscribers("chat:1"); n != 1 {
		t.Fatalf("%d subscribers after closing one of two, want 1", n)
	}
	s3.Close()
	if n := h.Subscribers("chat:1"); n != 0 {
		t.Fatalf("%d subscribers after Close, want 0", n)
	}
}

func TestPublish_ConcurrentPublishersAndClosers(t *testing.T) {
	t.Parallel()
	h := hub.New(2)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 500 {
				h.Publish("chat:1", p*1000+i)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 100 {
				s := h.Subscribe("chat:1", "account:1")
				s.Take()
				s.Close()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("concurrent publish/subscribe/close deadlocked")
	}
	if n := h.Subscribers("chat:1") + h.Subscribers("account:1"); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
	h.Close()
}

// BenchmarkIdleSubscription reports the heap one idle subscription to its
// own topic holds (what a quiet visitor stream costs the hub), measured over
// 100k of them.
func BenchmarkIdleSubscription(b *testing.B) {
	const n = 100_000
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("chat:%026d", i) // as long as a real chat topic
	}
	var perSub float64
	for b.Loop() {
		h := hub.New(0)
		subs := make([]*hub.Sub, n)
		before := heap()
		for i := range subs {
			subs[i] = h.Subscribe(topics[i])
		}
		perSub = float64(heap()-before) / n
		for _, s := range subs {
			s.Close()
		}
		runtime.KeepAlive(subs)
	}
	b.ReportMetric(perSub, "B/idle-sub")
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
