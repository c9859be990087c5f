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

func TestTake_SaysHowLongToWait(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	k := withClock(New(12*time.Second, 1), c)
	if ok, _ := k.Take("a"); !ok {
		t.Fatal("first event refused")
	}
	ok, retry := k.Take("a")
	if ok || retry != 12*time.Second {
		t.Fatalf("second event: ok=%v retry=%v, want refused with 12s", ok, retry)
	}
	c.add(5 * time.Second)
	// A refused event is not counted: the wait only shrinks.
	if ok, retry := k.Take("a"); ok || retry != 7*time.Second {
		t.Fatalf("after 5s: ok=%v retry=%v, want refused with 7s", ok, retry)
	}
	c.add(7 * time.Second)
	if ok, _ := k.Take("a"); !ok {
		t.Fatal("event after the wait refused")
	}
}

func TestRate_ParseAndDescribe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"10/2s": "10/2s", "5/1m": "5/1m", "60/2m0s": "60/2m", "3/1h": "3/1h", "off": "off", "0": "off"} {
		r, err := ParseRate(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "10", "x/1m", "10/x", "-1/1m", "5/0s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
	k := NewRate(Rate{N: 10, Per: 2 * time.Second})
	if k.every != 200*time.Millisecond || k.burst != 10 {
		t.Fatalf("10/2s → every %v burst %d", k.every, k.burst)
	}
	off := NewRate(Rate{})
	for range 1000 {
		if !off.Allow("a") {
			t.Fatal("an off rate refused")
		}
	}
	if off.Len() != 0 {
		t.Fatal("an off rate keeps keys")
	}
}

func TestGauge_CeilingPerKeyAndReleaseOnce(t *testing.T) {
	t.Parallel()
	g := NewGauge(2)
	r1, ok1 := g.Acquire("a")
	_, ok2 := g.Acquire("a")
	if _, ok3 := g.Acquire("a"); !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire a ×3 = %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := g.Acquire("b"); !ok {
		t.Fatal("b shares a's ceiling")
	}
	r1()
	r1() // twice: no effect
	if g.Count("a") != 1 {
		t.Fatalf("count after one release (called twice) = %d, want 1", g.Count("a"))
	}
	if _, ok := g.Acquire("a"); !ok {
		t.Fatal("a released slot is not available again")
	}
	off := NewGauge(0)
	for range 100 {
		if _, ok := off.Acquire("a"); !ok {
			t.Fatal("an off gauge refused")
		}
	}
	if off.Len() != 0 {
		t.Fatal("an off gauge keeps keys")
	}
}

func TestGauge_EmptyKeysAreDropped(t *testing.T) {
	t.Parallel()
	g := NewGauge(5)
	var rel []func()
	for i := range 100 {
		r, _ := g.Acquire(fmt.Sprint(i))
		rel = append(rel, r)
	}
	for _, r := range rel {
		r()
	}
	if g.Len() != 0 {
		t.Fatalf("%d keys left after every release", g.Len())
	}
}
