package limit

import (
	"fmt"
	"testing"
	"time"
)

// clock is a settable time for the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time           { return c.t }
func (c *clock) add(d time.Duration)      { c.t = c.t.Add(d) }
func withClock(k *Keyed, c *clock) *Keyed { k.now = c.now; return k }

func TestAllow_BurstThenRate(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	k := withClock(New(time.Second, 3), c)
	for i := range 3 {
		if !k.Allow("a") {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if k.Allow("a") {
		t.Fatal("event past the burst allowed")
	}
	if !k.Allow("b") {
		t.Fatal("another key shares a's bucket")
	}
	c.add(time.Second)
	if !k.Allow("a") || k.Allow("a") {
		t.Fatal("after one interval exactly one more event should pass")
	}
}

func TestAllow_RefilledKeysAreSwept(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	k := withClock(New(time.Second, 2), c)
	for i := range 100 {
		k.Allow(fmt.Sprint(i))
	}
	if k.Len() != 100 {
		t.Fatalf("Len = %d", k.Len())
	}
	c.add(2 * time.Second) // every bucket is full again
	k.Allow("new")
	if k.Len() != 1 {
		t.Fatalf("after the refill time %d keys are left, want only the new one", k.Len())
	}
}

func TestAllow_TableNeverGrowsPastItsBound(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	k := withClock(New(time.Hour, 1), c).WithMaxKeys(50)
	for i := range 1000 {
		c.add(time.Millisecond)
		if !k.Allow(fmt.Sprint(i)) {
			t.Fatalf("a new key was refused")
		}
		if k.Len() > 50 {
			t.Fatalf("%d keys held, bound is 50", k.Len())
		}
	}
	// The most recent keys keep their (empty) buckets.
	if k.Allow("999") {
		t.Fatal("the newest key lost its bucket to the bound")
	}
}

func TestForget_DropsTheBucket(t *testing.T) {
	t.Parallel()
	k := New(time.Hour, 1)
	k.Allow("a")
	if k.Allow("a") {
		t.Fatal("second event allowed")
	}
	k.Forget("a")
	if !k.Allow("a") {
		t.Fatal("a forgotten key is still limited")
	}
}
