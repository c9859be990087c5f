// Package limit is the one keyed rate limiter every domain uses: a token
// bucket per key (a hashed client address, a visitor id, an e-mail address),
// bounded in memory. Keys whose bucket has refilled are indistinguishable
// from new ones and are swept; beyond the table's size the oldest-seen keys
// are dropped, so no amount of distinct keys can grow it without bound.
package limit

import (
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds a limiter's table unless Keyed.MaxKeys says otherwise.
const DefaultMaxKeys = 100_000

// Keyed limits events per key: a burst, then one event every Every.
type Keyed struct {
	every   time.Duration
	burst   int
	maxKeys int

	mu        sync.Mutex
	m         map[string]*entry
	lastSweep time.Time
	now       func() time.Time
}

type entry struct {
	l    *rate.Limiter
	seen time.Time
}

// New returns a limiter allowing burst events at once per key, then one
// every every, keeping at most DefaultMaxKeys keys.
func New(every time.Duration, burst int) *Keyed {
	return &Keyed{every: every, burst: burst, maxKeys: DefaultMaxKeys, m: map[string]*entry{}, now: time.Now}
}

// WithMaxKeys bounds the table at n keys (tests, or tables that should be small).
func (k *Keyed) WithMaxKeys(n int) *Keyed {
	k.maxKeys = max(n, 1)
	return k
}

// Allow reports whether an event for key may happen now, and counts it.
func (k *Keyed) Allow(key string) bool {
	ok, _ := k.Take(key)
	return ok
}

// Take counts an event for key if one may happen now. When it may not, it
// says how long until one may: the retry hint for the client. A limiter
// with a burst below 1 is off and allows everything.
func (k *Keyed) Take(key string) (ok bool, retry time.Duration) {
	if k.burst < 1 {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	e := k.m[key]
	if e == nil {
		k.makeRoom(now)
		e = &entry{l: rate.NewLimiter(rate.Every(k.every), k.burst)}
		k.m[key] = e
	}
	e.seen = now
	r := e.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Forget drops key's bucket (its owner is gone: a destroyed chat).
func (k *Keyed) Forget(key string) {
	k.mu.Lock()
	delete(k.m, key)
	k.mu.Unlock()
}

// Len is the number of keys held.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// refill is how long an idle bucket takes to be full again.
func (k *Keyed) refill() time.Duration { return k.every * time.Duration(k.burst) }

// makeRoom sweeps refilled buckets at most once per refill period, and
// always when the table is full; if it is still full, it drops the keys
// seen longest ago. Call with mu held.
func (k *Keyed) makeRoom(now time.Time) {
	full := len(k.m) >= k.maxKeys
	if !full && now.Sub(k.lastSweep) < k.refill() {
		return
	}
	k.lastSweep = now
	for key, e := range k.m {
		if now.Sub(e.seen) >= k.refill() {
			delete(k.m, key)
		}
	}
	for len(k.m) >= k.maxKeys {
		// Still full of active keys: drop the oldest tenth (they come back
		// with a full bucket, which only ever favours a real client).
		cut := k.oldest(max(k.maxKeys/10, 1))
		for key, e := range k.m {
			if !e.seen.After(cut) {
				delete(k.m, key)
			}
		}
	}
}

// oldest returns the seen time at or before which about n keys were seen.
func (k *Keyed) oldest(n int) time.Time {
	times := make([]time.Time, 0, len(k.m))
	for _, e := range k.m {
		times = append(times, e.seen)
	}
	slices.SortFunc(times, time.Time.Compare)
	return times[min(n, len(times))-1]
}
