package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	for _, c := range []struct {
		elapsed time.Duration
		rate    float64
		want    int
	}{
		{-time.Millisecond, 1000, 0},
		{0, 1000, 1},
		{999 * time.Microsecond, 1000, 1},
		{time.Millisecond, 1000, 2},
		{time.Second, 2000, 2001},
		{250 * time.Millisecond, 4, 2},
	} {
		if got := due(c.elapsed, c.rate); got != c.want {
			t.Errorf("due(%v, %v) = %d, want %d", c.elapsed, c.rate, got, c.want)
		}
	}
}

// Open loop: a send does not wait for the earlier ones to be answered.
// Every fire blocks until all n have started, which a closed loop would
// never reach.
func TestPace_OpenLoop(t *testing.T) {
	const rate, d = 2000, 50 * time.Millisecond
	var started sync.WaitGroup
	started.Add(100)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	var calls atomic.Int64
	seen := make([]atomic.Bool, 100)
	n, skipped := pace(context.Background(), rate, d, 1000, func(i int) {
		seen[i].Store(true)
		calls.Add(1)
		started.Done()
		<-all
	})
	if n != 100 || skipped != 0 || calls.Load() != 100 {
		t.Fatalf("n=%d skipped=%d calls=%d, want 100, 0, 100", n, skipped, calls.Load())
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Errorf("send %d was never made", i)
		}
	}
}

// Beyond maxInflight unanswered sends, the ones due are skipped, not queued.
func TestPace_SkipsBeyondInflight(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	done := make(chan struct{})
	var n, skipped int
	go func() {
		defer close(done)
		n, skipped = pace(context.Background(), 10000, 5*time.Millisecond, 2, func(int) {
			calls.Add(1)
			<-release
		})
	}()
	for calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	// All 50 are due within 5 ms; wait until the pacer has passed them all.
	time.Sleep(50 * time.Millisecond)
	close(release)
	<-done
	if n != 50 || calls.Load() != 2 || skipped != 48 {
		t.Fatalf("n=%d calls=%d skipped=%d, want 50, 2, 48", n, calls.Load(), skipped)
	}
}

func TestQuantile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := quantile(s, c.q); got != c.want {
			t.Errorf("quantile(1..100, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile(nil) = %v", got)
	}
	if d := distOf([]time.Duration{3, 1, 2}); d.p50 != 2 || d.max != 3 || d.n != 3 {
		t.Errorf("distOf = %+v", d)
	}
}

func TestBest(t *testing.T) {
	ok := func(rate float64, p99 time.Duration, delivered int) step {
		return step{rate: rate, d: time.Second, offered: int(rate), delivered: delivered, lat: dist{p99: p99}}
	}
	steps := []step{
		ok(1000, 10*time.Millisecond, 1000),
		ok(2000, 40*time.Millisecond, 1980), // exactly 99 %
		ok(3000, 60*time.Millisecond, 3000), // p99 too high
		ok(4000, 30*time.Millisecond, 3900), // < 99 % delivered
	}
	b, found := best(steps, 50*time.Millisecond)
	if !found || b.rate != 2000 {
		t.Fatalf("best = %v, %v; want the 2000/s step", b.rate, found)
	}
	if _, found := best(steps[2:], 50*time.Millisecond); found {
		t.Fatal("best found a passing step among failing ones")
	}
}

func TestTracker_OnlyOurMessagesOfThisRun(t *testing.T) {
	a, b := newTracker(10), newTracker(10)
	a.markSent(3)
	b.delivered(a.text(3)) // another run's message: not b's
	a.delivered("m3")
	a.delivered(a.text(10)) // out of range
	if got := a.span(0, 10); len(got) != 0 {
		t.Fatalf("delivered before it was: %v", got)
	}
	a.delivered(a.text(3))
	first := a.got[3].Load()
	a.delivered(a.text(3)) // a second delivery does not move the first
	if len(a.span(0, 10)) != 1 || a.got[3].Load() != first || len(b.span(0, 10)) != 0 {
		t.Fatalf("a: %v, b: %v", a.span(0, 10), b.span(0, 10))
	}
}
